"""Fault figures: a many-persona scenario against a fake endpoint that misbehaves, against a fault-free run.

    python -m bench.faults [--personas 500] [--latency 0.05] [--slots 64] [--seed 7]

The scenario is bench/pipeline.py's survey (each person alone in a world for one step, then one
extraction each). It runs three times as the scenario flow, each in a fresh dataset root (no cache
shared), against the fake OpenAI-compatible server in a process of its own: fault-free; with
faults and ``[llm] max_resamples = 0`` (a reply whose repair is also bad fails its item, as before
resampling existed); with faults and the default resamples. Faults are drawn per chat request
from a seeded random sequence: 5% HTTP 500, 5% HTTP 429, 5% malformed JSON (a cut-off reply with
finish_reason "stop") and 1% timeouts (an answer slower than the client's timeout). Prints each
run's status and failures, its requests (and as a ratio of the fault-free run's), retries, repair
rounds and resamples from ``llm_calls``, and its rows per dataset with how many of the fault-free
run's rows it lacks: events and personas compared by content (without call keys, which differ for
a resampled reply), extractions by (world, agent), since a repaired reply answers a different
conversation and so may hold other values.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import random
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.pipeline import answer, write_scenario
from tests.conftest import start_prefect_server, stop_prefect_server
from tests.fake_openai import FakeOpenAI

TIMEOUT_S = 2.0  # the client's [llm] timeout_s; an injected timeout answers after twice that
RATES = {"HTTP 500": 0.05, "HTTP 429": 0.05, "malformed JSON": 0.05, "timeout": 0.01}
FAULT_QUEUE = 50_000  # faults drawn up front: more than any run here sends


def draws(seed: int, n: int) -> list[str]:
    """The outcome of each of n requests in arrival order: a fault's name at its rate, else "none"."""
    rng, kinds = random.Random(seed), []
    for _ in range(n):
        roll, kind = rng.random(), "none"
        for name, rate in RATES.items():
            if roll < rate:
                kind = name
                break
            roll -= rate
        kinds.append(kind)
    return kinds


def queue_faults(fake: FakeOpenAI, seed: int, n: int) -> None:
    """Queue n per-request outcomes on the fake server (a 'slow' fault of 0 s is a plain answer)."""
    for kind in draws(seed, n):
        if kind == "HTTP 500":
            fake.fail_next(status=500)
        elif kind == "HTTP 429":
            fake.fail_next(status=429)
        elif kind == "malformed JSON":
            fake.malformed_next()
        elif kind == "timeout":
            fake.slow_next(seconds=2 * TIMEOUT_S)
        else:
            fake.slow_next(seconds=0.0)


def _serve(conn: Connection, latency: float, slots: int, seed: int | None) -> None:
    fake = FakeOpenAI(latency_s=latency, slots=slots).start()
    fake.responder = answer
    if seed is not None:
        queue_faults(fake, seed, FAULT_QUEUE)
    conn.send(fake.url)
    conn.recv()  # "stop"
    conn.send(fake.calls)
    fake.stop()


def run_once(
    scenario: Path, root: Path, *, latency: float, slots: int, seed: int | None, overrides: dict[str, str]
) -> dict[str, Any]:
    """One scenario run against a fresh fake server (faulty when seed is given); its summary and call count."""
    from flows import scenario_flow

    parent, child = mp.get_context("fork").Pipe()
    server = mp.get_context("fork").Process(target=_serve, args=(child, latency, slots, seed), daemon=True)
    server.start()
    url = parent.recv()
    overrides = {
        **overrides,
        "llm.api_type": "openai", "llm.base_url": url, "llm.model": "fake-model", "llm.max_concurrency": str(slots),
        "llm.timeout_s": str(TIMEOUT_S), "simulation.transcript": "false", "logging.level": "ERROR",
    }
    started = time.perf_counter()
    try:
        summary: dict[str, Any] = scenario_flow(str(scenario), run_id="run", datasets_root=str(root), overrides=overrides)
        error = ""
    except Exception as exc:  # report what happened rather than stop: that is the figure
        summary, error = {"status": "failed"}, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    wall = time.perf_counter() - started
    parent.send("stop")
    calls = parent.recv()
    server.join(timeout=10)
    return {"summary": summary, "error": error, "wall_s": wall, "server_calls": calls}


_CONTENT = {
    "events": "SELECT world, step, agent, direction, type, source, target, content FROM events",
    # A repaired reply answers a different conversation, so its values may differ: compare who was extracted.
    "extractions": "SELECT world, agent FROM extractions",
    "personas": "SELECT * EXCLUDE (run_id) FROM personas",
}


def rows(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Each dataset's rows, by content, as a multiset (sorted list)."""
    from troupe.datasets import connect

    connection = connect(root)
    try:
        return {name: sorted(map(repr, connection.sql(sql).fetchall())) for name, sql in _CONTENT.items()}  # type: ignore[misc]
    finally:
        connection.close()


def call_counts(root: Path) -> dict[str, int]:
    """From llm_calls: records, HTTP attempts beyond the first, repairs and resamples."""
    from troupe.datasets import connect

    connection = connect(root)
    try:
        found = connection.execute(
            "SELECT count(*), coalesce(sum(attempts - 1) FILTER (WHERE attempts > 1), 0), "
            "count(*) FILTER (WHERE purpose LIKE '%repair'), count(*) FILTER (WHERE purpose LIKE '%resample%' AND purpose NOT LIKE '%repair') "
            "FROM llm_calls WHERE NOT cache_hit"
        ).fetchone()
    finally:
        connection.close()
    return dict(zip(("records", "retries", "repairs", "resamples"), map(int, found or (0, 0, 0, 0))))


def failures(root: Path) -> list[str]:
    """The run's failed items, one line each: stage, who, error type and message."""
    from troupe.datasets import connect

    connection = connect(root)
    try:
        found = connection.execute(
            "SELECT stage, coalesce(nullif(agent, ''), world), error_type, message, attempts FROM failures ORDER BY stage, world, agent"
        ).fetchall()
    finally:
        connection.close()
    return [f"{stage} {who}: {kind}: {message} (attempts {attempts})" for stage, who, kind, message, attempts in found]


def missing(clean: list[Any], faulty: list[Any]) -> int:
    """How many rows of the clean multiset the faulty one lacks."""
    return sum((Counter(clean) - Counter(faulty)).values())


RUNS = {  # label: (faults injected, overrides)
    "fault-free": (False, {}),
    "faults, no resampling": (True, {"llm.max_resamples": "0"}),
    "faults": (True, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    console = Console(width=160)
    # Each retry logs a warning; the figures are the point here (the gateway resets levels, filters stay).
    logging.getLogger("troupe.llm").addFilter(lambda record: record.levelno >= logging.ERROR)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenario = write_scenario(work / "scenario", args.personas)
        prefect, url = start_prefect_server(work / "prefect")
        os.environ["PREFECT_API_URL"] = url
        try:
            for i, (label, (faults, overrides)) in enumerate(RUNS.items()):
                root = work / f"run-{i}"
                seed = args.seed if faults else None
                result = run_once(scenario, root, latency=args.latency, slots=args.slots, seed=seed, overrides=overrides)
                results[label] = {**result, "rows": rows(root), "counts": call_counts(root), "failed": failures(root)}
        finally:
            stop_prefect_server(prefect)

    table = Table(title=f"{args.personas} personas; faults per request: " + ", ".join(f"{v:.0%} {k}" for k, v in RATES.items()))
    columns = ("run", "status", "failures", "wall s", "requests", "/ fault-free", "retries", "repairs", "resamples", *(f"{n} (lost)" for n in _CONTENT))
    for column in columns:
        table.add_column(column, justify="right")
    clean = results["fault-free"]
    for label, result in results.items():
        c, summary = result["counts"], result["summary"]
        lost = [f"{len(result['rows'][n])} ({missing(clean['rows'][n], result['rows'][n])})" for n in _CONTENT]
        table.add_row(
            label, str(summary.get("status")), str(summary.get("failures", "-")), f"{result['wall_s']:.1f}",
            str(result["server_calls"]), f"{result['server_calls'] / max(clean['server_calls'], 1):.3f}",
            str(c["retries"]), str(c["repairs"]), str(c["resamples"]), *lost,
        )
    console.print(table)
    for label, result in results.items():
        if result["error"]:
            console.print(f"{label}: the run failed: {result['error']}")
        elif RUNS[label][0]:
            served = Counter(draws(args.seed, result["server_calls"]))  # the queue is consumed in arrival order
            console.print(f"{label}: faults served: " + ", ".join(f"{served[kind]} {kind}" for kind in RATES))
        for line in result["failed"]:
            console.print(f"{label}: failed item: {line}", soft_wrap=True, markup=False)


if __name__ == "__main__":
    main()

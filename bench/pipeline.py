"""Pipeline figures: whole `troupe run` processes on many independent people against a slow fake server.

    python -m bench.pipeline                      # P1, P4 (1,000 people at 300 ms) and P5 (10,000 at 50 ms)
                                                  # P4: the same command again, and under a new run id
    python -m bench.pipeline --sweep 10,25,50,100,200   # P1 first runs per [pipeline] shard_size
    python -m bench.pipeline --people 1000 --big 0      # P1 and P4 only
    python -m bench.pipeline --big 0 --ephemeral        # P1 and P4 on Prefect's temporary server per run
    python -m bench.pipeline --people 200 --big 0 --runner ray   # P1 and P4 on a local Ray (threads | dask | ray)

Each person is an isolated world (one ``kind: isolated`` entry over a ``personas_file``): one turn
and one extraction, two dependent calls. Runs `troupe run` as a child process reporting to a
Prefect server this command starts (a persistent server, as `troupe` uses by default), against
the fake OpenAI-compatible server in a process of its own with ``--latency`` seconds per call and
``--slots`` concurrent slots (and ``[llm] max_concurrency`` = slots). The ideal schedule is
2 x latency x ceil(people / slots). Peak RSS is the child's ``ru_maxrss``; task runs are read
from the run's ``runs`` row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from tests.conftest import start_prefect_server, stop_prefect_server
from tests.fake_process import FakeOpenAIProcess


def write_scenario(folder: Path, people: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "people.jsonl").open("w", encoding="utf-8") as out:
        for i in range(people):
            title = ["nurse", "driver", "chef", "teacher"][i % 4]
            out.write(json.dumps({"type": "TinyPerson", "persona": {"name": f"Person {i:05d}", "age": 20 + i % 60, "occupation": {"title": title}}}) + "\n")
    scenario = {
        "name": f"survey-{people}",
        "config": {"simulation.max_turns_until_done": 1},
        "personas_file": "people.jsonl",
        "worlds": [
            {
                "name": "Survey",
                "kind": "isolated",
                "steps": 1,
                "stimuli": [{"step": 1, "kind": "listen", "source": "Interviewer", "content": "Would you pay 4 euros for a croissant? Why?"}],
            }
        ],
        "extraction": {"objective": "Would this person pay 4 euros for a croissant?", "fields": {"would_pay": {"type": "bool"}, "reason": {"type": "str"}}},
    }
    path = folder / "survey.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def answer(body: dict) -> dict | None:
    """A survey answer that keeps the world quiet (THINK then DONE), so calls stay one per persona."""
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if "actions" in schema.get("properties", {}):
        return {
            "actions": [{"type": "THINK", "content": "Four euros is a lot.", "target": ""}, {"type": "DONE", "content": "", "target": ""}],
            "cognitive_state": {"goals": "answer", "context": "survey", "attention": "price", "emotions": "calm"},
        }
    return None  # extraction: the fake's schema-valid default


def troupe_run(scenario: Path, root: Path, run_id: str, settings: dict[str, Any], api_url: str | None = None) -> dict[str, Any]:
    """One `troupe run` child process: wall time, peak RSS (MiB) and the run's row.

    With api_url None, the child gets no PREFECT_API_URL and Prefect's temporary server.
    """
    command = [sys.executable, "-m", "flows.cli", "run", str(scenario), "--datasets", str(root), "--run-id", run_id, "--quiet"]
    for key, value in {**settings, **({} if api_url else {"prefect.server": "ephemeral"})}.items():
        command += ["--set", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        summary, errors = out.read().decode(), err.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"troupe run failed:\n{errors[-2000:]}")
    import duckdb

    row = duckdb.sql(
        f"SELECT status, calls, cache_hits, task_runs FROM read_parquet('{root}/runs/run_id={run_id}/*.parquet')"
    ).fetchall()[0]
    cpu = usage.ru_utime + usage.ru_stime
    result = {"wall": wall, "cpu": cpu, "rss_mib": usage.ru_maxrss / 1024, "status": row[0], "calls": row[1], "hits": row[2], "task_runs": row[3]}
    if "(reused" in summary:  # answered with the completed run: this process paid nothing and ran no task
        result.update(calls=0, hits=0, task_runs=0)
    return result


def settings_for(url: str, slots: int, shard_size: int, window: int, runner: str = "threads", workers: int = 2) -> dict[str, Any]:
    return {
        "llm.api_type": "openai", "llm.base_url": url, "llm.model": "fake-model", "llm.max_concurrency": slots,
        "simulation.transcript": "false", "pipeline.shard_size": shard_size, "pipeline.window": window,
        "preflight.check_endpoint": "false", "pipeline.runner": runner, "pipeline.cluster_workers": workers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--big", type=int, default=10_000, help="people for P5 (0 = skip)")
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--big-latency", type=float, default=0.05)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=50)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--sweep", default="", help="comma-separated shard sizes: P1 first runs only")
    parser.add_argument("--ephemeral", action="store_true", help="Prefect's temporary server per run instead of one server")
    parser.add_argument("--runner", choices=["threads", "dask", "ray"], default="threads", help="[pipeline] runner")
    parser.add_argument("--workers", type=int, default=2, help="[pipeline] cluster_workers: a local cluster's worker processes")
    args = parser.parse_args()
    console = Console(width=170)
    console.print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")
    cluster = "" if args.runner == "threads" else f" x {args.workers} workers"
    table = Table(title=f"troupe run, isolated people, one turn + one extraction each; {args.slots} slots; runner {args.runner}{cluster}")
    for column in (
        "case", "people", "latency s", "shard", "calls", "peak in flight", "task runs", "wall s", "ideal s", "wall / ideal",
        "wall per person", "CPU s", "CPU per person", "peak RSS MiB",
    ):
        table.add_column(column, justify="right")
    results: dict[str, dict[str, Any]] = {}

    def record(case: str, people: int, latency: float, shard: int, result: dict[str, Any], peak: int) -> None:
        ideal = 2 * latency * math.ceil(people / args.slots) if result["calls"] else 0.0
        result.update(ideal=ideal, per_person=result["wall"] / people)
        results[case] = result
        table.add_row(
            case, f"{people:,}", f"{latency:g}", str(shard), str(result["calls"]), str(peak), str(result["task_runs"]),
            f"{result['wall']:.1f}", f"{ideal:.1f}", f"{result['wall'] / ideal:.2f}" if ideal else "-",
            f"{result['per_person'] * 1000:.1f} ms", f"{result['cpu']:.1f}", f"{result['cpu'] / people * 1000:.1f} ms", f"{result['rss_mib']:.0f}",
        )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, api = (None, None) if args.ephemeral else start_prefect_server(root / "prefect")

        def troupe(scenario: Path, data: Path, run_id: str, settings: dict[str, Any]) -> dict[str, Any]:
            return troupe_run(scenario, data, run_id, settings, api)

        try:
            with FakeOpenAIProcess(latency_s=args.latency, slots=args.slots, responder=answer) as fake:
                scenario = write_scenario(root / "small", args.people)
                if args.sweep:
                    for size in (int(s) for s in args.sweep.split(",")):
                        settings = settings_for(fake.url, args.slots, size, args.window, args.runner, args.workers)
                        settings["cache.dir"] = str(root / f"cache-{size}")  # every size starts cold
                        fake.reset()
                        result = troupe(scenario, root / "data", f"sweep-{size}", settings)
                        record(f"P1 shard {size}", args.people, args.latency, size, result, fake.stats()["peak_concurrency"])
                else:
                    settings = settings_for(fake.url, args.slots, args.shard_size, args.window, args.runner, args.workers)
                    # P4: the same command again (answered with the completed run), then under a new run id
                    # (through the flow: every task from Prefect's task cache).
                    for case, run_id in (("P1 first run", "p1"), ("P4 rerun", "p1"), ("P4 new run id", "p4")):
                        fake.reset()
                        result = troupe(scenario, root / "data", run_id, settings)
                        record(case, args.people, args.latency, args.shard_size, result, fake.stats()["peak_concurrency"])
            if args.big and not args.sweep:
                with FakeOpenAIProcess(latency_s=args.big_latency, slots=args.slots, responder=answer) as fake:
                    settings = settings_for(fake.url, args.slots, args.shard_size, args.window, args.runner, args.workers)
                    small = write_scenario(root / "p5-small", args.people)
                    big = write_scenario(root / "p5-big", args.big)
                    for case, scenario, people in (("P5 small", small, args.people), ("P5 big", big, args.big)):
                        fake.reset()
                        settings["cache.dir"] = str(root / f"cache-{case[-3:]}")  # both start cold
                        result = troupe(scenario, root / "p5", case[-3:], settings)
                        record(case, people, args.big_latency, args.shard_size, result, fake.stats()["peak_concurrency"])
        finally:
            if server is not None:
                stop_prefect_server(server)
    console.print(table)
    for case in ("P4 rerun", "P4 new run id"):
        if case in results:
            console.print(f"{case}: calls {results[case]['calls']}, / first run wall: {results[case]['wall'] / results['P1 first run']['wall']:.2f}")
    if "P5 big" in results:
        ratio = results["P5 big"]["per_person"] / results["P5 small"]["per_person"]
        console.print(f"P5: time per person, {args.big:,} vs {args.people:,} people: {ratio:.2f}x; peak RSS {results['P5 big']['rss_mib']:.0f} MiB")
    console.print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()

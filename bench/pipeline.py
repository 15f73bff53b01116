"""Pipeline figures: a many-persona single-turn scenario against a slow fake server.

    python -m bench.pipeline [--personas 200] [--latency 0.3] [--slots 64]

Writes a scenario with --personas inline personas who each answer one survey question (one
world step: one call each) and an extraction per persona (one call each): two dependent stages.
Runs it as the scenario flow on a Prefect server this command starts, against the fake
OpenAI-compatible server (in a process of its own) with --latency seconds per call and --slots
concurrent slots, with the
gateway's max_concurrency = --slots. Prints the wall time against the ideal
(ceil(calls / slots) x latency per dependent stage), then the same for a rerun (warm caches).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from tests.conftest import start_prefect_server, stop_prefect_server
from tests.fake_process import FakeOpenAIProcess


def write_scenario(path: Path, personas: int) -> None:
    scenario = {
        "name": "survey-bench",
        "config": {"simulation.max_turns_until_done": 1},
        "personas": [
            {"persona": {"name": f"Person {i:04d}", "age": 20 + i % 60, "occupation": {"title": ["nurse", "driver", "chef", "teacher"][i % 4]}}}
            for i in range(personas)
        ],
        "worlds": [
            {
                "name": "Survey",
                "steps": 1,
                "everyone_accessible": False,
                "stimuli": [{"step": 1, "kind": "listen", "source": "Interviewer", "content": "Would you pay 4 euros for a croissant? Why?"}],
            }
        ],
        "extraction": {"objective": "Would this person pay 4 euros for a croissant?", "fields": {"would_pay": {"type": "bool"}, "reason": {"type": "str"}}},
    }
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))


def answer(body: dict) -> dict | None:
    """A survey answer that keeps the world quiet (THINK then DONE), so calls stay one per persona."""
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if "actions" in schema.get("properties", {}):
        return {
            "actions": [{"type": "THINK", "content": "Four euros is a lot.", "target": ""}, {"type": "DONE", "content": "", "target": ""}],
            "cognitive_state": {"goals": "answer", "context": "survey", "attention": "price", "emotions": "calm"},
        }
    return None  # extraction: the fake's schema-valid default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--slots", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenario = root / "survey.yaml"
        write_scenario(scenario, args.personas)
        server, url = start_prefect_server(root / "prefect")
        os.environ["PREFECT_API_URL"] = url
        try:
            from flows import scenario_flow

            rows = []
            with FakeOpenAIProcess(latency_s=args.latency, slots=args.slots, responder=answer) as fake:
                overrides = {
                    "llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model",
                    "llm.max_concurrency": str(args.slots), "simulation.transcript": "false",
                }
                for label in ("first run", "rerun"):
                    fake.reset()
                    started = time.perf_counter()
                    scenario_flow(str(scenario), run_id=label.replace(" ", "-"), datasets_root=str(root / "datasets"), overrides=overrides)
                    wall = time.perf_counter() - started
                    stats = fake.stats()
                    stages = 2 if stats["calls"] else 0
                    ideal = stages * math.ceil(args.personas / args.slots) * args.latency
                    rows.append((label, stats["calls"], wall, ideal, stats["peak_concurrency"]))
        finally:
            stop_prefect_server(server)

    table = Table(title=f"{args.personas} personas, one turn + one extraction each; {args.latency:g} s latency, {args.slots} slots")
    for column in ("run", "LLM calls", "wall s", "ideal s", "wall / ideal", "peak concurrency"):
        table.add_column(column, justify="right")
    for label, calls, wall, ideal, peak in rows:
        table.add_row(label, str(calls), f"{wall:.2f}", f"{ideal:.2f}", f"{wall / ideal:.2f}" if ideal else "-", str(peak))
    first_wall = rows[0][2]
    Console().print(table)
    Console().print(f"rerun / first run wall time: {rows[1][2] / first_wall:.2f}")


if __name__ == "__main__":
    main()

"""A population as a pipeline stage: `troupe run` of a scenario whose only study is ``population:``.

    python -m bench.population_pipeline [--size 1000] [--latency 0.3] [--slots 64] [--shard-size 100] [--planted 0.05]

Writes a scenario with ``population: {spec: <the three-dimension spec of bench.population>, size}``
and runs it as a `troupe run` child process against the fake OpenAI-compatible server (a process
of its own, --latency seconds a call, --slots slots; the gateway's max_concurrency = --slots), on
one Prefect server started for the bench. The fake writes each person around the attributes in
the prompt, and a --planted share of first drafts copy the previous person (near-duplicates, some
across shard boundaries, which the diversity task after the shards must catch). Cases: the first
run; a rerun under a new run id (every task from Prefect's task cache); and, for comparison, the
same population written in-process by TinyPersonFactory (no Prefect, no datasets). Prints wall
time against the ideal (ceil(calls / slots) x latency per dependent round), calls, task runs and
the near-duplicate rate the run recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from bench.pipeline import settings_for, troupe_run
from bench.population import Writer
from tests.conftest import fake_config, start_prefect_server, stop_prefect_server
from tests.fake_process import FakeOpenAIProcess
from tests.test_factory import SPEC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--planted", type=float, default=0.05)
    args = parser.parse_args()
    every = round(1 / args.planted) if args.planted > 0 else 0
    console = Console(width=160)
    console.print(f"load: {os.getloadavg()[0]:.2f} (1 min, {os.cpu_count()} CPUs)")
    table = Table(title=f"{args.size} people, 3 dimensions; {args.latency:g} s latency, {args.slots} slots, shard {args.shard_size}")
    for column in ("case", "LLM calls", "task runs", "wall s", "ideal s", "wall / ideal", "near-dup found", "near-dup left"):
        table.add_column(column, justify="right")

    def ideal(calls: int) -> float:
        rewrites = max(calls - args.size, 0)
        return (math.ceil(args.size / args.slots) + math.ceil(rewrites / args.slots)) * args.latency if calls else 0.0

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "spec.yaml").write_text(yaml.safe_dump(SPEC))
        scenario = root / "population.yaml"
        scenario.write_text(yaml.safe_dump({"name": "bench-population", "population": {"spec": "spec.yaml", "size": args.size, "seed": 1}}))
        server, api = start_prefect_server(root / "prefect")
        try:
            with FakeOpenAIProcess(latency_s=args.latency, slots=args.slots, responder=Writer(every)) as fake:
                settings = settings_for(fake.url, args.slots, args.shard_size, args.window)
                for case, run_id in (("troupe run, first", "p1"), ("troupe run, rerun (new run id)", "p2")):
                    fake.reset()
                    result = troupe_run(scenario, root / "data", run_id, settings, api)
                    profile = json.loads((root / "data" / "populations" / run_id / "profile.json").read_text())
                    calls = fake.stats()["calls"]
                    table.add_row(
                        case, str(calls), str(result["task_runs"]), f"{result['wall']:.1f}", f"{ideal(calls):.1f}",
                        f"{result['wall'] / ideal(calls):.2f}" if calls else "-",
                        f"{profile['rewritten_near_duplicates']} ({profile['near_duplicate_rate']:.1%})",
                        str(profile["residual_near_duplicates"]),
                    )
                from troupe.factory import TinyPersonFactory
                from troupe.llm import LLMGateway
                from troupe.population import parse_spec

                fake.reset()
                server_url = type("Server", (), {"url": fake.url})()
                config = fake_config(server_url, root / "library", **{"llm.max_concurrency": str(args.slots), "llm.timeout_s": 60})
                factory = TinyPersonFactory(spec=parse_spec(SPEC), population_size=args.size, seed=1, gateway=LLMGateway(config))
                started = time.perf_counter()
                factory.generate_people()
                wall = time.perf_counter() - started
                report = factory.profile()
                calls = fake.stats()["calls"]
                table.add_row(
                    "library (TinyPersonFactory, in-process)", str(calls), "-", f"{wall:.1f}", f"{ideal(calls):.1f}",
                    f"{wall / ideal(calls):.2f}", f"{report.rewritten_near_duplicates} ({report.near_duplicate_rate:.1%})",
                    str(report.residual_near_duplicates),
                )
        finally:
            stop_prefect_server(server)
    console.print(table)
    console.print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

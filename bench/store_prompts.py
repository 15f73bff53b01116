"""What ``[datasets] store_prompts`` costs on disk, and the time of ``troupe export --calls``.

    python -m bench.store_prompts                   # 6 people in one world, 8 steps
    python -m bench.store_prompts --people 10 --steps 12

Runs one scenario through the scenario flow (Prefect on a temporary server this command starts,
the gateway and the openai client) against the tests' fake OpenAI-compatible server twice with
one call cache: without prompts, then with ``store_prompts = true`` (every call from the call
cache). The prompts are troupe's real templates (persona, memory, the world's conversation so
far); the fake server's replies are one short line per turn, so ``completion`` is small and the
figure is the prompts'. Prints each run's bytes on disk per dataset and the export's time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.conftest import start_prefect_server, stop_prefect_server
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, talk

NAMES = ("Ana", "Ben", "Cleo", "Dara", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo", "Kit", "Lou")


def scenario(people: int, steps: int) -> str:
    personas = "\n".join(
        f"  - persona: {{name: {name}, age: {30 + i}, occupation: {{title: Baker}}, personality: {{traits: [curious, talkative]}}}}"
        for i, name in enumerate(NAMES[:people])
    )
    return f"""
name: bench-prompts
config:
  simulation.max_turns_until_done: 1
personas:
{personas}
worlds:
  - name: Street
    steps: {steps}
    stimuli:
      - step: 1
        kind: broadcast
        source: Host
        content: "A new bakery opens on Monday. What should it sell?"
"""


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    people = NAMES[: args.people]
    console = Console()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as fake:
        base = Path(tmp)
        server, url = start_prefect_server(base / "prefect")
        try:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: url}):
                import tasks  # noqa: F401 - quiets Prefect's per-task logging before the flows load
                from flows import scenario_flow
                from troupe.export import Format, export_run

                Script({n: (lambda k, n=n: [talk(f"{n} says idea number {k + 1} for the bakery."), done()]) for n in people}).install(fake)
                path = base / "scenario.yaml"
                path.write_text(scenario(args.people, args.steps), encoding="utf-8")
                overrides = {"llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model",
                             "cache.dir": str(base / "cache"), "simulation.transcript": "false"}
                root = base / "datasets"
                scenario_flow(str(path), run_id="plain", datasets_root=str(root), overrides=overrides)
                paid = fake.calls
                scenario_flow(str(path), run_id="prompts", datasets_root=str(root), overrides={**overrides, "datasets.store_prompts": "true"})
                started = time.perf_counter()
                summary = export_run(root, "prompts", Format.openai_chat, base / "calls.jsonl", calls=True)
                export_s = time.perf_counter() - started
                size = (base / "calls.jsonl").stat().st_size
                from prefect.logging.handlers import APILogWorker

                APILogWorker.drain_all(timeout=10)  # deliver queued logs while the server is up
        finally:
            stop_prefect_server(server)
        datasets = sorted(p.name for p in root.iterdir() if not p.name.startswith((".", "_")))
        table = Table(title=f"{args.people} people, {args.steps} steps: {paid} calls (the second run paid {fake.calls - paid})")
        for column in ("dataset", "without prompts (KiB)", "store_prompts (KiB)"):
            table.add_column(column, justify="right" if "KiB" in column else "left")
        totals = [0, 0]
        for name in datasets:
            sizes = [folder_bytes(root / name / f"run_id={run}") for run in ("plain", "prompts")]
            totals = [t + s for t, s in zip(totals, sizes)]
            table.add_row(name, f"{sizes[0] / 1024:.1f}", f"{sizes[1] / 1024:.1f}")
        table.add_row("all", f"{totals[0] / 1024:.1f}", f"{totals[1] / 1024:.1f}")
        console.print(table)
        console.print(f"export --calls: {summary.conversations} examples, {size / 1024:.0f} KiB of JSONL in {export_s:.2f} s")


if __name__ == "__main__":
    main()

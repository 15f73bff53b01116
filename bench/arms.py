"""What an experiment costs beyond its worlds: the arm labelling of part files and the comparisons stage.

    python -m bench.arms                     # 100 people x 2 arms, isolated, 2 steps, an extraction
    python -m bench.arms --people 200 --repeat 3

Runs two scenarios through the scenario flow (a temporary Prefect server this command starts, the
tests' fake OpenAI-compatible server, 0 ms latency, so the figures are troupe's own work) with the
same number of worlds, LLM calls and rows: an experiment (``assign: within``: each person
interviewed once per arm, the treatment arm with one more stimulus, two comparisons) and the same
interviews without an experiment, for twice the people. Each run has a fresh call cache and task
cache. Prints each run's wall time (the fastest of --repeat), and in the experiment's, the time
spent labelling parts (``flows.stages.label_part``) and computing the comparisons.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from tests.conftest import start_prefect_server, stop_prefect_server
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, talk

AD = "An ad: fresh bread at half price every morning."


def scenario(people: int, experiment: bool) -> str:
    personas = "\n".join(f"  - persona: {{name: P{i:04d}, age: {20 + i % 60}, occupation: {{title: Clerk}}}}" for i in range(people))
    block = f"""
experiment:
  arms:
    - name: control
    - name: treatment
      stimuli: [{{step: 1, kind: see, content: "{AD}"}}]
  compare:
    - field: would_visit
    - field: score
""" if experiment else ""
    return f"""
name: bench-arms
config:
  simulation.max_turns_until_done: 1
personas:
{personas}
worlds:
  - name: Interview
    kind: isolated
    steps: 2
    stimuli:
      - {{step: 1, source: Interviewer, content: "We are opening a bakery on your street. Would you go?"}}
extraction:
  objective: Whether each person would visit the bakery.
  fields:
    would_visit: {{type: bool}}
    score: {{type: int, min: 0, max: 10}}
{block}"""


class Timed:
    """A function of module replaced by a wrapper that adds up its wall time and calls."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name, self.seconds, self.calls = module, name, 0.0, 0
        self.original: Callable[..., Any] = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        setattr(module, name, wrapper)

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100, help="people per arm (the plain run has twice as many)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    console = Console(width=120)
    results: dict[str, list[tuple[float, float, int, float, int]]] = {"plain": [], "experiment": []}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as fake:
        base = Path(tmp)
        server, url = start_prefect_server(base / "prefect")
        try:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: url}):
                import tasks  # noqa: F401 - quiets Prefect's per-task logging before the flows load
                from flows import scenario_flow, stages

                label, compare = Timed(stages, "label_part"), Timed(stages, "comparisons_stage")
                paths = {}
                for kind, people, experiment in (("plain", 2 * args.people, False), ("experiment", args.people, True)):
                    paths[kind] = base / f"{kind}.yaml"
                    paths[kind].write_text(scenario(people, experiment), encoding="utf-8")
                names = [f"P{i:04d}" for i in range(2 * args.people)]
                for round_ in range(args.repeat):
                    for kind in ("plain", "experiment"):
                        fake.reset()
                        Script({n: (lambda k, n=n: [talk(f"{n} would go."), done()]) for n in names}).install(fake)
                        label.reset()
                        compare.reset()
                        work = base / f"{kind}-{round_}"
                        overrides = {"llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model",
                                     "cache.dir": str(work / "cache"), "simulation.transcript": "false"}
                        started = time.perf_counter()
                        summary = scenario_flow(str(paths[kind]), run_id=kind, datasets_root=str(work / "datasets"), overrides=overrides)
                        wall = time.perf_counter() - started
                        assert summary["status"] == "completed", summary
                        results[kind].append((wall, label.seconds, label.calls, compare.seconds, fake.calls))
                from prefect.logging.handlers import APILogWorker

                APILogWorker.drain_all(timeout=10)  # deliver queued logs while the server is up
        finally:
            stop_prefect_server(server)
    table = Table(title=f"{2 * args.people} interviews (2 steps + an extraction each), fastest of {args.repeat}")
    for column in ("run", "LLM calls", "wall (s)", "labelling parts (s)", "parts labelled", "comparisons (s)"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for kind, runs in results.items():
        wall, labelling, parts, comparing, calls = min(runs)
        experiment = kind == "experiment"
        table.add_row(
            "experiment (2 arms x %d people)" % args.people if experiment else "no experiment (%d people)" % (2 * args.people),
            str(calls), f"{wall:.1f}", f"{labelling:.2f}" if experiment else "-", str(parts) if experiment else "-",
            f"{comparing:.2f}" if experiment else "-",
        )
    console.print(table)


if __name__ == "__main__":
    main()

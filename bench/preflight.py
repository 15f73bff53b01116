"""What the checks before a run cost: ``check_run`` on the demo scenario, and ``troupe validate``'s SQL binding.

    python -m bench.preflight [--repeat 20]

Times, in this process after one warm-up, ``flows.preflight.check_run`` on the packaged demo
scenario against the fake OpenAI-compatible server in a process of its own (so the endpoint check
is a real GET /models over HTTP), with and without that endpoint check, and
``scenario_problems`` (everything ``troupe validate`` does, including binding the demo's reduction
in DuckDB). Prints the median and the slowest of --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table

from flows import preflight
from tests.fake_process import FakeOpenAIProcess

DEMO = Path(__file__).resolve().parent.parent / "troupe" / "examples" / "scenarios" / "demo.yaml"


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    function()  # warm-up: imports, the scenario cache, the first connection
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIProcess() as fake:
        root = Path(tmp) / "datasets"
        remote = {"llm.api_type": "openai", "llm.base_url": fake.url}
        cases = {
            "check_run, endpoint checked (GET /models)": lambda: preflight.check_run(DEMO, root, "r1", remote),
            "check_run, endpoint check off": lambda: preflight.check_run(DEMO, root, "r1", {**remote, "preflight.check_endpoint": "false"}),
            "scenario_problems (troupe validate)": lambda: preflight.scenario_problems(DEMO),
        }
        for label, function in cases.items():
            times = timed(function, args.repeat)
            rows.append((label, statistics.median(times), max(times)))
        assert not root.exists(), "the checks must write nothing"
    table = Table(title=f"preflight on the demo scenario, {args.repeat} runs each")
    for column in ("check", "median ms", "slowest ms"):
        table.add_column(column, justify="right")
    for label, median, slowest in rows:
        table.add_row(label, f"{median * 1000:.1f}", f"{slowest * 1000:.1f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()

"""Whole-process time of a tiny `troupe run` with troupe's persistent Prefect server vs Prefect's temporary one.

    python -m bench.prefect_server              # 3 runs of each, alternating
    python -m bench.prefect_server --runs 5

The run is the demo scenario (2 people, 2 steps, 1 extraction, 1 reduction) against the fake
OpenAI-compatible server in a process of its own, with no latency, into a fresh dataset root each
time (so every run makes the same calls). "persistent" is ``[prefect] server = auto`` with a server
that `troupe server start` started beforehand (its own start time is printed too); "ephemeral" is
``[prefect] server = ephemeral``: Prefect starts a temporary server inside the run and stops it at
the end. Each figure is the wall time of the whole `troupe run` process, start to exit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.conftest import free_port
from tests.fake_process import FakeOpenAIProcess

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "troupe" / "examples" / "scenarios" / "demo.yaml"


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind")
    args = parser.parse_args()

    console = Console()
    with tempfile.TemporaryDirectory(prefix="troupe-bench-server-") as tmp, FakeOpenAIProcess() as fake:
        env = {
            **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL" and not k.startswith("TROUPE_")},
            "TROUPE_LLM__API_TYPE": "openai", "TROUPE_LLM__BASE_URL": fake.url, "TROUPE_LLM__MODEL": "fake-model",
            "TROUPE_PREFECT__HOME": str(Path(tmp) / "prefect-home"), "TROUPE_PREFECT__PORT": str(free_port()),
        }
        troupe = [sys.executable, "-m", "flows.cli"]
        server_start = timed([*troupe, "server", "start"], env)
        times: dict[str, list[float]] = {"persistent": [], "ephemeral": []}
        try:
            for i in range(args.runs):
                for kind, mode in (("persistent", "auto"), ("ephemeral", "ephemeral")):
                    root = Path(tmp) / f"{kind}-{i}"
                    run = [*troupe, "run", str(DEMO), "--quiet", "--datasets", str(root)]
                    times[kind].append(timed(run, {**env, "TROUPE_PREFECT__SERVER": mode}))
        finally:
            subprocess.run([*troupe, "server", "stop"], env=env, cwd=REPO, capture_output=True)

    table = Table(title=f"tiny `troupe run` (demo scenario), whole process, {args.runs} runs each")
    for column in ("Prefect server", "median s", "min s", "max s"):
        table.add_column(column)
    for kind, values in times.items():
        table.add_row(kind, f"{statistics.median(values):.1f}", f"{min(values):.1f}", f"{max(values):.1f}")
    console.print(table)
    ratio = statistics.median(times["ephemeral"]) / statistics.median(times["persistent"])
    console.print(f"ephemeral / persistent (medians): {ratio:.2f}x; `troupe server start` took {server_start:.1f} s once")
    console.print(f"load: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")


if __name__ == "__main__":
    main()

"""control.begin/end figures: a notebook executed live, re-executed unchanged, and re-executed with its last cell changed.

    python -m bench.control [--steps 4] [--latency 0.3]

The notebook is TinyTroupe's chat room (Lisa and Oscar, ``--steps`` world steps) against a fake
OpenAI-compatible server answering each call after ``--latency`` seconds, with the call cache
off so that only control's trace file replays. Prints wall time and calls per execution.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from troupe import TinyWorld, control
from troupe.examples import create_lisa_the_data_scientist, create_oscar_the_architect
from troupe.llm import LLMGateway, set_default_gateway


def notebook(trace: Path, steps: int, last_cell: str) -> None:
    control.begin(trace)
    lisa, oscar = create_lisa_the_data_scientist(transcript=False), create_oscar_the_architect(transcript=False)
    world = TinyWorld("Chat Room", [lisa, oscar], transcript=False)
    world.make_everyone_accessible()
    lisa.listen("Talk to Oscar to know more about him")
    world.run(steps)
    lisa.listen(last_cell)
    world.run(1)
    control.end()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    table = Table("execution", "wall s", "calls to the model", "replayed from the trace")
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(latency_s=args.latency) as server:
        set_default_gateway(LLMGateway(fake_config(server, Path(tmp), **{"cache.enabled": "false"})))
        trace = Path(tmp) / "notebook.cache.json"
        for label, last_cell in (("first (live)", "What do you think of cities?"), ("unchanged", "What do you think of cities?"), ("last cell changed", "And of villages?")):
            before = server.calls
            started = time.perf_counter()
            notebook(trace, args.steps, last_cell)
            wall = time.perf_counter() - started
            table.add_row(label, f"{wall:.2f}", str(server.calls - before), str(control.cache_hits()))
        set_default_gateway(None)
    Console().print(table)
    Console().print(f"{args.steps} + 1 world steps, 2 agents, fake server latency {args.latency} s per call, call cache off.")


if __name__ == "__main__":
    main()

"""Report and export figures on a large synthetic run: time and size of each output.

    python -m bench.report_export [--people 2000]

Writes one run's datasets with troupe's own partition writer (no LLM: the figures are about
reading the datasets and writing the outputs): --people personas with sampled attributes, each
in a world of their own where an interviewer asks two questions and the person answers twice
(7 events each), one extraction record per person (a yes/no, a category, a free-text idea), an
ideas reduction, and 3,000 LLM-call rows. Then times, each from a fresh process state of its own
call: the HTML report, the Markdown report, and the export in each format, per agent and per
conversation.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from troupe.datasets import extractions_schema, table_from_rows, write_partition
from troupe.datasets.schemas import EVENTS, LLM_CALLS, PERSONAS, RUNS

RUN = "bench-run"
REGIONS = ("North", "South", "East", "West")
AGES = ("18-29", "30-44", "45-64", "65-90")
FAVOURITES = ("bread", "cake", "coffee")
IDEAS = ("Rye bread", "Vegan cakes", "Longer hours", "Loyalty card", "Gluten-free range")


def write_run(root: Path, people: int) -> None:
    rng = random.Random(7)
    personas, events, extractions = [], [], []
    for i in range(people):
        name = f"Person {i:05d}"
        sampled = {"age": rng.choice(AGES), "region": rng.choice(REGIONS), "gender": rng.choice(("female", "male"))}
        spec = {"name": name, "age": 30 + i % 50, "occupation": {"title": "Clerk"}, "personality": {"traits": ["Curious."]}}
        personas.append({"persona_id": f"{i:016x}", "name": name, "age": str(spec["age"]), "spec_json": json.dumps(spec), "sampled": json.dumps(sampled)})
        world = f"Interview {i:05d}"
        log = [
            (1, "stimulus", "CONVERSATION", "Interviewer", "What do you think of the new bakery?"),
            (1, "action", "TALK", name, f"I like it; the {rng.choice(FAVOURITES)} is good."),
            (1, "action", "DONE", name, ""),
            (2, "stimulus", "CONVERSATION", "Interviewer", "What should it offer next?"),
            (2, "action", "THINK", name, "Something I would buy every week."),
            (2, "action", "TALK", name, f"{rng.choice(IDEAS)}, please."),
            (2, "action", "DONE", name, ""),
        ]
        for seq, (step, direction, kind, source, content) in enumerate(log):
            events.append({"world": world, "seq": seq, "step": step, "agent": name, "direction": direction, "type": kind,
                           "source": source, "target": "", "content": content, "call_key": ""})
        extractions.append({"world": world, "agent": name, "call_key": "", "visit": rng.random() < 0.6,
                            "favourite": rng.choice(FAVOURITES), "idea": rng.choice(IDEAS)})
    calls = [{"seq": i, "key": f"{i:064x}", "model": "m", "purpose": ("act:x", "extract:x")[i % 2], "prompt_tokens": 900,
              "completion_tokens": 60, "latency_s": 0.3, "cost_usd": 0.0002, "cache_hit": False, "finish_reason": "stop", "attempts": 1}
             for i in range(3 * people // 2)]
    write_partition(root, "runs", RUN, table_from_rows([{"scenario": "bench", "status": "completed", "model": "m", "api_type": "openai",
                                                         "calls": len(calls), "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                         "cost_usd": 0.0}], RUNS))
    write_partition(root, "personas", RUN, table_from_rows(personas, PERSONAS if "sampled" in PERSONAS.names else pa.schema([*PERSONAS, ("sampled", pa.string())])))
    write_partition(root, "events", RUN, table_from_rows(events, EVENTS))
    write_partition(root, "extractions", RUN, table_from_rows(extractions, extractions_schema({"visit": "bool", "favourite": "str", "idea": "str"})))
    write_partition(root, "llm_calls", RUN, table_from_rows(calls, LLM_CALLS))
    ideas = {}
    for row in extractions:
        ideas[row["idea"]] = ideas.get(row["idea"], 0) + 1
    write_partition(root, "reduction_ideas", RUN, pa.Table.from_pylist([{"title": k, "support": v} for k, v in ideas.items()]))


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args()

    from troupe.export import Format, Per, export_run
    from troupe.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "datasets", Path(tmp) / "out"
        seconds, _ = timed(lambda: write_run(root, args.people))
        console = Console()
        console.print(f"{args.people} people, {7 * args.people} events: datasets written in {seconds:.1f} s")
        table = Table("output", "seconds", "size", "records")
        for suffix in ("html", "md"):
            seconds, written = timed(lambda: write_report(root, RUN, out / f"report.{suffix}"))
            size = sum(p.stat().st_size for p in written)
            table.add_row(f"report .{suffix}", f"{seconds:.2f}", f"{size / 1024:.0f} KiB", f"{len(written)} files")
        for per in Per:
            for fmt, suffix in ((Format.openai_chat, "jsonl"), (Format.sharegpt, "json"), (Format.parquet, "parquet")):
                path = out / f"{per.value}.{suffix}"
                seconds, summary = timed(lambda: export_run(root, RUN, fmt, path, per))
                table.add_row(f"export {fmt.value} --per {per.value}", f"{seconds:.2f}", f"{path.stat().st_size / 1024:.0f} KiB",
                              f"{summary.conversations} conversations")
        console.print(table)


if __name__ == "__main__":
    main()

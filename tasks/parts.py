"""A shard task's rows as part files of its run: names, tables, and the writing both sides share.

A shard task writes its own parts when it runs. When its result comes from Prefect's cache (an
unchanged shard of an earlier run, or a finished shard of this run being resumed), the flow writes
whatever part this run does not have yet from the cached result, with the same functions: the
bytes are the same either way. Names are deterministic: stage, shard, step and a digest of the
task's inputs (``part_id``), so a part that exists holds exactly these rows.
"""

from __future__ import annotations



import pyarrow as pa

from troupe.agent.persona import Persona
from troupe.datasets.io import part_path, write_part
from troupe.datasets.rows import calls_table, events_table, extractions_table, failures_table, personas_table
from troupe.llm import CallRecord
from troupe.simulation import ExtractionResult, StepResult


def part_name(stage: str, shard: int, part_id: str, step: int | None = None, failed: bool = False) -> str:
    where = f"s{shard:05d}" + (f"-t{step:04d}" if step is not None else "")
    return f"part-{stage}-{where}-{part_id[:16]}{'-failed' if failed else ''}.parquet"


def step_tables(result: StepResult, before: list[int], calls: list[CallRecord] | None = None) -> dict[str, pa.Table]:
    """The rows of one shard step: its events (seq continuing each world's log), calls and failures."""
    return {
        "events": events_table((w.name, n, w.events) for w, n in zip(result.worlds, before)),
        "llm_calls": calls_table(result.calls if calls is None else calls),
        "failures": failures_table(result.failures),
    }


def extraction_tables(result: ExtractionResult, fields: dict[str, str], calls: list[CallRecord] | None = None) -> dict[str, pa.Table]:
    return {
        "extractions": extractions_table(result.records, fields),
        "llm_calls": calls_table(result.calls if calls is None else calls),
        "failures": failures_table(result.failures),
    }


def persona_tables(personas: list[Persona]) -> dict[str, pa.Table]:
    return {"personas": personas_table(personas)}


def write_tables(root: str, run_id: str, name: str, tables: dict[str, pa.Table]) -> dict[str, str]:
    """Write each dataset's table as part ``name`` of the run (skipping parts already there)."""
    for dataset, table in tables.items():
        write_part(root, run_id, dataset, name, table)
    return {dataset: name for dataset in tables}


def missing(root: str, run_id: str, name: str, datasets: list[str]) -> bool:
    return any(not part_path(root, run_id, dataset, name).is_file() for dataset in datasets)


def write_failed_calls(root: str, run_id: str, name: str, calls: list[CallRecord]) -> None:
    """The calls a task paid before it failed: the run's accounting keeps them."""
    if calls:
        write_part(root, run_id, "llm_calls", name, calls_table(calls))


def replayed(calls: list[CallRecord]) -> list[CallRecord]:
    """The calls of a result replayed from the task cache: none was paid this time."""
    return [c.model_copy(update={"cache_hit": True, "cost_usd": 0.0, "latency_s": 0.0, "attempts": 0}) for c in calls]




"""The extraction task: typed records from a shard of finished worlds, one LLM call per agent (concurrently)."""

from __future__ import annotations

from typing import Any

from prefect import task

from troupe.extraction import ExtractionSpec
from troupe.simulation import ShardState, extract_shard

from .options import Runtime, task_config, task_gateway
from .parts import extraction_tables, part_name, write_failed_calls, write_tables


@task(name="extract-shard", task_run_name="extract shard {shard}")
def extract_shard_task(
    state: str, spec: dict[str, Any], settings: dict[str, Any], shard: int, part_id: str, code: str, runtime: dict[str, Any]
) -> str:
    """Records from the shard's worlds (ShardState JSON); returns the ExtractionResult JSON and writes its parts."""
    config = task_config(settings, runtime)
    rt = Runtime.model_validate(runtime)
    gateway = task_gateway(config)
    extraction = ExtractionSpec.model_validate(spec)
    try:
        result = extract_shard(ShardState.model_validate_json(state), extraction, config, gateway)
    except BaseException:
        write_failed_calls(rt.datasets_root, rt.run_id, part_name("extract", shard, part_id, failed=True), gateway.ledger.records)
        raise
    fields = {name: field.storage_type for name, field in extraction.fields.items()}
    write_tables(rt.datasets_root, rt.run_id, part_name("extract", shard, part_id), extraction_tables(result, fields))
    return result.model_dump_json()

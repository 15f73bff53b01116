"""The extraction task: typed records from a finished world, one LLM call per agent (concurrently)."""

from __future__ import annotations

import json
from typing import Any

from prefect import task

from troupe.extraction import ExtractionSpec
from troupe.simulation import extract

from .options import task_config, task_gateway


@task(name="extract", task_run_name="extract {world_name}")
def extract_results(
    world: str, spec: dict[str, Any], settings: dict[str, Any], world_name: str, runtime: dict[str, Any]
) -> dict[str, Any]:
    """Records from a finished world (JSON text, as simulate_step returns it) and the calls made."""
    config = task_config(settings, runtime)
    outcome = extract(json.loads(world), ExtractionSpec.model_validate(spec), config, task_gateway(config))
    return outcome.model_dump(mode="json")

"""The persona task: a shard of the run's personas written as a part of the ``personas`` dataset.

Scenario personas come from files, fragments, builders, inline specs and personas files, resolved
and validated once by troupe.scenario; this task only turns a shard of them into rows.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from pydantic import TypeAdapter

from troupe.agent.persona import Persona

from .options import Runtime
from .parts import part_name, persona_tables, write_tables

_PERSONAS = TypeAdapter(list[Persona])


@task(name="personas-shard", task_run_name="personas shard {shard}")
def personas_shard(personas: str, shard: int, part_id: str, code: str, runtime: dict[str, Any]) -> int:
    """Write the shard's personas (a JSON list of persona dicts) as a part; returns how many."""
    rt = Runtime.model_validate(runtime)
    models = _PERSONAS.validate_json(personas)
    write_tables(rt.datasets_root, rt.run_id, part_name("personas", shard, part_id), persona_tables(models))
    return len(models)

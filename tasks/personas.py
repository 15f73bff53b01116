"""The persona task: validated persona specs for a run, in batches.

Scenario personas come from files, fragments, builders and inline specs, already resolved and
checked by troupe.scenario; this task normalises a batch through the Persona model, so every
persona that reaches a world has passed the same validation.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from troupe.agent.persona import Persona


@task(name="generate-personas", task_run_name="personas batch {batch}")
def generate_personas(specs: list[dict[str, Any]], batch: int) -> list[dict[str, Any]]:
    return [Persona.from_dict(spec, source=f"persona batch {batch}").to_dict() for spec in specs]

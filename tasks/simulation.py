"""The simulation tasks: one world step per task run.

A step is coarse enough that Prefect's per-task overhead (13-20 ms here) is noise beside the LLM
calls inside it (the agents of a step call the gateway concurrently), and fine enough that
changing the stimulus of step N reuses every step before N from the task cache.
"""

from __future__ import annotations

import json
from typing import Any

from prefect import task

from troupe.scenario import WorldSpec
from troupe.simulation import run_step

from .options import task_config, task_gateway


@task(name="simulate-step", task_run_name="{world_name} step {step}")
def simulate_step(
    world: str, spec: dict[str, Any], settings: dict[str, Any], world_name: str, step: int, runtime: dict[str, Any]
) -> dict[str, Any]:
    """Run one step of a world; returns the new world state and the calls the step made.

    The world travels as JSON text, not a dict: Prefect walks collection parameters looking for
    futures, which costs more than the step's own work for a world of hundreds of agents.
    """
    config = task_config(settings, runtime)
    outcome = run_step(json.loads(world), WorldSpec.model_validate(spec), config, task_gateway(config))
    return {"world": json.dumps(outcome.world), "calls": [c.model_dump(mode="json") for c in outcome.calls]}

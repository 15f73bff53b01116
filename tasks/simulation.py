"""The simulation task: one step of one shard of worlds per task run.

A shard step is coarse enough that Prefect's per-task cost (~10 ms) is noise beside the LLM calls
inside it (every agent of every world of the shard calls the gateway concurrently), and fine
enough to be the unit of caching and resume: its key is the shard's state before the step, that
step's stimuli, the settings that shape it and the code, so changing the stimulus of step N reuses
every step before N. State crosses the task boundary once each way as JSON text
(``model_validate_json`` / ``model_dump_json``); the task writes its own part files.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from pydantic import TypeAdapter

from troupe.simulation import ShardState, StepPlan, run_shard_step

from .options import Runtime, task_config, task_gateway
from .parts import part_name, step_tables, write_failed_calls, write_tables

_PLANS = TypeAdapter(list[StepPlan])


@task(name="simulate-shard", task_run_name="shard {shard} step {step}")
def simulate_shard(
    state: str,
    plans: str,
    settings: dict[str, Any],
    shard: int,
    step: int,
    part_id: str,
    code: str,
    runtime: dict[str, Any],
) -> str:
    """Run one step of the shard's worlds; returns the StepResult JSON (only what the step added)."""
    config = task_config(settings, runtime)
    rt = Runtime.model_validate(runtime)
    gateway = task_gateway(config)
    shard_state = ShardState.model_validate_json(state)
    try:
        result = run_shard_step(shard_state, _PLANS.validate_json(plans), config, gateway, totals=rt.totals or None)
    except BaseException:
        write_failed_calls(rt.datasets_root, rt.run_id, part_name("simulate", shard, part_id, step, failed=True), gateway.ledger.records)
        raise
    before = [len(w.events) for w in shard_state.worlds]
    write_tables(rt.datasets_root, rt.run_id, part_name("simulate", shard, part_id, step), step_tables(result, before))
    return result.model_dump_json()

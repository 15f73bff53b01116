"""The stages every flow is built from: personas, simulation, extraction, reduction, datasets.

Each stage submits troupe's Prefect tasks and returns plain data. Flows chain stages; a stage
that a flow did not ask for is recomputed from the task cache when a later stage needs its output
(nearly free when the cache is warm), so every flow can run on its own.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect.futures import PrefectFuture
from pydantic import BaseModel

import troupe
from tasks.extraction import extract_results
from tasks.options import configured, keyed_config, runtime_of
from tasks.personas import generate_personas
from tasks.reduction import reduce_run
from tasks.simulation import simulate_step
from troupe import progress
from troupe.config import Config, load_config
from troupe.datasets import write_partition
from troupe.environment import WorldState
from troupe.datasets.rows import calls_table, events_table, extractions_table, personas_table, runs_table
from troupe.llm import CallRecord
from troupe.scenario import LoadedScenario, load_scenario
from troupe.simulation import new_world
from troupe.transcript import Transcript

PERSONA_BATCH = 50


class Run(BaseModel):
    """What a flow run works on: the scenario, its configuration, where its data goes."""

    run_id: str
    loaded: LoadedScenario
    config: Config
    started: datetime

    @property
    def root(self) -> str:
        return self.config.datasets.root


def prepare(
    scenario_path: str,
    run_id: str | None = None,
    datasets_root: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Run:
    """Load and check everything before any LLM call: the scenario, its personas, the configuration.

    Precedence: packaged config.ini < ./config.ini < environment < the scenario's config < overrides.
    """
    loaded = load_scenario(scenario_path)
    config = load_config().with_overrides(loaded.scenario.config).with_overrides(overrides or {})
    if datasets_root:
        config = config.with_overrides({"datasets.root": datasets_root})
    started = datetime.now(timezone.utc)
    run_id = run_id or f"{started:%Y%m%d-%H%M%S}-{loaded.digest[:6]}"
    return Run(run_id=run_id, loaded=loaded, config=config, started=started)


def _cached(future: PrefectFuture[Any]) -> bool:
    return future.state.name == "Cached"


def _calls(outcome: dict[str, Any], replayed: bool) -> list[CallRecord]:
    """The calls a task made; when its result came from the task cache, none were paid this time."""
    calls = [CallRecord.model_validate(c) for c in outcome["calls"]]
    if replayed:
        calls = [c.model_copy(update={"cache_hit": True, "cost_usd": 0.0, "latency_s": 0.0, "attempts": 0}) for c in calls]
        for call in calls:
            progress.emit_call(call)
    return calls


def personas_stage(run: Run) -> list[dict[str, Any]]:
    specs = run.loaded.personas
    progress.emit("stage", "personas", total=len(specs))
    task = configured(generate_personas, run.config)
    batches = [specs[i : i + PERSONA_BATCH] for i in range(0, len(specs), PERSONA_BATCH)]
    futures = [task.submit(batch, i) for i, batch in enumerate(batches)]
    personas = [persona for future in futures for persona in future.result()]
    progress.emit("advance", "personas", advance=len(personas))
    return personas


def simulation_stage(run: Run, personas: list[dict[str, Any]]) -> tuple[list[str], list[CallRecord]]:
    """Run every world step by step; the worlds advance side by side, one task per world step.

    Worlds are returned as WorldState JSON text (what the tasks take and return).
    """
    by_name = {p["name"]: p for p in personas}
    specs = run.loaded.scenario.worlds
    worlds = [
        json.dumps(new_world(spec, [by_name[n] for n in (spec.agents or list(by_name))], run.config)) for spec in specs
    ]
    progress.emit("stage", "simulate", total=sum(spec.steps for spec in specs))
    task = configured(simulate_step, run.config)
    settings, runtime = keyed_config(run.config), runtime_of(run.config)
    calls: list[CallRecord] = []
    for step in range(1, max(spec.steps for spec in specs) + 1):
        futures = {
            i: task.submit(worlds[i], spec.model_dump(mode="json"), settings, spec.name, step, runtime)
            for i, spec in enumerate(specs)
            if step <= spec.steps
        }
        for i, future in futures.items():
            outcome, replayed = future.result(), _cached(future)
            worlds[i] = outcome["world"]
            calls.extend(_calls(outcome, replayed))
            if replayed and run.config.simulation.transcript:
                _replay_transcript(worlds[i], step, specs[i].steps)
            progress.emit("advance", "simulate", advance=1)
    return worlds, calls


def _replay_transcript(world_json: str, step: int, total: int) -> None:
    """Print a step replayed from the task cache, as it was printed when it ran."""
    world = WorldState.model_validate_json(world_json)
    Transcript(True).replay(world.name, step, total, (e for e in world.events if e.step == step))


def extraction_stage(run: Run, worlds: list[str]) -> tuple[list[dict[str, Any]], list[CallRecord]]:
    spec = run.loaded.scenario.extraction
    if spec is None:
        return [], []
    progress.emit("stage", "extract", total=len(worlds))
    task = configured(extract_results, run.config)
    settings, runtime = keyed_config(run.config), runtime_of(run.config)
    names = [spec.name for spec in run.loaded.scenario.worlds]
    futures = [task.submit(world, spec.model_dump(mode="json"), settings, name, runtime) for world, name in zip(worlds, names)]
    records: list[dict[str, Any]] = []
    calls: list[CallRecord] = []
    for future in futures:
        outcome = future.result()
        records.extend(outcome["records"])
        calls.extend(_calls(outcome, _cached(future)))
        progress.emit("advance", "extract", advance=1)
    return records, calls


def reduction_stage(run: Run) -> dict[str, int]:
    reductions = run.loaded.scenario.reductions
    if not reductions:
        return {}
    progress.emit("stage", "reduce", total=len(reductions))
    futures = {r.name: reduce_run.submit(run.root, run.run_id, r.name, r.sql) for r in reductions}
    counts = {name: future.result() for name, future in futures.items()}
    progress.emit("advance", "reduce", advance=len(counts))
    return counts


def write_personas(run: Run, personas: list[dict[str, Any]]) -> int:
    write_partition(run.root, "personas", run.run_id, personas_table(personas))
    return len(personas)


def write_events(run: Run, worlds: list[str]) -> int:
    table = events_table(json.loads(world) for world in worlds)
    write_partition(run.root, "events", run.run_id, table)
    return table.num_rows


def write_extractions(run: Run, records: list[dict[str, Any]]) -> int:
    spec = run.loaded.scenario.extraction
    if spec is None:
        return 0
    fields = {name: field.type for name, field in spec.fields.items()}
    write_partition(run.root, "extractions", run.run_id, extractions_table(records, fields))
    return len(records)


def write_calls(run: Run, calls: list[CallRecord]) -> int:
    write_partition(run.root, "llm_calls", run.run_id, calls_table(calls))
    return len(calls)


def write_run(run: Run, calls: list[CallRecord], status: str, error: str = "") -> dict[str, Any]:
    """The run's row in ``runs``, written last: a run is listed once its data is in place."""
    paid = [c for c in calls if not c.cache_hit]
    row = {
        "scenario": run.loaded.scenario.name,
        "scenario_hash": run.loaded.digest,
        "started": run.started,
        "finished": datetime.now(timezone.utc),
        "status": status,
        "error": error,
        "model": run.config.llm.model,
        "api_type": run.config.llm.api_type,
        "calls": len(paid),
        "cache_hits": len(calls) - len(paid),
        "prompt_tokens": sum(c.prompt_tokens for c in paid),
        "completion_tokens": sum(c.completion_tokens for c in paid),
        "cost_usd": sum(c.cost_usd for c in paid),
        "troupe_version": troupe.__version__,
    }
    write_partition(run.root, "runs", run.run_id, runs_table(row))
    return {"run_id": run.run_id, **row, "started": row["started"].isoformat(), "finished": row["finished"].isoformat()}


def dataset_paths(run: Run) -> dict[str, str]:
    """Where this run's partitions are, by dataset."""
    return {p.parent.name: str(p) for p in sorted(Path(run.root).glob(f"*/run_id={run.run_id}"))}

"""The flows: personas, simulation, extraction, reduction, and the scenario flow that runs them all.

Every flow takes a scenario file and writes its datasets under the dataset root, partitioned by
run. The flows read as the stages they chain; caching, retries and result storage live in the
task options (tasks/options.py), not here.
"""

from __future__ import annotations

from typing import Any

import tasks  # noqa: F401,I001 - first, so Prefect's logging is quiet before Prefect loads
from prefect import flow

from . import stages


@flow(name="troupe-population", log_prints=False)
def population_flow(
    scenario_path: str, run_id: str | None = None, datasets_root: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The scenario's personas, validated, as the ``personas`` dataset."""
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    personas = stages.personas_stage(run)
    return {"run_id": run.run_id, "personas": stages.write_personas(run, personas)}


@flow(name="troupe-simulation", log_prints=False)
def simulation_flow(
    scenario_path: str, run_id: str | None = None, datasets_root: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Personas, then every world step by step: the ``personas``, ``events`` and ``llm_calls`` datasets."""
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    personas = stages.personas_stage(run)
    worlds, calls = stages.simulation_stage(run, personas)
    return {
        "run_id": run.run_id,
        "personas": stages.write_personas(run, personas),
        "events": stages.write_events(run, worlds),
        "llm_calls": stages.write_calls(run, calls),
    }


@flow(name="troupe-extraction", log_prints=False)
def extraction_flow(
    scenario_path: str, run_id: str | None = None, datasets_root: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``extractions`` dataset (the simulation it reads is replayed from the task cache when warm)."""
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    worlds, _ = stages.simulation_stage(run, stages.personas_stage(run))
    records, calls = stages.extraction_stage(run, worlds)
    return {"run_id": run.run_id, "extractions": stages.write_extractions(run, records)}


@flow(name="troupe-reduction", log_prints=False)
def reduction_flow(
    scenario_path: str, run_id: str, datasets_root: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The scenario's reductions over an existing run's datasets, as ``reduction_<name>`` datasets."""
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    return {"run_id": run.run_id, **{f"reduction_{k}": v for k, v in stages.reduction_stage(run).items()}}


@flow(name="troupe-scenario", log_prints=False)
def scenario_flow(
    scenario_path: str, run_id: str | None = None, datasets_root: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The whole scenario: personas, simulation, extraction, reduction; the run's row is written last.

    Returns the run summary: the ``runs`` row, rows written per dataset, and where the files are.
    """
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    calls = []
    try:
        personas = stages.personas_stage(run)
        worlds, simulation_calls = stages.simulation_stage(run, personas)
        records, extraction_calls = stages.extraction_stage(run, worlds)
        calls = simulation_calls + extraction_calls
        rows = {
            "personas": stages.write_personas(run, personas),
            "events": stages.write_events(run, worlds),
            "extractions": stages.write_extractions(run, records),
            "llm_calls": stages.write_calls(run, calls),
        }
        rows.update({f"reduction_{k}": v for k, v in stages.reduction_stage(run).items()})
    except Exception as exc:
        stages.write_run(run, calls, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        raise
    summary = stages.write_run(run, calls, "completed")
    rows["runs"] = 1
    return {**summary, "rows": rows, "paths": stages.dataset_paths(run), "datasets_root": run.root}

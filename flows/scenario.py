"""The flows: personas, simulation, extraction, reduction, and the scenario flow that runs them all.

Every flow takes a scenario file and writes its datasets under the dataset root, partitioned by
run. The flows read as the stages they chain; caching, retries and result storage live in the
task options (tasks/options.py), sharding and publishing in flows/stages.py.
"""

from __future__ import annotations

from typing import Any

import tasks  # noqa: F401,I001 - first, so Prefect's logging is quiet before Prefect loads
from prefect import flow
from prefect.runtime import flow_run

from . import interrupts, stages
from .population import population_stage

SIMULATION = ["personas", "events", "llm_calls", "failures"]
EVERYTHING = ["personas", "events", "extractions", "llm_calls", "failures"]


def _published(run: stages.Run) -> list[str]:
    """The datasets a scenario run writes: the simulation's, and extractions, answers, the population profile when it has them."""
    scenario = run.loaded.scenario
    datasets = EVERYTHING if scenario.extraction else SIMULATION
    return datasets + ["answers"] * (scenario.survey is not None) + ["population_profile"] * (scenario.population is not None)


@flow(name="troupe-population", log_prints=False)
def population_flow(
    scenario_path: str, run_id: str | None = None, datasets_root: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The scenario's personas as the ``personas`` dataset (and its generated population, with its calls and profile)."""
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    with stages.running(run) as book:
        stages.personas_stage(run, book)
        run = population_stage(run, book)
        rows = stages.publish(run, book, ["personas"] + ["llm_calls", "population_profile"] * (run.loaded.scenario.population is not None))
    return {"run_id": run.run_id, **rows}


@flow(name="troupe-simulation", log_prints=False)
def simulation_flow(
    scenario_path: str, run_id: str | None = None, datasets_root: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Personas, then every world step by step: ``personas``, ``events``, ``llm_calls`` and ``failures``."""
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    with stages.running(run) as book:
        stages.personas_stage(run, book)
        run = population_stage(run, book)
        stages.worlds_stage(run, book, extract=False)
        rows = stages.publish(run, book, SIMULATION + ["population_profile"] * (run.loaded.scenario.population is not None))
    return {"run_id": run.run_id, **rows}


@flow(name="troupe-extraction", log_prints=False)
def extraction_flow(
    scenario_path: str, run_id: str | None = None, datasets_root: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``extractions`` dataset (the simulation it reads is replayed from the task cache when warm)."""
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    with stages.running(run) as book:
        run = population_stage(run, book)  # the people the worlds hold (from the task cache when an earlier run made them)
        stages.worlds_stage(run, book, extract=True)
        rows = stages.publish(run, book, ["extractions"] if run.loaded.scenario.extraction else [])
    return {"run_id": run.run_id, "extractions": rows.get("extractions", 0)}


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

    Returns the run summary: the ``runs`` row (status ``completed``, or ``completed_with_failures``
    with the number of failed items), rows written per dataset, task runs, and where the files are.
    A failure or an interrupt (Ctrl-C, cancellation, Prefect's termination signal) still records
    what the run paid: its ``llm_calls`` and a ``failed`` or ``cancelled`` row; then it re-raises.
    """
    run = stages.prepare(scenario_path, run_id, datasets_root, overrides)
    with stages.running(run) as book:
        try:
            stages.personas_stage(run, book)
            run = population_stage(run, book)
            stages.survey_stage(run, book)
            stages.worlds_stage(run, book, extract=run.loaded.scenario.extraction is not None, survey=True)
            stages.categories_stage(run, book)
            rows = stages.publish(run, book, _published(run))
            rows.update({f"reduction_{k}": v for k, v in stages.reduction_stage(run).items()})
        except BaseException as exc:
            # An interrupt can arrive wrapped in an ordinary error (pydantic wraps what a serializer raises).
            status = "cancelled" if not isinstance(exc, Exception) or interrupts.received(wait_s=0.5) else "failed"
            try:
                stages.publish_accounting(run, book)
            finally:
                stages.write_run(run, book, status, stages.error_line(exc))
            raise
        summary = stages.write_run(run, book, stages.status_of(book))
    rows["runs"] = 1
    return {
        **summary, "rows": rows, "paths": stages.dataset_paths(run), "datasets_root": run.root,
        "flow_run_id": str(flow_run.id or ""),
    }

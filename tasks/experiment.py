"""The comparisons task: an experiment's outcomes per arm, tested against the control, as a dataset of the run."""

from __future__ import annotations

from prefect import task

from troupe.datasets import connect, write_partition
from troupe.experimentation.arms import comparisons_table
from troupe.scenario import Scenario


@task(name="compare-arms", task_run_name="compare arms")
def compare_arms(datasets_root: str, run_id: str, scenario_json: str) -> int:
    """Read the run's extractions and answers per arm, write dataset ``comparisons``, return its row count.

    Not cached: it reads the published datasets, which a rerun may have replaced, and costs no LLM call.
    """
    scenario = Scenario.model_validate_json(scenario_json)
    connection = connect(datasets_root, run_id=run_id)
    try:
        table = comparisons_table(connection, scenario)
    finally:
        connection.close()
    write_partition(datasets_root, "comparisons", run_id, table)
    return table.num_rows

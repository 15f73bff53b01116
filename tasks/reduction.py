"""The reduction task: a named SQL query over one run's datasets, written as a dataset of its own."""

from __future__ import annotations

from prefect import task

from troupe.datasets import connect, write_partition


@task(name="reduce", task_run_name="reduce {name}")
def reduce_run(datasets_root: str, run_id: str, name: str, sql: str) -> int:
    """Run sql over views narrowed to run_id, write dataset reduction_<name>, return its row count."""
    connection = connect(datasets_root, run_id=run_id)
    try:
        table = connection.sql(sql).to_arrow_table()
    finally:
        connection.close()
    write_partition(datasets_root, f"reduction_{name}", run_id, table)
    return table.num_rows

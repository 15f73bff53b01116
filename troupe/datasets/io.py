"""Writing dataset partitions atomically, and building them from troupe's records with polars.

A partition is ``<root>/<dataset>/run_id=<id>/part-0.parquet``. It is written into a hidden
temporary folder under ``<root>/.staging`` (outside every dataset folder, so not even a recursive
glob such as ``events/**/*.parquet`` finds it) and renamed into place, so a reader (DuckDB, polars,
another process) sees a whole partition or none: a crash never leaves half a file where a reader looks.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

STAGING = ".staging"  # under the dataset root: partitions being written or replaced


def partition_dir(root: str | os.PathLike[str], dataset: str, run_id: str) -> Path:
    return Path(root) / dataset / f"run_id={run_id}"


def write_partition(root: str | os.PathLike[str], dataset: str, run_id: str, table: pa.Table) -> Path:
    """Write table as the run's partition of dataset, replacing an earlier one atomically."""
    final = partition_dir(root, dataset, run_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    hidden = Path(root) / STAGING
    hidden.mkdir(exist_ok=True)
    staging = hidden / f"tmp-{dataset}-{run_id}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        pq.write_table(table, staging / "part-0.parquet", compression="zstd")
        if final.exists():
            retired = hidden / f"old-{dataset}-{run_id}-{uuid.uuid4().hex[:8]}"
            os.rename(final, retired)
            os.rename(staging, final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final / "part-0.parquet"


def table_from_rows(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) to an Arrow table of exactly schema, through polars (typed, columnar, no row loop)."""
    frame = pl.DataFrame(list(rows), schema=pl.Schema(pl.from_arrow(schema.empty_table()).schema), strict=False)
    return frame.to_arrow().cast(schema)

"""Finding a completed run with a given key, without starting Prefect or loading polars.

A ``troupe run`` whose run key (troupe.run_key) matches a completed run would write the same data
again: the CLI answers it with that run instead. Only ``completed`` runs count; one that ended
``completed_with_failures`` is run again, so its failed items are retried.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

STAGING = ".staging"  # as in .io, which is not imported here: it loads polars


class CompletedRun(BaseModel):
    """A completed run's ``runs`` row and the rows each of its datasets holds."""

    run_id: str
    row: dict[str, Any]
    rows: dict[str, int]


def _row(partition: Path) -> dict[str, Any] | None:
    files = sorted(partition.glob("*.parquet"))
    if len(files) != 1:
        return None
    try:
        table = pq.ParquetFile(files[0]).read()  # not pq.read_table: it loads pyarrow.dataset, and pandas with it (~0.5 s)
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return None
    if "run_key" not in table.column_names or table.num_rows != 1:
        return None  # written before runs had keys
    # Times as ISO text: converting a zoned timestamp to Python loads pandas (~0.4 s of a ~1 s command).
    columns = [c.cast(pa.string()) if pa.types.is_timestamp(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names).to_pylist()[0]


def _rows(root: Path, run_id: str) -> dict[str, int] | None:
    """Rows per dataset of the run's partitions; None when a partition is unreadable (then the run is not reused)."""
    counts: dict[str, int] = {}
    for partition in sorted(root.glob(f"*/run_id={run_id}")):
        if partition.parent.name.startswith(".") or partition.parent.name == "runs":
            continue
        try:
            counts[partition.parent.name] = sum(pq.read_metadata(f).num_rows for f in partition.glob("*.parquet"))
        except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
            return None
    return counts


def completed_run(root: str | os.PathLike[str], key: str, run_id: str | None = None) -> CompletedRun | None:
    """The latest ``completed`` run with this key (only ``run_id``'s own partition when given), or None."""
    root = Path(root)
    runs = root / "runs"
    partitions = [runs / f"run_id={run_id}"] if run_id else list(runs.glob("run_id=*"))
    found: list[tuple[Any, str, dict[str, Any]]] = []
    for partition in partitions:
        row = _row(partition) if partition.is_dir() else None
        if row and row.get("run_key") == key and row.get("status") == "completed":
            found.append((row.get("finished"), partition.name.removeprefix("run_id="), row))
    for _, found_id, row in sorted(found, key=lambda item: str(item[0]), reverse=True):
        if (root / STAGING / f"run={found_id}").exists():
            continue  # being rerun by another process right now
        rows = _rows(root, found_id)
        if rows is not None:
            return CompletedRun(run_id=found_id, row=row, rows=rows)
    return None

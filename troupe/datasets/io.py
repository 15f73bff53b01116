"""Writing datasets: part files while a run goes, whole partitions when it ends, and no races.

The protocol (docs/datasets.md, "Writing"):

* **Part files.** While a run goes, every shard task writes its rows as a Parquet part file under
  ``<root>/.staging/run=<run_id>/<dataset>/`` (hidden: no dataset glob reaches it), written to a
  temporary name and renamed into place, so a part is whole or absent. Part names are
  deterministic (stage, shard, and a digest of the task's inputs), so a rerun of the same run finds
  the parts its finished shards wrote and does not write them again.
* **Publishing.** When the run ends, each dataset's parts are hard-linked (copied where links are
  not possible) into a fresh private folder, which is swapped in as ``<root>/<dataset>/run_id=<id>``
  under an exclusive lock on that partition. Readers see the old partition, then for an instant
  none, then the new one: never part of one. Two processes publishing the same partition take
  turns; the last one wins whole.
* **The run's staging folder** is removed by the last process using it: each run holds a shared
  lock on it while it runs, and removes it only if it can take the lock exclusively.
* **The runs row** is written last, and a ``failed`` or ``cancelled`` row never replaces a
  ``completed`` one (another process finished the same run: its data is complete).

**Every file carries its run's id** as a ``run_id`` column (last), the same value as its partition
folder: readers without hive partitioning (Hugging Face ``datasets``, a plain ``pl.read_parquet``)
get it too, and hive readers (DuckDB, polars) still see one ``run_id`` column, the folder's.

Locks are ``flock`` locks on files under ``<root>/.staging/locks``: they hold between processes
on one machine and on file systems that support them (not every network file system does).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; single writers only
    fcntl = None  # type: ignore[assignment]

RUN_ID = "run_id"  # the partition key, and a column of every file
STAGING = ".staging"  # under the dataset root: partitions being written or replaced
_SAFE = re.compile(r"[^A-Za-z0-9._=-]")


def partition_dir(root: str | os.PathLike[str], dataset: str, run_id: str) -> Path:
    return Path(root) / dataset / f"run_id={run_id}"


def run_staging(root: str | os.PathLike[str], run_id: str) -> Path:
    """Where a run's part files wait to be published."""
    return Path(root) / STAGING / f"run={run_id}"


@contextlib.contextmanager
def _locked(root: str | os.PathLike[str], name: str, shared: bool = False, wait: bool = True) -> Iterator[bool]:
    """An flock on ``<root>/.staging/locks/<name>.lock``; yields whether it was taken (always, when wait)."""
    folder = Path(root) / STAGING / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{_SAFE.sub('_', name)}.lock", "a+b") as handle:
        if fcntl is None:
            yield True
            return
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_parquet(table: pa.Table, path: Path) -> None:
    """A Parquet file of table; an empty one has no row group (Hugging Face ``datasets`` fails on a row group of 0 rows)."""
    if table.num_rows:
        pq.write_table(table, path, compression="zstd")
    else:
        with pq.ParquetWriter(path, table.schema, compression="zstd"):
            pass


def _write_file(table: pa.Table, path: Path) -> None:
    """Write table to path atomically: a temporary name beside it, then a rename."""
    temporary = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")
    try:
        _write_parquet(table, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def with_run_id(table: pa.Table, run_id: str) -> pa.Table:
    """table with a ``run_id`` string column holding run_id (replaced in place if the table has one, else last)."""
    return with_constant(table, RUN_ID, run_id)


def with_constant(table: pa.Table, name: str, value: str) -> pa.Table:
    """table with a string column name holding value on every row (replaced in place if there, else last)."""
    # Through polars: pyarrow imports pandas (~0.2 s a process) to build an array from Python objects.
    column = pl.repeat(value, table.num_rows, eager=True, dtype=pl.String).to_arrow().cast(pa.string())
    field = pa.field(name, pa.string())
    index = table.schema.get_field_index(name)
    return table.set_column(index, field, column) if index >= 0 else table.append_column(field, column)


def part_path(root: str | os.PathLike[str], run_id: str, dataset: str, name: str) -> Path:
    return run_staging(root, run_id) / dataset / name


def write_part(root: str | os.PathLike[str], run_id: str, dataset: str, name: str, table: pa.Table) -> bool:
    """Write a part file of the run unless it is already there; returns whether it was written.

    A part's name includes a digest of what produced it, so an existing part has these rows.
    """
    path = part_path(root, run_id, dataset, name)
    if path.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_file(with_run_id(table, run_id), path)
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _swap_in(root: Path, dataset: str, run_id: str, staging: Path | None) -> None:
    """Under the partition's lock, replace it with staging (or remove it, for None)."""
    final = partition_dir(root, dataset, run_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root, f"{dataset}-{run_id}"):
        retired = None
        if final.exists():
            retired = root / STAGING / f"old-{dataset}-{run_id}-{uuid.uuid4().hex[:8]}"
            os.rename(final, retired)
        if staging is not None:
            os.rename(staging, final)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _fresh_folder(root: Path, dataset: str, run_id: str) -> Path:
    hidden = root / STAGING
    hidden.mkdir(parents=True, exist_ok=True)
    folder = hidden / f"tmp-{dataset}-{run_id}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return folder


def publish_parts(root: str | os.PathLike[str], dataset: str, run_id: str, names: Iterable[str]) -> Path:
    """Make the run's parts ``names`` (in order) its whole partition of dataset, replacing an earlier one."""
    root = Path(root)
    folder = _fresh_folder(root, dataset, run_id)
    try:
        for name in names:
            _link_or_copy(part_path(root, run_id, dataset, name), folder / name)
        _swap_in(root, dataset, run_id, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return partition_dir(root, dataset, run_id)


def remove_partition(root: str | os.PathLike[str], dataset: str, run_id: str) -> None:
    """Remove the run's partition of dataset, if any (a rerun that no longer has such rows)."""
    if partition_dir(root, dataset, run_id).exists():
        _swap_in(Path(root), dataset, run_id, None)


def write_partition(root: str | os.PathLike[str], dataset: str, run_id: str, table: pa.Table) -> Path:
    """Write table as the run's whole partition of dataset (one file), replacing an earlier one atomically."""
    root = Path(root)
    folder = _fresh_folder(root, dataset, run_id)
    try:
        _write_parquet(with_run_id(table, run_id), folder / "part-0.parquet")
        _swap_in(root, dataset, run_id, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return partition_dir(root, dataset, run_id) / "part-0.parquet"


def write_run_row(root: str | os.PathLike[str], run_id: str, table: pa.Table, status: str) -> bool:
    """Write the run's ``runs`` row, unless it would put a failure over a completed run; returns whether written."""
    root = Path(root)
    with _locked(root, f"runs-row-{run_id}"):
        existing = partition_dir(root, "runs", run_id)
        if status in ("failed", "cancelled") and existing.is_dir():
            try:
                previous = [
                    value for f in existing.glob("*.parquet") for value in read_parquet_file(f, ["status"]).column("status").to_pylist()
                ]
            except (OSError, pa.ArrowInvalid):
                previous = []
            if any(s in ("completed", "completed_with_failures") for s in previous):
                return False
        write_partition(root, "runs", run_id, table)
    return True


@contextlib.contextmanager
def run_in_progress(root: str | os.PathLike[str], run_id: str) -> Iterator[Path]:
    """Hold the run's staging folder while the run goes; the last process out of a finished run removes it.

    A run that fails, is cancelled or is killed leaves its parts: a rerun of it reuses them.
    """
    staging = run_staging(root, run_id)
    with _locked(root, f"run-{run_id}", shared=True):
        staging.mkdir(parents=True, exist_ok=True)
        yield staging
    with _locked(root, f"run-{run_id}", shared=False, wait=False) as alone:
        if alone:
            shutil.rmtree(staging, ignore_errors=True)


def read_parts(root: str | os.PathLike[str], run_id: str, dataset: str, names: Iterable[str], columns: list[str] | None = None) -> pa.Table | None:
    """The run's parts of dataset read back (for totals); None when there are none."""
    tables = [read_parquet_file(part_path(root, run_id, dataset, n), columns) for n in names]
    return pa.concat_tables(tables) if tables else None


def read_parquet_file(path: str | os.PathLike[str], columns: list[str] | None = None) -> pa.Table:
    """One Parquet file, without ``pq.read_table``'s dataset layer (it loads pyarrow.dataset and pandas)."""
    return pq.ParquetFile(path).read(columns=columns)


def table_from_rows(rows: Iterable[dict[str, Any]] | dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts), or columns (a dict of lists), to an Arrow table of exactly schema.

    Through polars (typed, columnar, no row loop), not ``pa.table``/``from_pylist``: pyarrow imports
    pandas (~0.2 s a process) to convert Python objects.
    """
    frame = pl.DataFrame(rows if isinstance(rows, dict) else list(rows), schema=polars_schema(schema), strict=False)
    return frame.to_arrow().cast(schema)


def polars_schema(schema: pa.Schema) -> pl.Schema:
    """The polars schema of an Arrow schema, as ``pl.from_arrow`` gives it.

    Mapped here for the types troupe's datasets use because any Arrow-to-polars conversion imports
    pandas (0.2-0.4 s, once per process: a fifth of a fully cached rerun's own work); another type
    falls back to ``pl.from_arrow``. tests/test_datasets_io.py checks both agree on every schema.
    """
    try:
        return pl.Schema({field.name: _polars_dtype(field.type) for field in schema})
    except KeyError:
        return pl.Schema(pl.from_arrow(schema.empty_table()).schema)


_SIMPLE_TYPES: dict[pa.DataType, Any] = {
    pa.string(): pl.String, pa.large_string(): pl.String, pa.bool_(): pl.Boolean,
    pa.int8(): pl.Int8, pa.int16(): pl.Int16, pa.int32(): pl.Int32, pa.int64(): pl.Int64,
    pa.uint8(): pl.UInt8, pa.uint16(): pl.UInt16, pa.uint32(): pl.UInt32, pa.uint64(): pl.UInt64,
    pa.float32(): pl.Float32, pa.float64(): pl.Float64, pa.date32(): pl.Date,
}


def _polars_dtype(kind: pa.DataType) -> Any:
    if kind in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[kind]
    if pa.types.is_timestamp(kind):
        return pl.Datetime(kind.unit, kind.tz)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pl.List(_polars_dtype(kind.value_type))
    if pa.types.is_struct(kind):
        return pl.Struct({field.name: _polars_dtype(field.type) for field in kind})
    raise KeyError(str(kind))

"""SQL over every run with DuckDB: one view per dataset, across all hive partitions.

``connect(root)`` gives a connection with views ``runs``, ``personas``, ``events``,
``extractions``, ``llm_calls`` and one ``reduction_<name>`` per reduction dataset. A dataset with
no partition yet is an empty view with its documented columns, so queries never fail on a fresh
root. ``read_only_query`` runs one user statement that can only read: it accepts SELECT-like
statements (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) and the connection can read nothing
outside the dataset root.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from ..errors import TroupeError
from .schemas import DATASETS

READABLE = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class QueryError(TroupeError):
    """The SQL is not a read-only query, or DuckDB rejected it."""


def _glob(root: Path, dataset: str) -> str:
    return str(root / dataset / "run_id=*" / "*.parquet")


def _has_partitions(root: Path, dataset: str) -> bool:
    return any((root / dataset).glob("run_id=*/*.parquet"))


def view_names(root: str | os.PathLike[str]) -> list[str]:
    root = Path(root)
    reductions = sorted(p.name for p in root.glob("reduction_*") if p.is_dir()) if root.is_dir() else []
    return [*DATASETS, *reductions]


def connect(root: str | os.PathLike[str], *, run_id: str | None = None, lock_down: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per dataset under root (only run_id's rows, if given)."""
    root = Path(root).resolve()
    connection = duckdb.connect()
    scope = "" if run_id is None else " WHERE run_id = '" + run_id.replace("'", "''") + "'"
    for name in view_names(root):
        if _has_partitions(root, name):
            connection.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{_glob(root, name)}', "
                f"hive_partitioning = true, hive_types = {{'run_id': VARCHAR}}, union_by_name = true){scope}"
            )
        else:
            schema = DATASETS.get(name, pa.schema([]))
            empty = pa.schema([*schema, ("run_id", pa.string())]).empty_table()  # where hive readers put it
            connection.register(f"_{name}_empty", empty)
            connection.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_empty")
    if lock_down:
        connection.execute(f"SET allowed_directories = ['{root}{os.sep}']")
        connection.execute("SET enable_external_access = false")
    return connection


def check_read_only(sql: str) -> None:
    """Raise QueryError unless sql is exactly one statement that only reads."""
    try:
        # Keep only the types: a DuckDB Statement held by an error's traceback outlives the interpreter's
        # shutdown and makes duckdb's bindings print "leaked instance" noise at exit.
        kinds = [statement.type for statement in duckdb.extract_statements(sql)]
    except duckdb.Error as exc:
        raise QueryError(f"SQL: {str(exc).splitlines()[0]}; fix the query") from None
    if len(kinds) != 1:
        raise QueryError(f"SQL: expected one statement, got {len(kinds)}; run them one at a time")
    if kinds[0] not in READABLE:
        raise QueryError(f"SQL: {kinds[0].name} statements are not allowed; the datasets are read-only, use SELECT")


def read_only_query(root: str | os.PathLike[str], sql: str) -> pa.Table:
    """Run one read-only statement over the datasets and return its result as an Arrow table."""
    check_read_only(sql)
    connection = connect(root)
    try:
        return connection.sql(sql).to_arrow_table()
    except duckdb.CatalogException as exc:
        raise QueryError(
            f"SQL: {str(exc).splitlines()[0]}; the views are {', '.join(view_names(root))}"
        ) from None
    except duckdb.Error as exc:
        raise QueryError(f"SQL: {str(exc).splitlines()[0]}; fix the query") from None
    finally:
        connection.close()

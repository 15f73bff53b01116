"""Parquet datasets: schemas, atomic partition writes, and SQL over every run with DuckDB."""

from .io import partition_dir, table_from_rows, write_partition
from .query import QueryError, check_read_only, connect, read_only_query, view_names
from .schemas import DATASETS, extractions_schema

__all__ = [
    "DATASETS",
    "QueryError",
    "check_read_only",
    "connect",
    "extractions_schema",
    "partition_dir",
    "read_only_query",
    "table_from_rows",
    "view_names",
    "write_partition",
]

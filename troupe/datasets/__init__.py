"""Parquet datasets: schemas, atomic partition writes, and SQL over every run with DuckDB.

Names load on first use: a command that only reads a schema or a runs row (``troupe run``
answering with a completed run) does not pay for polars and DuckDB.
"""

from __future__ import annotations

from troupe._lazy import lazy_getattr

_NAMES = {
    "DATASETS": ".schemas",
    "extractions_schema": ".schemas",
    "partition_dir": ".io",
    "table_from_rows": ".io",
    "write_partition": ".io",
    "QueryError": ".query",
    "check_read_only": ".query",
    "connect": ".query",
    "read_only_query": ".query",
    "view_names": ".query",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_getattr(globals(), {name: f"{__name__}{module}" for name, module in _NAMES.items()})

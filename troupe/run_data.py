"""One run's datasets, read through DuckDB views narrowed to that run.

Reports and exports read a run the way a user's SQL does (``troupe.datasets.connect``), never
by file path, so they follow the datasets wherever their layout goes. Datasets that a run may
or may not have (``answers``, reductions, a population profile) are looked up by name, and a
column a newer run adds (``personas.sampled``) is looked up before it is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


@dataclass
class RunData:
    """A read-only DuckDB connection whose views hold only ``run_id``'s rows."""

    run_id: str
    root: Path
    connection: "duckdb.DuckDBPyConnection"
    _columns: dict[str, list[str]] = field(default_factory=dict)

    def views(self) -> list[str]:
        rows = self.connection.sql("SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'").fetchall()
        return sorted(name for (name,) in rows)

    def columns(self, view: str) -> list[str]:
        """The view's columns ([] when the run has no such dataset)."""
        if view not in self._columns:
            rows = self.connection.sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", params=[view]
            ).fetchall()
            self._columns[view] = [name for (name,) in rows]
        return self._columns[view]

    def has(self, view: str, *columns: str) -> bool:
        """Whether the view exists, has rows for this run and has every one of columns."""
        present = self.columns(view)
        if not present or not set(columns) <= set(present):
            return False
        return bool(self.connection.sql(f'SELECT count(*) FROM "{view}"').fetchall()[0][0])

    def values(self, sql: str) -> list[tuple[Any, ...]]:
        return self.connection.sql(sql).fetchall()

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        return self.arrow(sql, params).to_pylist()

    def arrow(self, sql: str, params: list[Any] | None = None) -> "pa.Table":
        return self.connection.sql(sql, params=params or None).to_arrow_table()

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "RunData":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_run(root: str | os.PathLike[str], run_id: str) -> RunData:
    """The run's views; SpecError (one line, the fix) when the root holds nothing of that run."""
    from .datasets import connect

    root = Path(root)
    if not root.is_dir():
        raise SpecError(f"--datasets {root}: not a directory; point it at the dataset root a run wrote (default ./datasets)")
    run = RunData(run_id, root, connect(root, run_id=run_id))
    if not (run.has("runs") or run.has("events")):
        run.close()
        raise SpecError(f"run {run_id}: not found under {root}; list the runs with troupe runs --datasets {root}")
    return run

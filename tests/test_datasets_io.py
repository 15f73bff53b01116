"""Writers that cannot race: part files, publishing and the runs row, from two processes at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from troupe.datasets.io import STAGING, partition_dir, publish_parts, write_part

_WRITER = textwrap.dedent(
    """
    import sys
    import pyarrow as pa
    from troupe.datasets.io import publish_parts, write_part, write_partition
    root, who, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rows = 3 if who == "a" else 5
    for i in range(rounds):
        names = [f"part-{who}-{i:03d}-{k}.parquet" for k in range(2)]
        for name in names:
            write_part(root, "r1", "events", name, pa.table({"who": [who] * rows, "round": [i] * rows}))
        publish_parts(root, "events", "r1", names)
        write_partition(root, "llm_calls", "r1", pa.table({"who": [who] * rows}))
    """
)


def _read(folder: Path) -> pa.Table | None:
    files = sorted(folder.glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def test_two_processes_publishing_one_partition_never_tear_it(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), who, "40"], stderr=subprocess.PIPE, cwd=Path(__file__).parent.parent)
        for who in ("a", "b")
    ]
    seen = set()
    while any(w.poll() is None for w in writers):
        try:
            table = _read(partition_dir(tmp_path, "events", "r1"))
        except (FileNotFoundError, OSError):
            continue  # swapped out between the listing and the read: absent, never partial
        if table is not None:
            who = set(table.column("who").to_pylist())
            rounds = set(table.column("round").to_pylist())
            assert len(who) == 1 and len(rounds) == 1, "a partition mixed two writers"
            assert table.num_rows == (6 if who == {"a"} else 10), "a partition was seen half written"
            seen.add(who.pop())
    for writer in writers:
        _, errors = writer.communicate()
        assert writer.returncode == 0, errors.decode()
        assert b"FileNotFoundError" not in errors
    assert seen  # the reader did look while the writers wrote
    final = _read(partition_dir(tmp_path, "events", "r1"))
    assert final is not None and final.num_rows in (6, 10)
    calls = _read(partition_dir(tmp_path, "llm_calls", "r1"))
    assert calls is not None and calls.num_rows in (3, 5)
    leftovers = [p.name for p in (tmp_path / STAGING).iterdir() if p.name.startswith(("tmp-", "old-"))]
    assert leftovers == []  # no orphaned folders
    assert not list(tmp_path.rglob(".tmp-*"))  # no torn part files


def test_a_part_is_written_once_and_published_by_link(tmp_path: Path) -> None:
    table = pa.table({"x": [1, 2]})
    assert write_part(tmp_path, "r1", "events", "part-a.parquet", table)
    assert not write_part(tmp_path, "r1", "events", "part-a.parquet", pa.table({"x": [9]}))  # kept, not rewritten
    published = publish_parts(tmp_path, "events", "r1", ["part-a.parquet"]) / "part-a.parquet"
    staged = tmp_path / STAGING / "run=r1" / "events" / "part-a.parquet"
    assert published.stat().st_ino == staged.stat().st_ino
    assert pq.read_table(published).column("x").to_pylist() == [1, 2]


def test_polars_schema_agrees_with_polars_own_conversion() -> None:
    """troupe maps Arrow types to polars itself (no pandas import); it must give what pl.from_arrow gives."""
    import polars as pl

    from troupe.datasets import schemas
    from troupe.datasets.io import polars_schema

    every = [*schemas.DATASETS.values(), schemas.extractions_schema({kind: kind for kind in schemas.FIELD_TYPES})]
    every.append(pa.schema([("m", pa.map_(pa.string(), pa.int64()))]))  # not mapped: the fallback
    for schema in every:
        assert polars_schema(schema) == pl.from_arrow(schema.empty_table()).schema, schema


def test_a_shards_parts_are_built_written_and_read_without_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas (~0.2 s) to convert Python objects and ``pq.read_table`` loads pyarrow.dataset:
    a run's process needs neither to build, label, write, read back and publish its parts."""
    code = textwrap.dedent(
        f"""
        import sys
        from datetime import datetime
        from troupe.agent.state import Event
        from troupe.datasets.io import publish_parts, read_parts, table_from_rows, with_constant, write_part, write_run_row
        from troupe.datasets.rows import events_table
        from troupe.datasets.schemas import PERSONAS, RUNS
        root = {str(tmp_path)!r}
        people = table_from_rows([{{"name": "Ana"}}], PERSONAS)
        assert people.schema == PERSONAS and people.column("name").to_pylist() == ["Ana"]
        events = events_table([("Cafe", 0, [Event(agent="Ana", direction="action", type="TALK", content="hi", time=datetime(2026, 1, 1))])])
        events = with_constant(events, "arm", "B")
        write_part(root, "r1", "events", "part-1.parquet", events)
        back = read_parts(root, "r1", "events", ["part-1.parquet"])
        assert back.column("arm").to_pylist() == ["B"] and back.column("content").to_pylist() == ["hi"], back
        publish_parts(root, "events", "r1", ["part-1.parquet"])
        assert write_run_row(root, "r1", table_from_rows([{{"status": "completed"}}], RUNS), "completed")
        assert not write_run_row(root, "r1", table_from_rows([{{"status": "failed"}}], RUNS), "failed")  # reads the row back
        print("pandas" in sys.modules, "pyarrow.dataset" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]

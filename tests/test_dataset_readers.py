"""Every dataset file carries its run's id, so any reader gets it: Hugging Face ``datasets`` and a plain
polars read (no hive partitioning) as a column of the file, DuckDB's views and polars' hive scan as
one ``run_id`` column whose value is the partition folder's.

A real run (the bakery sample, through Prefect and the fake server) is read the three ways; the
unit tests cover parts and whole partitions, a file whose column disagrees with its folder, and
partitions written before files carried the column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.fake_openai import FakeOpenAI
from tests.sample_run import AGENTS, SampleRun, make_run
from troupe.datasets import connect, partition_dir, write_partition
from troupe.datasets.io import publish_parts, with_run_id, write_part


@pytest.fixture(scope="module")
def sample(fake_server: FakeOpenAI, prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    return make_run(fake_server, tmp_path_factory.mktemp("readers") / "datasets", run_id="readers-1")



def published(root: Path) -> list[str]:
    """The datasets the run published (a folder with Parquet files)."""
    return sorted(p.name for p in root.iterdir() if not p.name.startswith((".", "_")) and any(p.glob("run_id=*/*.parquet")))


def test_a_run_is_read_with_its_run_id_by_datasets_polars_and_duckdb(sample: SampleRun, hf: Any, tmp_path: Path) -> None:
    root = sample.root
    names = published(root)
    assert {"runs", "personas", "events", "extractions", "llm_calls", "reduction_ideas"} <= set(names)
    connection = connect(root)
    try:
        for name in names:
            files = sorted(str(f) for f in root.glob(f"{name}/**/*.parquet"))
            rows = pl.read_parquet(files).height
            if not rows:  # failures of a run where nothing failed: datasets makes no split of no rows
                continue
            # Hugging Face datasets: the documented glob, no hive partitioning
            loaded = hf.load_dataset("parquet", data_files=f"{root}/{name}/**/*.parquet", split="train", cache_dir=str(tmp_path / "hf" / name))
            assert loaded.column_names[-1] == "run_id", name
            assert set(loaded["run_id"]) <= {sample.run_id} and loaded.num_rows == rows, name
            # a plain polars read of one file
            plain = pl.read_parquet(files[0])
            assert plain.columns.count("run_id") == 1 and set(plain["run_id"]) <= {sample.run_id}, name
            # hive readers: one run_id column, last, as before
            hive = pl.scan_parquet(f"{root}/{name}/**/*.parquet", hive_partitioning=True).collect()
            assert hive.columns.count("run_id") == 1 and hive.columns[-1] == "run_id", name
            described = [c[0] for c in connection.execute(f'DESCRIBE "{name}"').fetchall()]
            assert described.count("run_id") == 1 and described[-1] == "run_id", name
            counts = connection.execute(f'SELECT run_id, count(*) FROM "{name}" GROUP BY run_id').fetchall()
            assert counts == ([(sample.run_id, hive.height)] if hive.height else []), name
    finally:
        connection.close()
    events = hf.load_dataset("parquet", data_files=f"{root}/events/**/*.parquet", split="train", cache_dir=str(tmp_path / "hf" / "e"))
    assert set(events["agent"]) >= set(AGENTS) and set(events["run_id"]) == {sample.run_id}


def test_parts_and_partitions_carry_the_run_id_as_their_last_column(tmp_path: Path) -> None:
    table = pa.table({"x": [1, 2], "y": ["a", "b"]})
    write_part(tmp_path, "r1", "things", "part-a.parquet", table)
    path = publish_parts(tmp_path, "things", "r1", ["part-a.parquet"]) / "part-a.parquet"
    read = pq.read_table(path)
    assert read.column_names == ["x", "y", "run_id"] and read.column("run_id").to_pylist() == ["r1", "r1"]
    assert read.schema.field("run_id").type == pa.string()
    whole = pq.read_table(write_partition(tmp_path, "runs", "r2", pa.table({"status": ["completed"]})))
    assert whole.to_pylist() == [{"status": "completed", "run_id": "r2"}]
    empty = pq.read_table(write_partition(tmp_path, "failures", "r2", pa.table({"stage": pa.array([], pa.string())})))
    assert empty.column_names == ["stage", "run_id"] and empty.num_rows == 0


def test_empty_files_have_no_row_group_so_datasets_reads_them_beside_others(tmp_path: Path, hf: Any) -> None:
    """Hugging Face datasets fails on a row group of 0 rows (a shard where nothing failed writes one)."""
    schema = pa.schema([("stage", pa.string())])
    write_part(tmp_path, "r1", "failures", "part-a.parquet", pa.table({"stage": ["simulate"]}, schema=schema))
    write_part(tmp_path, "r1", "failures", "part-b.parquet", schema.empty_table())
    folder = publish_parts(tmp_path, "failures", "r1", ["part-a.parquet", "part-b.parquet"])
    assert pq.ParquetFile(folder / "part-b.parquet").metadata.num_row_groups == 0
    loaded = hf.load_dataset("parquet", data_files=f"{tmp_path}/failures/**/*.parquet", split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.to_list() == [{"stage": "simulate", "run_id": "r1"}]


def test_a_table_with_a_run_id_of_its_own_gets_the_runs_in_place() -> None:
    """A reduction's SQL may select run_id: the column keeps its place and holds the run written."""
    table = pa.table({"run_id": ["old", None], "support": [2, 1]})
    assert with_run_id(table, "r9").to_pylist() == [{"run_id": "r9", "support": 2}, {"run_id": "r9", "support": 1}]


def test_hive_readers_see_one_run_id_the_folders_even_beside_old_files(tmp_path: Path) -> None:
    """DuckDB and polars with hive partitioning take the folder's value over a file's column of the same
    name, and partitions written before files carried run_id (no column) read the same way."""
    write_partition(tmp_path, "events", "new", pa.table({"seq": [1, 2]}))
    old = partition_dir(tmp_path, "events", "old")
    old.mkdir(parents=True)
    pq.write_table(pa.table({"seq": [3]}), old / "part-0.parquet")  # an earlier layout: no run_id column
    moved = partition_dir(tmp_path, "events", "moved")
    moved.mkdir(parents=True)
    pq.write_table(with_run_id(pa.table({"seq": [4]}), "elsewhere"), moved / "part-0.parquet")  # copied between runs
    expected = [(1, "new"), (2, "new"), (3, "old"), (4, "moved")]
    connection = connect(tmp_path)
    try:
        assert [c[0] for c in connection.execute("DESCRIBE events").fetchall()] == ["seq", "run_id"]
        assert connection.execute("SELECT seq, run_id FROM events ORDER BY seq").fetchall() == expected
        assert connection.execute("SELECT count(*) FROM events WHERE run_id = 'new'").fetchone() == (2,)
    finally:
        connection.close()
    scan = pl.scan_parquet(f"{tmp_path}/events/**/*.parquet", hive_partitioning=True, hive_schema={"run_id": pl.String})
    assert scan.collect().sort("seq").rows() == expected
    raw = duckdb.sql(f"SELECT count(*) FROM read_parquet('{tmp_path}/events/*/*.parquet', hive_partitioning = false, union_by_name = true) WHERE run_id = 'new'")
    assert raw.fetchall() == [(2,)]  # without hive partitioning, the files' own column answers


def test_an_empty_view_puts_run_id_where_a_written_one_does(tmp_path: Path) -> None:
    connection = connect(tmp_path)
    try:
        assert [c[0] for c in connection.execute("DESCRIBE failures").fetchall()][-1] == "run_id"
    finally:
        connection.close()

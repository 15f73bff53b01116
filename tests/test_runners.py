"""Task runners: ``[pipeline] runner = threads | dask | ray`` (flows/runner.py).

The scenario flow runs from plain Python through ``runner.run_flow``, as any caller would, on
Prefect's thread pool and on a local Dask cluster of two worker processes; both write the same
datasets (same part files, same rows; only the wall-clock columns differ), and the endpoint's
concurrency limit holds across the workers.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows import runner
from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from troupe.config import Config
from troupe.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "tests" / "data" / "scenarios" / "four_worlds.yaml"
CLOCK_COLUMNS = {"started", "finished", "latency_s"}  # when things happened and how long they took


def with_runner(config: Config, **pipeline: object) -> Config:
    return config.with_overrides({f"pipeline.{k}": v for k, v in pipeline.items()})


def run_scenario(fake: FakeOpenAI, root: Path, concurrency: int, **pipeline: object) -> dict[str, object]:
    from flows import scenario_flow

    config = with_runner(fake_config(fake, root, **{"llm.max_concurrency": concurrency}), **pipeline)
    overrides = {
        "llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model", "llm.max_attempts": "3",
        "llm.max_concurrency": str(concurrency), "cache.dir": str(root / "cache"), "simulation.transcript": "false",
        **{f"pipeline.{k}": str(v) for k, v in pipeline.items()},
    }
    return runner.run_flow(scenario_flow, config, str(SCENARIO), "r", str(root / "datasets"), overrides)


def dataset_files(root: Path) -> dict[str, pa.Table]:
    """Every Parquet file under root, by relative path, without the clock columns.

    An ``llm_calls`` part lists a shard's calls in the order they finished, which differs from run
    to run on any runner (agents of a step call at once); it is compared in key order, without its
    ``seq`` column.
    """
    tables = {}
    for path in sorted(root.rglob("*.parquet")):
        table = pq.read_table(path)
        table = table.drop_columns([c for c in table.column_names if c in CLOCK_COLUMNS])
        if path.relative_to(root).parts[0] == "llm_calls":
            table = table.drop_columns(["seq"]).sort_by("key")
        tables[str(path.relative_to(root))] = table
    return tables


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("prefect_dask") is None, reason="needs the dask extra")
def test_a_local_dask_cluster_writes_the_same_datasets_as_threads(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    # One world per shard, so the four worlds' shards spread over both workers; two calls at
    # most at the endpoint, which each worker could reach on its own if the limit were not split.
    fake.latency_s = 0.2
    settings = {"shard_size": 1, "max_workers": 8}
    threads = run_scenario(fake, tmp_path / "threads", runner="threads", concurrency=2, **settings)
    calls, peak = fake.calls, fake.peak_concurrency
    fake.reset()
    fake.latency_s = 0.2
    dask = run_scenario(fake, tmp_path / "dask", runner="dask", cluster_workers=2, concurrency=2, **settings)
    assert fake.calls == calls > 0  # separate caches: the Dask run paid for every call again
    assert peak == 2 and fake.peak_concurrency <= 2  # the limit held across the two worker processes
    assert threads["status"] == dask["status"] == "completed"
    assert threads["task_runs"] == dask["task_runs"]

    expected, got = dataset_files(tmp_path / "threads" / "datasets"), dataset_files(tmp_path / "dask" / "datasets")
    assert list(got) == list(expected) and any(name.startswith("events/") for name in expected)
    for name, table in expected.items():
        assert got[name].equals(table), (name, differences(table, got[name]))


def differences(expected: pa.Table, got: pa.Table) -> list[str]:
    """Where two tables differ, row by row and column by column (for the failure message)."""
    if expected.num_rows != got.num_rows:
        return [f"{expected.num_rows} rows, got {got.num_rows}"]
    return [
        f"row {i} {column}: {a[column]!r:.120} != {b[column]!r:.120}"
        for i, (a, b) in enumerate(zip(expected.to_pylist(), got.to_pylist()))
        for column in expected.column_names
        if a[column] != b.get(column)
    ]


def test_limits_are_split_between_worker_processes(config: Config) -> None:
    limited = config.with_overrides({"llm.max_concurrency": 9, "llm.rpm": 600, "llm.tpm": 0})
    assert runner.worker_limits(with_runner(limited, runner="threads")) == {}  # one process, one limiter
    assert runner.worker_limits(with_runner(limited, runner="dask", cluster_workers=2)) == {
        "llm.max_concurrency": "4", "llm.rpm": "300"  # tpm 0 stays unlimited
    }
    # never below one request at a time, however many workers
    assert runner.worker_limits(with_runner(limited, runner="ray", cluster_workers=20))["llm.max_concurrency"] == "1"
    # explicit overrides are kept, the shares win for the limits
    assert runner.flow_overrides(with_runner(limited, runner="dask"), {"llm.rpm": "600", "llm.model": "m"}) == {
        "llm.rpm": "300", "llm.model": "m", "llm.max_concurrency": "4"
    }


def test_the_task_runner_follows_the_config(config: Config) -> None:
    threads = runner.task_runner(with_runner(config, runner="threads", max_workers=3))
    assert isinstance(threads, runner.InterruptibleThreadPoolTaskRunner) and threads._max_workers == 3
    if importlib.util.find_spec("prefect_dask") is not None:
        local = runner.task_runner(with_runner(config, runner="dask", cluster_workers=3, max_workers=7))
        assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["threads_per_worker"] == 3
        remote = runner.task_runner(with_runner(config, runner="dask", cluster_address="tcp://10.0.0.1:8786"))
        assert remote.address == "tcp://10.0.0.1:8786"


@pytest.mark.skipif(importlib.util.find_spec("prefect_ray") is not None, reason="the ray extra is installed")
def test_a_missing_extra_is_one_line_and_exit_2(config: Config, fake: FakeOpenAI, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"runner = ray needs the ray extra: pip install -e '\.\[ray\]'"):
        runner.task_runner(with_runner(config, runner="ray"))
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(SCENARIO), "--datasets", str(tmp_path / "data"), "--set", "pipeline.runner=ray",
         "--set", "llm.api_type=openai", "--set", f"llm.base_url={fake.url}", "--set", "llm.model=fake-model"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "TROUPE_PREFECT__SERVER": "none"},
    )
    assert result.returncode == 2, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "error: [pipeline] runner = ray needs the ray extra: pip install -e '.[ray]' (or set [pipeline] runner = threads)"
    ]
    assert fake.calls == 0 and not (tmp_path / "data" / "runs").exists()

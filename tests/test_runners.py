"""Task runners: ``[pipeline] runner = threads | dask | ray`` (flows/runner.py).

The scenario flow runs from plain Python through ``runner.run_flow``, as any caller would, on
Prefect's thread pool and on a local Dask cluster or a local Ray instance of two worker
processes; each writes the same datasets (same part files, same rows; only the wall-clock columns
differ), and the endpoint's concurrency limit holds across the workers. A Ray run stops on SIGINT
or SIGTERM like a thread run, leaving none of Ray's processes behind.

The cluster tests skip when their extra is missing, except under CI (``CI`` set), where the test
extra installs both and a missing one fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows import interrupts, runner
from tests import test_interrupts as interrupts_test
from tests.conftest import fake_config, require_extra
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
    ``seq`` column. The run's total cost in ``runs`` is an exact sum (``math.fsum``), so it matches to the bit.
    """
    tables = {}
    for path in sorted(root.rglob("*.parquet")):
        table = pq.read_table(path)
        table = table.drop_columns([c for c in table.column_names if c in CLOCK_COLUMNS])
        if path.relative_to(root).parts[0] == "llm_calls":
            table = table.drop_columns(["seq"]).sort_by("key")
        tables[str(path.relative_to(root))] = table
    return tables


@contextlib.contextmanager
def progress_calls(counts: list[int]) -> Iterator[None]:
    """Append to counts the paid calls that progress events reported while the block ran."""
    from troupe import progress

    seen = [0]
    unsubscribe = progress.subscribe(lambda e: seen.__setitem__(0, seen[0] + (e.kind == "call" and not e.data["cache_hit"])))
    try:
        yield
    finally:
        unsubscribe()
        counts.append(seen[0])


def test_a_missing_extra_fails_the_cluster_tests_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prefect_ray", None)  # find_spec answers None, as when not installed
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set and this test needs the ray extra"):
        require_extra("prefect_ray", "ray")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="needs the ray extra"):
        require_extra("prefect_ray", "ray")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("runner_name", "module", "shard_size"),
    [
        # Dask: a worker runs ceil(8 / 2) = 4 shards at once, so one world per shard spreads the
        # four worlds over both workers, and each worker alone could reach the limit of 2.
        ("dask", "prefect_dask", 1),
        # Ray: a worker process runs one task at a time, so two worlds per shard (advancing
        # together) give each worker two calls at once, which the limit's split holds to one.
        ("ray", "prefect_ray", 2),
    ],
)
def test_a_local_cluster_writes_the_same_datasets_as_threads(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path, runner_name: str, module: str, shard_size: int
) -> None:
    require_extra(module, runner_name)
    fake.latency_s = 0.2
    settings = {"shard_size": shard_size, "max_workers": 8}
    shown: list[int] = []  # paid calls the progress display saw, per run: on a cluster they are made in the workers
    with progress_calls(shown):
        threads = run_scenario(fake, tmp_path / "threads", runner="threads", concurrency=2, **settings)
    calls, peak = fake.calls, fake.peak_concurrency
    fake.reset()
    fake.latency_s = 0.2
    with progress_calls(shown):
        cluster = run_scenario(fake, tmp_path / runner_name, runner=runner_name, cluster_workers=2, concurrency=2, **settings)
    assert fake.calls == calls > 0  # separate caches: the cluster run paid for every call again
    assert shown == [calls, calls]
    assert peak == 2 and fake.peak_concurrency <= 2  # the limit held across the two worker processes
    assert threads["status"] == cluster["status"] == "completed"
    assert threads["task_runs"] == cluster["task_runs"]

    expected, got = dataset_files(tmp_path / "threads" / "datasets"), dataset_files(tmp_path / runner_name / "datasets")
    assert list(got) == list(expected) and any(name.startswith("events/") for name in expected)
    for name, table in expected.items():
        assert got[name].equals(table), (name, differences(table, got[name]))


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "to_group", "code"), [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)], ids=["sigint-group", "sigterm-process"])
def test_a_signal_stops_a_run_on_a_local_ray_cluster(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path, sig: int, to_group: bool, code: int
) -> None:
    """Ctrl-C or SIGTERM: exit 130/143, a cancelled row, and none of the Ray processes the run started left.

    ray.init takes over SIGTERM (a handler that exits 1, and a C++ one that aborts the process 3 s
    later); flows/ray_runner.py puts troupe's back.
    """
    require_extra("prefect_ray", "ray")
    fake.latency_s = interrupts_test.LATENCY_S
    env = interrupts_test.run_env(fake, tmp_path, TROUPE_PIPELINE__RUNNER="ray", TROUPE_PIPELINE__CLUSTER_WORKERS="2", TROUPE_PIPELINE__SHARD_SIZE="1")
    root = tmp_path / "data"
    process = interrupts_test.start(SCENARIO, root, "r", env)
    interrupts_test.wait_for_calls(fake, 6, process, timeout=180)
    started = descendants(process.pid)  # Ray's GCS server, raylet, workers, ...
    assert any("raylet" in command for command in started.values()), started
    seconds, stdout, stderr = interrupts_test.interrupt(process, sig, to_group=to_group)
    print(f"stopped {seconds:.1f} s after the signal")  # shown with -s; docs/cluster.md quotes it

    assert process.returncode == code, stderr
    assert seconds < 20, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in stdout + stderr and "SIGTERM received" not in stderr
    assert "interrupted: stopped and its row says cancelled" in stderr
    assert interrupts_test.run_status(root, "r")[0] == "cancelled"
    interrupts_test.assert_session_gone(process.pid)
    assert not alive(started), f"left behind: {alive(started)}"


def descendants(pid: int) -> dict[int, str]:
    """The processes below pid, with their command lines (Ray may start some in sessions of their own)."""
    return {child: command for child in interrupts._descendants(pid) if (command := command_line(child)) is not None}


def command_line(pid: int) -> str | None:
    """pid's command line, or None once it has exited (a zombie's is empty)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def alive(processes: dict[int, str], timeout: float = 5) -> dict[int, str]:
    """Those of processes still running after up to timeout seconds (the same pid and command line)."""
    deadline = time.monotonic() + timeout
    while True:
        left = {pid: command for pid, command in processes.items() if command and command_line(pid) == command}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


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
    if importlib.util.find_spec("prefect_ray") is not None:
        local = runner.task_runner(with_runner(config, runner="ray", cluster_workers=3, max_workers=7))
        assert local.address is None and local.init_kwargs["num_cpus"] == 3  # one shard per CPU at a time
        remote = runner.task_runner(with_runner(config, runner="ray", cluster_address="ray://10.0.0.1:10001"))
        assert remote.address == "ray://10.0.0.1:10001" and "num_cpus" not in remote.init_kwargs


@pytest.mark.parametrize(("runner_name", "module"), [("dask", "prefect_dask"), ("ray", "prefect_ray")])
def test_a_missing_extra_is_one_line_and_exit_2(
    config: Config, fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner_name: str, module: str
) -> None:
    # The extra is hidden rather than uninstalled: in this process through sys.modules, in the
    # CLI's through a package of the same name first on its path that fails to import, as a
    # missing one does.
    monkeypatch.setitem(sys.modules, module, None)
    expected = (
        f"[pipeline] runner = {runner_name} needs the {runner_name} extra: pip install -e '.[{runner_name}]' "
        "(or set [pipeline] runner = threads)"
    )
    with pytest.raises(ConfigError) as raised:
        runner.task_runner(with_runner(config, runner=runner_name))
    assert str(raised.value) == expected
    hidden = tmp_path / "hidden" / module
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ModuleNotFoundError(f'No module named {__name__!r}', name=__name__)\n")
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(SCENARIO), "--datasets", str(tmp_path / "data"), "--set", f"pipeline.runner={runner_name}",
         "--set", "llm.api_type=openai", "--set", f"llm.base_url={fake.url}", "--set", "llm.model=fake-model"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={
            **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
            "TROUPE_PREFECT__SERVER": "none",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(hidden.parent), os.environ.get("PYTHONPATH")])),
        },
    )
    assert result.returncode == 2, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [f"error: {expected}"]
    assert fake.calls == 0 and not (tmp_path / "data").exists()

"""Ctrl-C and SIGTERM stop a running ``troupe run`` within seconds, as a real process.

Each test starts ``troupe run`` in a session of its own against the fake server with 12 s of
latency per call (so calls are in flight when the signal comes), signals it once a few calls have
arrived, and checks: the exit code (130 for SIGINT, 143 for SIGTERM), the time to stop (shorter
than one call's latency, so the calls in flight were cancelled, not waited for), the run's row
(``cancelled``), and that no process of the run's session is left. A rerun pays only for the calls
that had not finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_extra
from tests.fake_openai import FakeOpenAI
from troupe.datasets import connect

REPO = Path(__file__).resolve().parent.parent
LATENCY_S = 12.0
# Signalled just after calls started, a run that waited for them would take ~LATENCY_S to stop;
# one that cancels them stops in the time Prefect and Python take to wind down (1-4 s here, more
# on a machine under heavy load).
STOP_WITHIN_S = LATENCY_S - 2

SCENARIO = REPO / "tests" / "data" / "scenarios" / "four_worlds.yaml"  # four worlds, up to four calls at once


def run_env(fake: FakeOpenAI, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TROUPE_LLM__API_TYPE": "openai",
        "TROUPE_LLM__BASE_URL": fake.url,
        "TROUPE_LLM__MODEL": "fake-model",
        "TROUPE_PREFLIGHT__CHECK_ENDPOINT": "false",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "COLUMNS": "200",
        **extra,
    }


def start(scenario: Path, root: Path, run_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(scenario), "--datasets", str(root), "--run-id", run_id, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, start_new_session=True,
    )


def wait_for_calls(fake: FakeOpenAI, n: int, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while fake.calls < n:
        assert process.poll() is None, f"the run ended before it was signalled:\n{process.communicate()[1]}"
        assert time.monotonic() < deadline, "the run made no calls"
        time.sleep(0.05)


def assert_session_gone(pgid: int, timeout: float = 5) -> None:
    """No process is left in the run's process group (a temporary server, Dask workers, ...)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            pytest.fail("processes of the interrupted run were left behind")
        time.sleep(0.1)


def interrupt(process: subprocess.Popen[str], sig: int, to_group: bool) -> tuple[float, str, str]:
    """Send sig; returns the seconds until the process exited, and its output."""
    sent = time.monotonic()
    if to_group:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return time.monotonic() - sent, stdout, stderr


def run_status(root: Path, run_id: str) -> tuple[str, int]:
    connection = connect(root)
    try:
        return connection.execute(f"SELECT status, calls FROM runs WHERE run_id = '{run_id}'").fetchone()
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "to_group", "code"),
    [(signal.SIGINT, True, 130), (signal.SIGINT, False, 130), (signal.SIGTERM, False, 143)],
    ids=["sigint-group", "sigint-process", "sigterm-process"],
)
def test_a_signal_stops_the_run_within_seconds(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path, sig: int, to_group: bool, code: int
) -> None:
    fake.latency_s = LATENCY_S
    scenario, root = SCENARIO, tmp_path / "data"
    process = start(scenario, root, "r", run_env(fake, tmp_path))
    wait_for_calls(fake, 6, process)  # the personas are done, the first turns are in flight
    seconds, stdout, stderr = interrupt(process, sig, to_group)

    assert process.returncode == code, stderr
    assert seconds < STOP_WITHIN_S, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in stdout + stderr
    assert "interrupted: stopped and its row says cancelled" in stderr
    assert run_status(root, "r")[0] == "cancelled"
    assert_session_gone(process.pid)


@pytest.mark.slow
def test_a_rerun_pays_only_for_what_did_not_finish(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    scenario = SCENARIO
    full = start(scenario, tmp_path / "full", "full", run_env(fake, tmp_path))
    assert full.wait(timeout=180) == 0, full.communicate()[1]
    total = fake.calls
    assert total == run_status(tmp_path / "full", "full")[1] > 0

    fake.reset()
    fake.latency_s = LATENCY_S
    root = tmp_path / "data"
    process = start(scenario, root, "first", run_env(fake, tmp_path))
    wait_for_calls(fake, 6, process)
    at_signal, in_flight_at_most = fake.calls, fake.peak_concurrency
    interrupt(process, signal.SIGINT, to_group=True)
    assert process.returncode == 130
    started = fake.calls

    fake.reset()  # no latency
    rerun = start(scenario, root, "second", run_env(fake, tmp_path))
    stdout, stderr = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, stderr
    paid = fake.calls
    assert run_status(root, "second") == ("completed", paid)
    # every call that finished before the signal is served from the cache; the ones cancelled
    # in flight (at most the concurrency the fake saw) are paid again
    assert total - started <= paid <= total - (at_signal - in_flight_at_most)
    assert paid < total


@pytest.mark.slow
def test_sigterm_stops_the_temporary_prefect_server_too(fake: FakeOpenAI, tmp_path: Path) -> None:
    """[prefect] server = ephemeral: the server Prefect started for the run goes with it."""
    fake.latency_s = LATENCY_S
    env = run_env(fake, tmp_path, TROUPE_PREFECT__SERVER="ephemeral")
    env.pop("PREFECT_API_URL", None)
    scenario, root = SCENARIO, tmp_path / "data"
    process = start(scenario, root, "r", env)
    wait_for_calls(fake, 6, process, timeout=180)  # the temporary server takes 10-25 s to start here
    seconds, _, stderr = interrupt(process, signal.SIGTERM, to_group=False)
    assert process.returncode == 143, stderr
    assert seconds < STOP_WITHIN_S, f"took {seconds:.1f} s to stop"
    assert run_status(root, "r")[0] == "cancelled"
    assert_session_gone(process.pid)


@pytest.mark.slow
def test_sigterm_stops_a_run_on_a_local_dask_cluster(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    require_extra("prefect_dask", "dask")  # skips without the extra, fails under CI
    """The cluster's worker processes go with the run; Dask gives each 4 s to close, so the bound is looser."""
    fake.latency_s = LATENCY_S
    env = run_env(fake, tmp_path, TROUPE_PIPELINE__RUNNER="dask", TROUPE_PIPELINE__CLUSTER_WORKERS="2", TROUPE_PIPELINE__SHARD_SIZE="1")
    root = tmp_path / "data"
    process = start(SCENARIO, root, "r", env)
    wait_for_calls(fake, 6, process, timeout=180)
    seconds, _, stderr = interrupt(process, signal.SIGTERM, to_group=False)
    assert process.returncode == 143, stderr
    assert seconds < 20, f"took {seconds:.1f} s to stop"
    # On Dask the signal often lands while the flow's thread is inside pydantic, which wraps
    # Prefect's TerminationSignal in an ordinary error: the flow asks flows.interrupts.received().
    assert run_status(root, "r")[0] == "cancelled"
    assert_session_gone(process.pid)

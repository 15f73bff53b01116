"""The Prefect server that stays: ``troupe server start|stop|status`` and ``[prefect] server``.

These run ``troupe`` as real processes without ``PREFECT_API_URL``, with ``[prefect] home`` in a
temporary directory and a free port, so they start a server of their own (10-20 s here) and never
touch the user's ``~/.troupe``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from flows import server
from tests.conftest import free_port
from tests.fake_openai import FakeOpenAI
from troupe.config import PrefectConfig
from troupe.datasets import connect

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "troupe" / "examples" / "scenarios" / "demo.yaml"


def troupe(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[PrefectConfig, dict[str, str]]]:
    """A [prefect] home and port of the test's own, and the environment that selects them."""
    config = PrefectConfig(home=str(tmp_path / "troupe-prefect"), port=free_port())
    env = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        "TROUPE_PREFECT__HOME": config.home,
        "TROUPE_PREFECT__PORT": str(config.port),
        "COLUMNS": "200",
    }
    yield config, env
    server.stop(config)  # whatever happened, the test's server does not outlive it


def llm(fake: FakeOpenAI) -> dict[str, str]:
    return {"TROUPE_LLM__API_TYPE": "openai", "TROUPE_LLM__BASE_URL": fake.url, "TROUPE_LLM__MODEL": "fake-model"}


def task_runs_of(url: str, flow_run_name: str) -> list[str]:
    """The state types of the task runs of the one flow run named flow_run_name, from the server's REST API."""
    import urllib.request

    def post(path: str, body: dict[str, object]) -> list[dict[str, object]]:
        request = urllib.request.Request(
            f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    [flow_run] = post("/flow_runs/filter", {"flow_runs": {"name": {"any_": [flow_run_name]}}})
    task_runs = post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run["id"]]}}, "limit": 200})
    return [str(t["state_type"]) for t in task_runs]


@pytest.mark.slow
def test_a_run_starts_the_server_once_and_it_stays(fake: FakeOpenAI, tmp_path: Path, home: tuple[PrefectConfig, dict[str, str]]) -> None:
    config, env = home
    status = troupe("server", "status", env=env)
    assert status.returncode == 1 and "not running" in status.stdout, status.stdout + status.stderr

    root = tmp_path / "data"
    first = troupe("run", str(DEMO), "--datasets", str(root), "--run-id", "r1", env={**env, **llm(fake)})
    assert first.returncode == 0, first.stderr
    assert f"Prefect: troupe's Prefect server (started, home {config.home})" in first.stderr
    state = server.status(config)
    assert state is not None, "the server the run started did not stay"
    assert state.url == f"http://127.0.0.1:{config.port}/api"

    # the run is in the server, named after the run id, with every task run in a final state
    connection = connect(root)
    try:
        [(task_runs,)] = connection.execute("SELECT task_runs FROM runs WHERE run_id = 'r1'").fetchall()
    finally:
        connection.close()
    states = task_runs_of(state.url, "r1")
    assert len(states) >= task_runs > 0
    assert set(states) == {"COMPLETED"}, states

    second = troupe("run", str(DEMO), "--datasets", str(root), "--run-id", "r2", "--quiet", env={**env, **llm(fake)})
    assert second.returncode == 0, second.stderr
    assert server.status(config) == state  # reused, not restarted

    again = troupe("server", "start", env=env)
    assert again.returncode == 0 and f"already running: pid {state.pid}" in again.stdout
    running = troupe("server", "status", env=env)
    assert running.returncode == 0 and f"pid {state.pid}" in running.stdout and state.url in running.stdout

    stopped = troupe("server", "stop", env=env)
    assert stopped.returncode == 0 and f"stopped (pid {state.pid}" in stopped.stdout
    with pytest.raises(ProcessLookupError):
        os.killpg(state.pid, 0)
    assert troupe("server", "status", env=env).returncode == 1
    assert "no Prefect server of troupe's is running" in troupe("server", "stop", env=env).stdout


@pytest.mark.slow
def test_two_starts_at_once_share_one_server(home: tuple[PrefectConfig, dict[str, str]]) -> None:
    config, env = home
    command = [sys.executable, "-m", "flows.cli", "server", "start"]
    starts = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for _ in range(2)]
    outputs = [process.communicate(timeout=240)[0] for process in starts]
    assert [process.returncode for process in starts] == [0, 0], outputs
    state = server.status(config)
    assert state is not None and server.healthy(state.url)
    assert sorted(f"pid {state.pid}," in out and ("started" in out) for out in outputs) == [False, True], outputs
    assert sum("already running" in out for out in outputs) == 1, outputs
    assert troupe("server", "stop", env=env).returncode == 0
    assert not server.healthy(state.url)
    assert not (Path(config.home) / server.STATE_FILE).exists()


@pytest.mark.slow
def test_ctrl_c_while_the_server_starts_leaves_no_server(fake: FakeOpenAI, tmp_path: Path, home: tuple[PrefectConfig, dict[str, str]]) -> None:
    config, env = home
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(DEMO), "--datasets", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, **llm(fake)}, cwd=REPO,
    )
    log = Path(config.home) / "server.log"
    deadline = time.monotonic() + 120
    while not log.exists():  # the server process has been started, and is not up yet
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted: stopped before the run started; nothing was written" in stderr and "Traceback" not in stderr
    time.sleep(1)
    assert not server.healthy(server.api_url(config)) and server.status(config) is None
    assert not (tmp_path / "data").exists() and fake.calls == 0


def test_server_none_needs_prefect_api_url(fake: FakeOpenAI, tmp_path: Path, home: tuple[PrefectConfig, dict[str, str]]) -> None:
    _, env = home
    result = troupe("run", str(DEMO), "--datasets", str(tmp_path / "data"), "--set", "prefect.server=none", env={**env, **llm(fake)})
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: [prefect] server = none needs PREFECT_API_URL"), result.stderr
    assert fake.calls == 0 and not (tmp_path / "data" / "runs").exists()


def test_a_bad_server_setting_is_one_line_and_exit_2(fake: FakeOpenAI, tmp_path: Path) -> None:
    env = {**os.environ, **llm(fake), "TROUPE_PREFECT__SERVER": "sometimes"}
    result = troupe("run", str(DEMO), "--datasets", str(tmp_path / "data"), env=env)
    assert result.returncode == 2, result.stderr
    assert "TROUPE_PREFECT__SERVER: 'sometimes'" in result.stderr and "Traceback" not in result.stderr
    assert fake.calls == 0


def test_resolve_prefers_prefect_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """PREFECT_API_URL wins over every [prefect] server setting, none included; ephemeral means no URL."""
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    for mode in ("auto", "ephemeral", "none"):
        assert server.resolve(PrefectConfig(server=mode)).url == "http://127.0.0.1:9/api"  # type: ignore[arg-type]
    monkeypatch.delenv("PREFECT_API_URL")
    assert server.resolve(PrefectConfig(server="ephemeral")).url is None

"""The Prefect API a run reports to: a local server that stays, Prefect's temporary one, or the user's.

Without ``PREFECT_API_URL`` Prefect starts a temporary server inside every run: 10-25 s of start-up
on a 2-core machine, and the run's history goes with it. troupe instead starts one ``prefect
server`` in the background, once, and every later run reuses it (``[prefect] server = auto``).

Its ``PREFECT_HOME`` (SQLite database, log, pid file) is ``~/.troupe/prefect`` unless ``[prefect]
home`` says otherwise: one server per user, not per dataset root, so runs over every dataset root
appear in one UI on one port, and a run in another directory reuses it instead of starting a
second server. Nothing a run needs lives there: task results and the call cache stay under the
dataset root's ``_cache``, so deleting that home loses only the UI's history.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel

from troupe.config import PrefectConfig
from troupe.errors import ConfigError

STATE_FILE = "server.json"


class ServerState(BaseModel):
    """What ``troupe server start`` records in its home: enough to find, check and stop the server."""

    pid: int
    port: int
    url: str
    home: str
    started: datetime
    log: str


def home_dir(config: PrefectConfig) -> Path:
    return Path(config.home).expanduser() if config.home else Path.home() / ".troupe" / "prefect"


def api_url(config: PrefectConfig) -> str:
    return f"http://127.0.0.1:{config.port}/api"


def healthy(url: str, timeout: float = 1.0) -> bool:
    """Whether a Prefect API answers its health check at url."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a child of this process that exited is a zombie until reaped: not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _read_state(home: Path) -> ServerState | None:
    try:
        return ServerState.model_validate_json((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def status(config: PrefectConfig) -> ServerState | None:
    """The server troupe started for this home, if it is running and answers; else None."""
    state = _read_state(home_dir(config))
    if state is None or not _alive(state.pid) or not healthy(state.url):
        return None
    return state


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    """One process at a time starts or stops the server (two runs starting at once share one)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start(config: PrefectConfig) -> tuple[ServerState | None, bool]:
    """Start the server in the background, or find it running. Returns (state, started now).

    The state is None when a Prefect server that troupe did not start already answers on the
    port: it is used as it is, and ``troupe server stop`` leaves it alone.
    """
    home = home_dir(config)
    with _locked(home):
        state = status(config)
        if state is not None:
            return state, False
        url = api_url(config)
        if healthy(url):
            return None, False
        log = home / "server.log"
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        }
        env.pop("PREFECT_API_URL", None)
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(config.port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,  # its own process group: Ctrl-C on a run does not reach it
            )
        try:
            _wait_until_healthy(process, url, log, config.startup_timeout_s)
        except BaseException:  # a timeout, or Ctrl-C while it starts: no server left without a pid file
            _stop_pid(process.pid)
            raise
        state = ServerState(
            pid=process.pid, port=config.port, url=url, home=str(home), started=datetime.now(timezone.utc), log=str(log)
        )
        temporary = home / f".{STATE_FILE}.{os.getpid()}"
        temporary.write_text(state.model_dump_json(indent=1))
        temporary.replace(home / STATE_FILE)
        return state, True


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not healthy(url):
        if process.poll() is not None:
            raise ConfigError(
                f"the Prefect server exited with code {process.returncode} ({_last_line(log)}); see {log}, "
                f"or pick another port with [prefect] port (TROUPE_PREFECT__PORT)"
            )
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the Prefect server did not answer within {timeout_s:g} s; see {log}, or raise [prefect] startup_timeout_s"
            )
        time.sleep(0.2)


def stop(config: PrefectConfig) -> ServerState | None:
    """Stop the server troupe started for this home; None if none was running."""
    home = home_dir(config)
    with _locked(home):
        state = _read_state(home)
        if state is None:
            return None
        running = _alive(state.pid)
        if running:
            _stop_pid(state.pid)
        (home / STATE_FILE).unlink(missing_ok=True)
        return state if running else None


def _stop_pid(pid: int, grace_s: float = 20.0) -> None:
    """SIGTERM to the server's process group (it runs its API in a child), SIGKILL after grace_s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            _alive(pid)  # reaps it if it is this process's child
            time.sleep(0.1)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[:200] if lines else "no output"


class Api(BaseModel):
    """The Prefect API a run uses: its URL (None = Prefect's temporary server) and where it came from."""

    url: str | None
    source: str


def resolve(config: PrefectConfig) -> Api:
    """Pick the API for a run by ``[prefect] server``; ``PREFECT_API_URL``, when set, always wins.

    auto: start or reuse troupe's background server (it stays after the run);
    ephemeral: Prefect's temporary server, started inside this run and stopped at its end;
    none: only ``PREFECT_API_URL``; without it, a one-line error before anything runs.
    """
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return Api(url=url, source="PREFECT_API_URL")
    if config.server == "ephemeral":
        return Api(url=None, source="a temporary Prefect server for this run ([prefect] server = ephemeral)")
    if config.server == "none":
        raise ConfigError(
            "[prefect] server = none needs PREFECT_API_URL: export PREFECT_API_URL=http://<host>:4200/api, "
            "or set [prefect] server = auto (TROUPE_PREFECT__SERVER=auto)"
        )
    state, started = start(config)
    how = "started" if started else "running"
    where = f"troupe's Prefect server ({how}, home {state.home})" if state else f"the Prefect server on port {config.port}"
    return Api(url=api_url(config), source=where)


@contextmanager
def using(api: Api) -> Iterator[None]:
    """Point this process (and the processes it starts, e.g. Dask workers) at api for the block."""
    if api.url is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api.url
    try:
        with temporary_settings(updates={PREFECT_API_URL: api.url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def kept(config: PrefectConfig) -> set[int]:
    """Processes that outlive a run: troupe's Prefect server, even when this run started it."""
    state = _read_state(home_dir(config))
    return {state.pid} if state else set()


def settle(flow_run_id: Any, name: str | None, task_runs: int | None, timeout_s: float = 30.0) -> None:
    """Before the command exits: name the flow run after the troupe run, and let its task runs reach the API.

    Prefect reports task-run states as events, sent by a background worker and recorded by the
    server asynchronously; a process that exits at once loses the ones still queued. This drains
    the queue, then waits (up to timeout_s) until the server lists task_runs task runs of the flow
    run in a final state, or, when the count is unknown, until that number stops growing.
    """
    from prefect.client.orchestration import get_client
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=timeout_s)
    with get_client(sync_client=True) as client:
        if name:
            client.update_flow_run(flow_run_id, name=name)
        final = ["COMPLETED", "FAILED", "CANCELLED", "CRASHED"]
        runs = {"flow_runs": {"id": {"any_": [str(flow_run_id)]}}, "task_runs": {"state": {"type": {"any_": final}}}}
        deadline, seen = time.monotonic() + timeout_s, -1
        while time.monotonic() < deadline:
            count = int(client.request("POST", "/task_runs/count", json=runs).json())
            if (count >= task_runs) if task_runs is not None else (count == seen):
                return
            seen = count
            time.sleep(0.2)

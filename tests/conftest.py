"""Shared fixtures: the fake OpenAI-compatible server and configurations that point at it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.fake_openai import FakeOpenAI
from troupe.config import Config, load_config
from troupe.llm import LLMGateway

# Tests never read a developer's ./config.ini or TROUPE_* variables, and never reach a real provider.
for _name in list(os.environ):
    if _name.startswith("TROUPE_") or _name in ("OPENAI_API_KEY", "AZURE_OPENAI_KEY", "AZURE_OPENAI_ENDPOINT"):
        del os.environ[_name]


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> FakeOpenAI:
    """The session's fake server, with counters, faults and responder reset for this test."""
    fake_server.reset()
    fake_server.latency_s = 0.0
    fake_server.slots = None
    fake_server.json_schema_supported = True
    return fake_server


# A population spec's dimensions (age, gender, and region given age) for the population tests:
# proportions that do not divide small samples evenly, and one conditional dimension.
DIMENSIONS: dict[str, Any] = {
    "age": {"18-29": 0.21, "30-44": 0.26, "45-64": 0.33, "65-90": 0.20},
    "gender": {"female": 0.51, "male": 0.49},
    "region": {
        "given": "age",
        "shares": {
            "18-29": {"North": 0.5, "South": 0.3, "West": 0.2},
            "30-44": {"North": 0.3, "South": 0.4, "West": 0.3},
            "45-64": {"North": 0.2, "South": 0.5, "West": 0.3},
            "65-90": {"North": 0.1, "South": 0.6, "West": 0.3},
        },
    },
}


def fake_config(server: FakeOpenAI, root: Path, **overrides: Any) -> Config:
    """A configuration that talks to server, caches under root, and prints no transcript."""
    values: dict[str, Any] = {
        "llm.api_type": "openai",
        "llm.base_url": server.url,
        "llm.model": "fake-model",
        "llm.max_attempts": 3,
        "llm.timeout_s": 5,
        "cache.dir": str(root / "cache"),
        "datasets.root": str(root / "datasets"),
        "simulation.transcript": "false",
    }
    values.update(overrides)
    return load_config(values, cwd=root, environ={})


def flow_overrides(server: FakeOpenAI, **extra: str) -> dict[str, str]:
    """A flow's ``overrides`` that point it at server and print no transcript; extra keys are added
    as given (dotted keys: ``**{"cache.dir": ...}``)."""
    return {
        "llm.api_type": "openai",
        "llm.base_url": server.url,
        "llm.model": "fake-model",
        "llm.timeout_s": "10",
        "simulation.transcript": "false",
        **extra,
    }


def sql(root: Path, query: str) -> list[tuple[Any, ...]]:
    """The rows of a DuckDB query over the datasets under root."""
    from troupe.datasets import connect

    connection = connect(root)
    try:
        return connection.sql(query).fetchall()
    finally:
        connection.close()


@pytest.fixture
def config(fake: FakeOpenAI, tmp_path: Path) -> Config:
    return fake_config(fake, tmp_path)


@pytest.fixture
def gateway(config: Config) -> LLMGateway:
    return LLMGateway(config)


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1 (for servers the tests and benches start)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_prefect_server(home: Path) -> tuple[Any, str]:
    """Start ``prefect server start`` on a free 127.0.0.1 port with its database in home; wait until healthy.

    Returns the process and the API URL. Also used by bench/pipeline.py.
    """
    import subprocess
    import sys
    import time
    import urllib.request

    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    deadline = time.monotonic() + 120  # Prefect's own 20 s start-up timeout was too short here once
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return server, url
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"the Prefect server did not start; see {home / 'server.log'}")
        time.sleep(0.25)


def stop_prefect_server(server: Any) -> None:
    import subprocess

    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect API server on 127.0.0.1, started once per test session; yields its API URL.

    Its database lives in a temporary PREFECT_HOME. Starting it takes ~10 s here, so every test that
    runs a flow shares it; the test process is pointed at it with temporary_settings.
    """
    server, url = start_prefect_server(tmp_path_factory.mktemp("prefect-home"))

    import tasks  # noqa: F401 - quiet Prefect's logging before it is imported
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = url  # for subprocesses (the CLI tests)
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # logs still queued for the API would retry after it stops
        os.environ.pop("PREFECT_API_URL", None)
        stop_prefect_server(server)


@pytest.fixture
def hf(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Hugging Face ``datasets`` (the test extra), never reaching the network: tests read only files they wrote."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    assert datasets.config.HF_DATASETS_OFFLINE and datasets.config.HF_HUB_OFFLINE
    yield datasets


def require_extra(module: str, extra: str) -> None:
    """Skip a test whose extra is not installed, except under CI, where the test extra installs it.

    With ``CI`` set a missing extra fails the test: a runner's tests must not go quiet on a
    machine that was meant to run them.
    """
    if importlib.util.find_spec(module) is not None:
        return
    message = f"needs the {extra} extra ({module} is not installed): pip install -e '.[test]'"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI is set and this test {message}")
    pytest.skip(message)

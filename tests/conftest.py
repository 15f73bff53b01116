"""Shared fixtures: the fake OpenAI-compatible server and configurations that point at it."""

from __future__ import annotations

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


@pytest.fixture
def config(fake: FakeOpenAI, tmp_path: Path) -> Config:
    return fake_config(fake, tmp_path)


@pytest.fixture
def gateway(config: Config) -> LLMGateway:
    return LLMGateway(config)

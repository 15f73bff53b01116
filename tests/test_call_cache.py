"""Both call-cache backends: the CallCache contract, atomicity under concurrent processes, selection by config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.call_cache import PrefectCallCache
from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from troupe.cache import CallCache, FileCallCache, cache_key, open_cache
from troupe.errors import ConfigError
from troupe.llm import LLMGateway

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = {"files": FileCallCache, "prefect": PrefectCallCache}
BIG = {"text": "x" * 200_000, "finish_reason": "stop", "usage": {"prompt_tokens": 1, "completion_tokens": 2}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_contract(backend: str, tmp_path: Path) -> None:
    cache = BACKENDS[backend](tmp_path)
    assert isinstance(cache, CallCache)
    key = cache_key({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert cache.get(key) is None
    cache.put(key, {"text": "hello", "usage": {"prompt_tokens": 3}})
    assert cache.get(key) == {"text": "hello", "usage": {"prompt_tokens": 3}}
    assert BACKENDS[backend](tmp_path).get(key) == {"text": "hello", "usage": {"prompt_tokens": 3}}  # persisted
    cache.delete(key)
    cache.delete(key)
    assert cache.get(key) is None


def test_keys_are_content_not_position() -> None:
    a = cache_key({"model": "m", "messages": [{"role": "user", "content": "x"}], "sample": 0})
    b = cache_key({"sample": 0, "messages": [{"content": "x", "role": "user"}], "model": "m"})
    assert a == b
    assert a != cache_key({"model": "m", "messages": [{"role": "user", "content": "x"}], "sample": 1})


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writers_never_expose_a_partial_record(backend: str, tmp_path: Path) -> None:
    """Two processes rewrite the same large records while this one reads: once whole, a record stays whole."""
    writer = (
        "import sys\n"
        "from pathlib import Path\n"
        f"from {BACKENDS[backend].__module__} import {BACKENDS[backend].__name__} as Cache\n"
        "from tests.test_call_cache import BIG\n"
        "cache = Cache(Path(sys.argv[1]))\n"
        "for round in range(40):\n"
        "    for i in range(5): cache.put(f'k{i}', BIG)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", writer, str(tmp_path)], cwd=ROOT, env=env) for _ in range(2)]
    reader = BACKENDS[backend](tmp_path)
    seen: set[int] = set()
    while any(w.poll() is None for w in writers):
        for i in range(5):
            value = reader.get(f"k{i}")
            if i in seen:  # once whole, a rewrite of the same content must never hide it
                assert value == BIG, f"k{i} vanished or was torn during a rewrite"
            elif value is not None:
                assert value == BIG
                seen.add(i)
    assert [w.wait() for w in writers] == [0, 0]
    assert seen
    assert all(reader.get(f"k{i}") == BIG for i in range(5))


def test_gateway_on_the_prefect_backend(fake: FakeOpenAI, tmp_path: Path) -> None:
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"cache.backend": "prefect"}))
    assert isinstance(gateway.cache, PrefectCallCache)
    messages = [{"role": "user", "content": "cached through Prefect's result store"}]
    first = gateway.complete(messages)
    second = LLMGateway(fake_config(fake, tmp_path, **{"cache.backend": "prefect"})).complete(messages)
    assert second.text == first.text and second.cache_hit
    assert fake.calls == 1
    assert len(gateway.cache) == 1


def test_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[cache\] backend: 'redis' is not available; use one of: files"):
        open_cache(True, "redis", tmp_path)

"""The LLM gateway against the fake OpenAI-compatible server: real sockets, the real openai client."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from troupe.cache import FileCallCache
from troupe.llm import (
    LLMAuthError,
    LLMBadRequest,
    LLMGateway,
    LLMRefusal,
    LLMStructuredOutputError,
    LLMTruncated,
    LLMUnavailable,
)

MESSAGES = [{"role": "user", "content": "What do you think of the new coffee machine?"}]


class Opinion(BaseModel):
    reasoning: str = Field(max_length=200)
    stance: Literal["like", "dislike", "neutral"]
    score: int = Field(ge=1, le=5)


def test_structured_reply_is_parsed_and_sent_as_json_schema(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    fake.responder = lambda body: {"reasoning": "It is fast.", "stance": "like", "score": 4}
    result = gateway.structured(MESSAGES, Opinion)
    assert result.value == Opinion(reasoning="It is fast.", stance="like", score=4)
    sent = fake.requests[0]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["additionalProperties"] is False
    # OpenAI's strict mode takes no length or range keywords: they are dropped from what is sent
    # (the reply is still validated against them by pydantic).
    assert "maxLength" not in sent["json_schema"]["schema"]["properties"]["reasoning"]
    assert "minimum" not in sent["json_schema"]["schema"]["properties"]["score"]


def test_invalid_reply_gets_one_repair_round(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    replies = iter([{"reasoning": "x", "stance": "love it", "score": 9}, {"reasoning": "x", "stance": "like", "score": 5}])
    fake.responder = lambda body: next(replies)
    result = gateway.structured(MESSAGES, Opinion)
    assert result.value.score == 5
    assert fake.calls == 2
    repair = fake.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and "love it" in repair[-2]["content"]
    assert "stance" in repair[-1]["content"] and "score" in repair[-1]["content"]


def test_repair_failure_raises_and_caches_nothing(gateway: LLMGateway, fake: FakeOpenAI, config) -> None:
    fake.malformed_next(6)  # the first sample, two resamples, and the repair round of each
    with pytest.raises(LLMStructuredOutputError, match=r"Opinion: .*after one repair round and 2 resamples"):
        gateway.structured(MESSAGES, Opinion)
    assert len(FileCallCache(config.cache.dir)) == 0
    gateway.structured(MESSAGES, Opinion)  # asks again rather than replaying the failure
    assert fake.calls == 7


def test_provider_error_text_is_never_accepted(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    fake.error_text_next(6)
    with pytest.raises(LLMStructuredOutputError):
        gateway.structured(MESSAGES, Opinion)


def test_json_object_schema_mode_for_llama_cpp_style_servers(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.json_schema_supported = False
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.structured_output": "json_object_schema"}))
    result = gateway.structured(MESSAGES, Opinion)
    assert isinstance(result.value, Opinion)
    assert fake.requests[0]["response_format"]["type"] == "json_object"
    assert "properties" in fake.requests[0]["response_format"]["schema"]


def test_plain_json_mode_carries_the_schema_in_the_prompt(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = lambda body: {"reasoning": "ok", "stance": "neutral", "score": 3}
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.structured_output": "json_object"}))
    assert gateway.structured(MESSAGES, Opinion).value.stance == "neutral"
    assert fake.requests[0]["response_format"] == {"type": "json_object"}
    assert '"stance"' in fake.requests[0]["messages"][-1]["content"]


def test_retries_429_honouring_retry_after(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    fake.fail_next(1, status=429, retry_after=0.4)
    fake.fail_next(1, status=503)
    started = time.monotonic()
    result = gateway.complete(MESSAGES)
    assert time.monotonic() - started >= 0.4
    assert result.text.startswith("Fake reply")
    assert fake.calls == 3
    assert gateway.ledger.records[-1].attempts == 3


def test_timeouts_are_retried(fake: FakeOpenAI, tmp_path: Path) -> None:
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.timeout_s": 0.3}))
    fake.slow_next(1, seconds=1.0)
    assert gateway.complete(MESSAGES).text
    assert fake.calls == 2


def test_gives_up_after_max_attempts(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    fake.fail_next(5, status=500)
    with pytest.raises(LLMUnavailable, match=r"HTTP 500: .* persisted through 3 attempts"):
        gateway.complete(MESSAGES)
    assert fake.calls == 3


@pytest.mark.parametrize(("status", "error"), [(400, LLMBadRequest), (401, LLMAuthError), (403, LLMAuthError)])
def test_client_errors_raise_at_once(gateway: LLMGateway, fake: FakeOpenAI, status: int, error: type) -> None:
    fake.fail_next(1, status=status)
    with pytest.raises(error, match=f"HTTP {status}"):
        gateway.complete(MESSAGES)
    assert fake.calls == 1


def test_refusal_and_truncation_raise_are_not_cached_and_are_accounted(gateway: LLMGateway, fake: FakeOpenAI, config) -> None:
    fake.refuse_next()
    with pytest.raises(LLMRefusal):
        gateway.complete(MESSAGES)
    fake.truncate_next()
    with pytest.raises(LLMTruncated, match="raise \\[llm\\] max_tokens"):
        gateway.complete(MESSAGES)
    assert len(FileCallCache(config.cache.dir)) == 0
    # Both replies were paid for: each is a call of the ledger (and so a row of llm_calls), with its tokens.
    refused, truncated = gateway.ledger.records
    assert (refused.finish_reason, truncated.finish_reason) == ("content_filter", "length")
    assert not refused.cache_hit and not truncated.cache_hit and refused.attempts == truncated.attempts == 1
    assert refused.prompt_tokens > 0 and truncated.completion_tokens > 0


def test_replies_are_read_from_their_json_whatever_its_content_type(gateway: LLMGateway) -> None:
    """The client hands back decoded JSON, or the text of a reply not labelled JSON; both read alike."""
    from troupe.llm.gateway import _Endpoint

    endpoint = _Endpoint(client=None, limiter=None, secret=None, label="endpoint")  # type: ignore[arg-type]
    reply = {"model": "m", "choices": [{"message": {"content": "Hi."}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3}}
    assert gateway._raw(reply, endpoint, 10) == gateway._raw(json.dumps(reply), endpoint, 10)
    raw, fault = gateway._raw(reply, endpoint, 10)
    assert raw.text == "Hi." and raw.usage.prompt_tokens == 3 and fault is None
    for broken in ("<html>Bad gateway</html>", {"choices": []}, {"choices": ["text"]}):
        with pytest.raises(LLMUnavailable, match="no choices"):
            gateway._raw(broken, endpoint, 10)


def test_limiter_never_exceeds_max_concurrency(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.latency_s = 0.1
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.max_concurrency": 4}))

    async def many() -> None:
        await asyncio.gather(*(gateway.acomplete([{"role": "user", "content": f"q{i}"}]) for i in range(20)))

    asyncio.run(many())
    limiter = asyncio.run(gateway._endpoint()).limiter  # the endpoint its calls went through
    assert fake.calls == 20
    # Invariants, which hold on a loaded machine: the limiter never held more than 4 slots, and the
    # server never processed more than 4 at once. (Its arrival-to-departure count, peak_concurrency,
    # can read 5: one handler thread still writing a reply after the client has sent the next request.)
    assert 1 <= limiter.peak_active <= 4
    assert 1 <= fake.peak_active <= 4


def test_rate_limits_cut_concurrency(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.latency_s = 0.05
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.max_concurrency": 8, "llm.max_attempts": 6}))
    fake.fail_next(8, status=429, retry_after=0.05)

    async def many() -> None:
        await asyncio.gather(*(gateway.acomplete([{"role": "user", "content": f"r{i}"}]) for i in range(16)))

    asyncio.run(many())
    limiter = asyncio.run(gateway._endpoint()).limiter  # not the first of the URL's: an earlier test's fake may have had its port
    assert limiter.limit < 8


def test_identical_call_is_served_from_the_cache(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    first = gateway.structured(MESSAGES, Opinion)
    second = gateway.structured(MESSAGES, Opinion)
    assert fake.calls == 1
    assert second.value == first.value and second.cache_hit and not first.cache_hit
    other_sample = gateway.structured(MESSAGES, Opinion, sample=1)
    assert fake.calls == 2 and not other_sample.cache_hit


def test_concurrent_identical_calls_are_paid_once(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    fake.latency_s = 0.2

    async def same() -> None:
        await asyncio.gather(*(gateway.acomplete(MESSAGES) for _ in range(5)))

    asyncio.run(same())
    assert fake.calls == 1
    assert sum(r.cache_hit for r in gateway.ledger.records) == 4


def _gateway_process(script: str, fake: FakeOpenAI, cache_dir: str, **popen: object) -> subprocess.Popen:
    """Run script in another Python process; argv[1] holds overrides pointing at fake and cache_dir."""
    overrides = {"llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model", "cache.dir": cache_dir}
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(overrides)], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, **popen
    )


def test_second_process_reuses_the_cache(gateway: LLMGateway, fake: FakeOpenAI, config, tmp_path: Path) -> None:
    gateway.structured(MESSAGES, Opinion)
    script = (
        "import json, sys\n"
        "from troupe.config import load_config\n"
        "from troupe.llm import LLMGateway\n"
        "from tests.test_gateway import MESSAGES, Opinion\n"
        "config = load_config(json.loads(sys.argv[1]))\n"
        "result = LLMGateway(config).structured(MESSAGES, Opinion)\n"
        "print(json.dumps({'hit': result.cache_hit, 'value': result.value.model_dump()}))\n"
    )
    process = _gateway_process(script, fake, config.cache.dir, stdout=subprocess.PIPE)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    reply = json.loads(stdout.decode().strip().splitlines()[-1])
    assert reply["hit"] is True
    assert fake.calls == 1


def test_two_processes_write_one_cache_concurrently(fake: FakeOpenAI, config, tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from troupe.config import load_config\n"
        "from troupe.llm import LLMGateway\n"
        "g = LLMGateway(load_config(json.loads(sys.argv[1])))\n"
        "for i in range(30): g.complete([{'role': 'user', 'content': f'shared {i}'}])\n"
    )
    procs = [_gateway_process(script, fake, config.cache.dir) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    cache = FileCallCache(config.cache.dir)
    assert len(cache) == 30
    assert not list(Path(config.cache.dir).rglob("*.tmp"))
    before = fake.calls
    LLMGateway(config).complete([{"role": "user", "content": "shared 7"}])
    assert fake.calls == before


def test_a_process_that_called_an_endpoint_exits_quietly(fake: FakeOpenAI, config) -> None:
    """Remote endpoints run on openai's aiohttp transport, whose sessions warn on stderr if left open at exit."""
    script = (
        "import json, sys\n"
        "from troupe.config import load_config\n"
        "from troupe.llm import LLMGateway\n"
        "g = LLMGateway(load_config(json.loads(sys.argv[1])))\n"
        "print(g.complete([{'role': 'user', 'content': 'one call, then exit'}]).text)\n"
    )
    process = _gateway_process(script, fake, config.cache.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and stdout.strip()
    assert stderr.decode() == ""


def test_accounting_records_tokens_latency_cost(fake: FakeOpenAI, tmp_path: Path) -> None:
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.price_prompt_per_1m": 1000, "llm.price_completion_per_1m": 2000}))
    gateway.complete(MESSAGES)
    gateway.complete(MESSAGES)
    first, second = gateway.ledger.records
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    assert first.cost_usd == pytest.approx((first.prompt_tokens * 1000 + first.completion_tokens * 2000) / 1e6)
    assert not first.cache_hit and second.cache_hit and second.cost_usd == 0
    totals = gateway.ledger.totals()
    assert totals["calls"] == 1 and totals["cache_hits"] == 1


def test_embeddings_are_cached_per_text(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    first = gateway.embed(["red apples", "green pears"])
    second = gateway.embed(["green pears", "red apples", "blue plums"])
    assert second[0] == first[1] and second[1] == first[0]
    assert fake.embedding_calls == 2
    assert len(fake.requests) == 0


def test_api_key_reaches_no_file(fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-DO-NOT-LEAK-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.max_concurrency": 3}))
    gateway.structured(MESSAGES, Opinion)
    gateway.embed(["hello"])
    fake.fail_next(1, status=401, body={"error": {"message": f"Incorrect API key provided: {secret}", "type": "invalid_request_error", "code": "invalid_api_key"}})
    with pytest.raises(LLMAuthError) as info:
        gateway.complete([{"role": "user", "content": "another"}])
    assert secret not in str(info.value)
    assert fake.headers[0]["authorization"] == f"Bearer {secret}"  # it was really sent
    assert secret not in json.dumps([r.model_dump() for r in gateway.ledger.records])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    from troupe.config import load_config

    gateway = LLMGateway(load_config({"llm.api_type": "openai", "cache.dir": str(tmp_path)}, cwd=tmp_path, environ={}))
    with pytest.raises(LLMAuthError, match="OPENAI_API_KEY"):
        gateway.complete(MESSAGES)


@pytest.mark.parametrize("api_type", ["openai", "azure"])
def test_requests_are_those_the_clients_create_sends(
    fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_type: str
) -> None:
    """The gateway posts chat bodies itself (skipping create()'s transform): same path, JSON and auth as create()."""
    import openai

    monkeypatch.setenv("OPENAI_API_KEY", "sk-same")
    monkeypatch.setenv("AZURE_OPENAI_KEY", "sk-same")
    overrides = {"llm.api_type": api_type, "llm.structured_output": "json_schema"}
    if api_type == "azure":
        overrides["llm.base_url"] = fake.origin
    gateway = LLMGateway(fake_config(fake, tmp_path, **overrides))
    gateway.structured(MESSAGES, Opinion, temperature=0.3)
    sent, sent_headers = fake.requests[0], fake.headers[0]
    fake.reset()
    timeout_s = gateway.config.llm.timeout_s
    if api_type == "azure":
        client: openai.OpenAI = openai.AzureOpenAI(
            azure_endpoint=fake.origin, api_key="sk-same", api_version=gateway.config.llm.api_version, max_retries=0, timeout=timeout_s
        )
    else:
        client = openai.OpenAI(base_url=fake.url, api_key="sk-same", max_retries=0, timeout=timeout_s)
    client.chat.completions.create(**sent)
    assert fake.requests[0] == sent
    names = {"authorization", "api-key", "content-type", "content-length", "x-stainless-read-timeout"}
    assert {k: v for k, v in sent_headers.items() if k in names} == {k: v for k, v in fake.headers[0].items() if k in names}

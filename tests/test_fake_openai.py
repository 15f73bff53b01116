"""The fake OpenAI server, driven by the real ``openai`` client over real sockets.

Every LLM test in the project relies on this double, so its answers must be what the real client
accepts (shapes, errors, headers) and its structured replies must validate against the schema.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import time
from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from typing import Any, Literal, cast

import openai
import pytest
from pydantic import BaseModel, Field, ValidationError

from tests.fake_openai import ERROR_TEXT_CONTENT, INVALID_CONTENT, MALFORMED_CONTENT, FakeOpenAI


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def client(server: FakeOpenAI, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=kwargs.pop("max_retries", 0), **kwargs)


def async_client(server: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url, api_key="sk-test", max_retries=0)


def ask(server: FakeOpenAI, text: str = "Hello there", **params: Any) -> Any:
    return client(server).chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": text}], **params
    )


def json_schema_format(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": model.model_json_schema(), "strict": False},
    }


class Mood(str, Enum):
    CALM = "calm"
    ANGRY = "angry"


class Action(BaseModel):
    type: Literal["TALK", "THINK", "DONE"]
    content: str = Field(max_length=12)
    target: str | None = None


class Memory(BaseModel):
    text: str = Field(min_length=30, max_length=40)
    importance: int = Field(ge=3, le=5)
    weight: float = Field(gt=0, lt=1)


class Turn(BaseModel):
    mood: Mood
    actions: list[Action] = Field(min_length=2, max_length=3)
    memory: Memory
    extra: Action | Memory
    scores: dict[str, int]
    when: datetime
    done: bool
    pair: tuple[int, str]


def test_json_schema_reply_validates_for_many_prompts(server: FakeOpenAI) -> None:
    schema = Turn.model_json_schema()
    assert "$defs" in schema and "anyOf" in json.dumps(schema)
    branches = set()
    for index in range(12):  # different hashes exercise different anyOf branches and enum values
        reply = ask(server, f"prompt number {index}", response_format=json_schema_format(Turn))
        turn = Turn.model_validate_json(reply.choices[0].message.content)
        assert 2 <= len(turn.actions) <= 3
        assert all(len(action.content) <= 12 for action in turn.actions)
        assert turn.actions[0].target is not None  # optional properties are filled too
        branches.add(type(turn.extra))
    assert branches == {Action, Memory}
    body = server.requests[0]
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_parse_helper_accepts_the_reply(server: FakeOpenAI) -> None:
    class Verdict(BaseModel):
        guilty: bool
        reason: str = Field(max_length=20)

    parsed = client(server).chat.completions.parse(
        model="test-model", messages=[{"role": "user", "content": "Judge."}], response_format=Verdict
    )
    assert isinstance(parsed.choices[0].message.parsed, Verdict)


def test_plain_text_and_json_object_defaults(server: FakeOpenAI) -> None:
    text = ask(server, "What is the weather like today in Lisbon?").choices[0].message.content
    assert text.startswith("Fake reply ") and text.endswith("What is the weather like today in Lisbon")
    answer = json.loads(ask(server, response_format={"type": "json_object"}).choices[0].message.content)
    assert set(answer) == {"answer"} and isinstance(answer["answer"], str)


def test_same_request_same_answer(server: FakeOpenAI) -> None:
    fmt = json_schema_format(Turn)
    first, second = (ask(server, "Same words", response_format=fmt).choices[0].message.content for _ in range(2))
    assert first == second
    assert ask(server, "Other words", response_format=fmt).choices[0].message.content != first


def test_json_schema_unsupported_mode() -> None:
    with FakeOpenAI(json_schema_supported=False) as server:
        server.invalid_next()
        with pytest.raises(openai.InternalServerError):
            ask(server, response_format=json_schema_format(Memory))
        # The rejected request did not reach the model, so the queued fault is still there.
        fallback = {"type": "json_object", "schema": Memory.model_json_schema()}
        assert ask(server, response_format=fallback).choices[0].message.content == INVALID_CONTENT
        Memory.model_validate_json(ask(server, response_format=fallback).choices[0].message.content)
        assert json.loads(ask(server, response_format={"type": "json_object"}).choices[0].message.content)
        assert server.calls == 4


def test_rate_limit_with_retry_after(server: FakeOpenAI) -> None:
    server.fail_next(status=429, retry_after=0.05)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(server)
    assert caught.value.response.headers["retry-after"] == "0.05"
    assert caught.value.body["code"] == "rate_limit_exceeded"

    server.fail_next(2, status=503, retry_after=0.05)
    started = time.monotonic()
    reply = client(server, max_retries=2).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "retry me"}]
    )
    assert reply.choices[0].message.content.startswith("Fake reply")
    assert time.monotonic() - started >= 0.1  # the client honoured Retry-After twice
    assert server.calls == 4


def test_custom_error_body(server: FakeOpenAI) -> None:
    server.fail_next(status=400, body={"error": {"message": "context too long", "type": "x", "code": "too_long"}})
    with pytest.raises(openai.BadRequestError, match="context too long"):
        ask(server)


def test_refusal(server: FakeOpenAI) -> None:
    server.refuse_next()
    choice = ask(server).choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.content is None and choice.message.refusal


def test_truncate_cuts_the_normal_answer(server: FakeOpenAI) -> None:
    fmt = json_schema_format(Turn)
    server.truncate_next()
    cut = ask(server, "cut me", response_format=fmt).choices[0]
    full = ask(server, "cut me", response_format=fmt).choices[0].message.content
    assert cut.finish_reason == "length"
    assert full.startswith(cut.message.content) and len(cut.message.content) < len(full)
    with pytest.raises(ValueError):
        json.loads(cut.message.content)


def test_malformed_invalid_and_error_text(server: FakeOpenAI) -> None:
    fmt = json_schema_format(Memory)
    server.malformed_next()
    server.invalid_next()
    server.error_text_next()
    malformed, invalid, error_text = (ask(server, response_format=fmt).choices[0] for _ in range(3))
    assert malformed.message.content == MALFORMED_CONTENT
    with pytest.raises(ValueError):
        json.loads(malformed.message.content)
    with pytest.raises(ValidationError):
        Memory.model_validate_json(invalid.message.content)
    assert (error_text.message.content, error_text.finish_reason) == (ERROR_TEXT_CONTENT, "stop")
    Memory.model_validate_json(ask(server, response_format=fmt).choices[0].message.content)


def test_slow_answer_triggers_client_timeout(server: FakeOpenAI) -> None:
    server.slow_next(seconds=2.0)
    with pytest.raises(openai.APITimeoutError):
        client(server, timeout=0.2).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert ask(server).choices[0].message.content


async def burst(server: FakeOpenAI, count: int) -> None:
    """Send ``count`` chat requests at once from one async client."""
    async with async_client(server) as fake_client:
        messages = [{"role": "user", "content": "at once"}]
        await asyncio.gather(*(fake_client.chat.completions.create(model="m", messages=messages) for _ in range(count)))


def test_peak_concurrency_counts_client_requests_in_flight(server: FakeOpenAI) -> None:
    server.latency_s = 0.2
    asyncio.run(burst(server, 10))
    assert server.peak_concurrency == 10
    server.reset()
    server.latency_s = 0.3
    asyncio.run(burst(server, 64))
    assert (server.calls, server.peak_concurrency) == (64, 64)


def test_slots_limit_requests_being_processed() -> None:
    with FakeOpenAI(latency_s=0.1, slots=2) as server:
        started = time.monotonic()
        asyncio.run(burst(server, 6))
        assert time.monotonic() - started >= 0.3  # three rounds of two
        assert (server.peak_active, server.peak_concurrency) == (2, 6)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_similarity(server: FakeOpenAI) -> None:
    texts = ["the cat sat on the mat", "a cat on a mat", "stock markets fell sharply"]
    reply = client(server).embeddings.create(model="embed", input=texts)
    cat, cat2, markets = (item.embedding for item in reply.data)
    assert len(cat) == 64 and math.isclose(cosine(cat, cat), 1.0, abs_tol=1e-6)
    assert cosine(cat, cat2) > cosine(cat, markets)
    assert reply.usage.total_tokens > 0
    # openai-python 1.x asks for base64 by default; both encodings carry the same vector.
    encoded = client(server).embeddings.create(model="embed", input=texts[0], encoding_format="base64")
    raw = base64.b64decode(cast(str, encoded.data[0].embedding))
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(decoded, cat, strict=True))
    assert server.embedding_calls == 2 and server.calls == 0


def test_azure_client(server: FakeOpenAI) -> None:
    azure = openai.AzureOpenAI(azure_endpoint=server.origin, api_key="k", api_version="2024-10-21", max_retries=0)
    reply = azure.chat.completions.create(model="my-deployment", messages=[{"role": "user", "content": "hi"}])
    assert reply.model == "my-deployment" and reply.choices[0].message.content
    assert server.headers[0]["api-key"] == "k"
    assert len(azure.embeddings.create(model="my-embeddings", input="hello").data[0].embedding) == 64


def test_responder_overrides_and_falls_back(server: FakeOpenAI) -> None:
    seen: list[str] = []

    def responder(body: dict[str, Any]) -> str | dict[str, Any] | None:
        seen.append(body["messages"][-1]["content"])
        return {"echo": seen[-1]} if seen[-1] == "json" else "plain" if seen[-1] == "text" else None

    server.responder = responder
    assert json.loads(ask(server, "json").choices[0].message.content) == {"echo": "json"}
    assert ask(server, "text").choices[0].message.content == "plain"
    assert ask(server, "other").choices[0].message.content.startswith("Fake reply")
    server.responder = lambda body: 1 / 0
    with pytest.raises(openai.InternalServerError, match="ZeroDivisionError"):
        ask(server)


def test_records_and_reset(server: FakeOpenAI) -> None:
    ask(server, "first", seed=7)
    ask(server, "second")
    assert server.peak_concurrency == 1  # sequential requests never overlap
    assert server.requests[0]["seed"] == 7 and server.requests[0]["model"] == "test-model"
    assert server.headers[0]["authorization"] == "Bearer sk-test"
    server.fail_next(3)
    server.latency_s = 5.0
    server.responder = lambda body: "custom"
    server.reset()
    assert (server.calls, server.peak_concurrency, server.requests, server.headers) == (0, 0, [], [])
    assert server.latency_s == 0.0
    assert ask(server, "after reset").choices[0].message.content.startswith("Fake reply")


def test_models_and_unknown_paths(server: FakeOpenAI) -> None:
    assert [model.id for model in client(server).models.list()] == ["fake-model"]
    with pytest.raises(openai.NotFoundError):
        client(server).completions.create(model="m", prompt="legacy endpoint")
    with pytest.raises(openai.BadRequestError):
        ask(server, stream=True)


def test_stop_closes_kept_alive_connections() -> None:
    server = FakeOpenAI().start()
    fake_client = client(server)
    assert ask(server).choices[0].message.content
    fake_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "keep alive"}])
    server.stop()
    with pytest.raises(openai.APIConnectionError):
        fake_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "gone"}])

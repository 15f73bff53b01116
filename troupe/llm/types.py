"""The data that crosses the gateway boundary: requests, raw responses and call records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, str]


class ChatRequest(BaseModel):
    """Everything that determines a reply, and so the cache key. No endpoint, no secret."""

    model_config = ConfigDict(frozen=True)

    model: str
    messages: list[Message]
    response_schema: dict[str, Any] | None = None
    schema_name: str | None = None
    temperature: float
    max_tokens: int
    seed: int
    sample: int = 0


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class RawResponse(BaseModel):
    """What the call cache stores: the reply before any parsing, so a parser change costs no call."""

    text: str
    finish_reason: str
    usage: Usage = Field(default_factory=Usage)
    model: str = ""


class CallRecord(BaseModel):
    """One row of the ``llm_calls`` dataset: accounting for one gateway call (never a secret)."""

    key: str
    model: str
    purpose: str = ""
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    cache_hit: bool
    finish_reason: str
    attempts: int
    # With [datasets] store_prompts: the exact request messages (JSON text) and the reply's text.
    messages: str | None = None
    completion: str | None = None

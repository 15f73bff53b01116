"""The extraction call: one structured LLM call turns a record of events into typed fields.

Everything that extracts (a scenario's extraction stage, ``ResultsExtractor`` in a notebook) goes
through :func:`aextract_values`, so trimming, prompts and validation are the same everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .. import prompts
from .fields import ExtractionSpec, FieldSpec, ListItem, fields_model
from .history import focus_text, trim

if TYPE_CHECKING:
    from ..agent.state import Event
    from ..environment import TinyWorld
    from ..llm import LLMGateway

DEFAULT_HISTORY_TOKENS = ExtractionSpec.model_fields["history_tokens"].default


class ExtractedRecord(BaseModel):
    world: str
    agent: str
    values: dict[str, Any]
    call_key: str


class _NamedValue(BaseModel):
    name: str = Field(max_length=60)
    value: ListItem


class OpenExtraction(BaseModel):
    """The reply when no fields are given: the model names them (TinyTroupe's ``fields=None``)."""

    fields: list[_NamedValue] = Field(min_length=1, max_length=12)


def messages_for(
    objective: str,
    subject: str,
    events: Sequence["Event"],
    fields: dict[str, FieldSpec],
    *,
    situation: str = "",
    history_tokens: int | None = DEFAULT_HISTORY_TOKENS,
) -> list[dict[str, str]]:
    """The extraction prompt; history_tokens=None shows the whole record (what the bench compares with)."""
    field_texts = [f"{name} {spec.description} {' '.join(spec.options or ())}" for name, spec in fields.items()]
    if history_tokens is None:
        shown, omitted = list(events), 0
    else:
        trimmed = trim(events, subject, focus_text(objective, situation, field_texts), history_tokens)
        shown, omitted = trimmed.events, trimmed.omitted
    user = prompts.render(
        "extract", objective=objective, subject=subject, situation=situation, fields=fields, events=shown, omitted=omitted
    )
    return [{"role": "system", "content": prompts.render("extract_system")}, {"role": "user", "content": user}]


async def aextract_values(
    gateway: "LLMGateway",
    objective: str,
    subject: str,
    events: Sequence["Event"],
    fields: dict[str, FieldSpec] | None,
    *,
    situation: str = "",
    history_tokens: int | None = DEFAULT_HISTORY_TOKENS,
    purpose: str = "",
) -> tuple[dict[str, Any], str]:
    """The extracted values (a dict, fields in order) and the call's cache key."""
    messages = messages_for(objective, subject, events, fields or {}, situation=situation, history_tokens=history_tokens)
    purpose = purpose or f"extract:{subject}"
    if fields:
        reply = await gateway.astructured(messages, fields_model(fields), purpose=purpose)
        return reply.value.model_dump(), reply.key
    open_reply = await gateway.astructured(messages, OpenExtraction, purpose=purpose)
    return {item.name: item.value for item in open_reply.value.fields}, open_reply.key


async def aextract(world: "TinyWorld", spec: ExtractionSpec, gateway: "LLMGateway") -> list[ExtractedRecord]:
    """One record per agent (or one for the world), extracted concurrently through the gateway."""
    if spec.per == "world":
        subjects: list[tuple[str, list[Event]]] = [("", list(world.state.events))]
    else:
        subjects = [(agent.name, list(agent.state.episodes)) for agent in world.agents]

    async def one(subject: str, events: list["Event"]) -> ExtractedRecord:
        values, key = await aextract_values(
            gateway, spec.objective, subject, events, spec.fields, situation=spec.situation,
            history_tokens=spec.history_tokens, purpose=f"extract:{subject or world.name}",
        )
        return ExtractedRecord(world=world.name, agent=subject, values=values, call_key=key)

    return list(await asyncio.gather(*(one(subject, events) for subject, events in subjects)))

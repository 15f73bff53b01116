"""Results extraction: turn what agents said and did into typed records (TinyTroupe's ResultsExtractor).

An extraction names an objective and its fields; one LLM call per agent (or per world) reads the
record of the simulation and returns the fields, validated against a pydantic model built from
the spec, with every free-text field bounded.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from . import prompts

if TYPE_CHECKING:
    from .agent.state import Event
    from .environment import TinyWorld
    from .llm import LLMGateway

FieldType = Literal["str", "int", "float", "bool", "list[str]"]
_PYTHON: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "list[str]": list[str]}
TEXT_MAX = 400
ListItem = Annotated[str, Field(max_length=120)]


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: FieldType = "str"
    description: str = ""


class ExtractionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objective: str = Field(min_length=1)
    per: Literal["agent", "world"] = "agent"
    fields: dict[str, FieldSpec] = Field(min_length=1)

    def schema_model(self) -> type[BaseModel]:
        return _schema_model(tuple((name, spec.type, spec.description) for name, spec in self.fields.items()))


@lru_cache(maxsize=64)
def _schema_model(fields: tuple[tuple[str, str, str], ...]) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for name, kind, description in fields:
        if kind == "str":
            definitions[name] = (str, Field(max_length=TEXT_MAX, description=description))
        elif kind == "list[str]":
            definitions[name] = (list[ListItem], Field(max_length=8, description=description))
        else:
            definitions[name] = (_PYTHON[kind], Field(description=description))
    return create_model("Extraction", **definitions)


class ExtractedRecord(BaseModel):
    world: str
    agent: str
    values: dict[str, Any]
    call_key: str


async def aextract(world: "TinyWorld", spec: ExtractionSpec, gateway: "LLMGateway") -> list[ExtractedRecord]:
    """One record per agent (or one for the world), extracted concurrently through the gateway."""
    model = spec.schema_model()
    if spec.per == "world":
        subjects: list[tuple[str, list[Event]]] = [("", list(world.state.events))]
    else:
        subjects = [(agent.name, list(agent.state.episodes)) for agent in world.agents]

    async def one(subject: str, events: list["Event"]) -> ExtractedRecord:
        messages = [
            {"role": "system", "content": prompts.render("extract_system")},
            {
                "role": "user",
                "content": prompts.render(
                    "extract", objective=spec.objective, subject=subject, fields=spec.fields, events=events
                ),
            },
        ]
        reply = await gateway.astructured(messages, model, purpose=f"extract:{subject or world.name}")
        return ExtractedRecord(world=world.name, agent=subject, values=reply.value.model_dump(), call_key=reply.key)

    return list(await asyncio.gather(*(one(subject, events) for subject, events in subjects)))

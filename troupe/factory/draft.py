"""The reply schema of a persona generation call, and its conversion to a TinyTroupe persona.

The schema names every field TinyTroupe's personas use, all required and bounded, so it works in
OpenAI's strict mode and a small model cannot ramble; the result is a plain persona dict that
:class:`troupe.Persona` validates.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

Line = Annotated[str, Field(max_length=240)]
Lines = Annotated[list[Line], Field(max_length=6)]
Short = Annotated[str, Field(max_length=160)]
Text = Annotated[str, Field(max_length=600)]
# A person's name: words of letters (any script) joined by spaces, hyphens, apostrophes or a period,
# at most six of them. A small model sometimes puts a fragment of JSON or prose there instead.
_NAME = re.compile(r"[^\W\d_]+\.?(?:(?: |-|'|’|\. ?)[^\W\d_]+\.?){0,5}")


class BigFive(BaseModel):
    openness: Short
    conscientiousness: Short
    extraversion: Short
    agreeableness: Short
    neuroticism: Short


class OccupationDraft(BaseModel):
    title: Short
    organization: Short
    description: Text


class PersonalityDraft(BaseModel):
    traits: Lines
    big_five: BigFive


class PreferencesDraft(BaseModel):
    interests: Lines
    likes: Lines
    dislikes: Lines


class RoutinesDraft(BaseModel):
    morning: Lines
    workday: Lines
    evening: Lines


class BehaviorsDraft(BaseModel):
    general: Lines
    routines: RoutinesDraft


class RelationshipDraft(BaseModel):
    name: Short
    description: Short


class PersonaDraft(BaseModel):
    """One person as the LLM writes them (TinyTroupe's persona fields)."""

    name: Annotated[str, Field(min_length=2, max_length=80)]
    age: Annotated[int, Field(ge=0, le=120)]
    gender: Short
    nationality: Short
    residence: Short
    education: Text
    occupation: OccupationDraft
    long_term_goals: Lines
    style: Text
    personality: PersonalityDraft
    preferences: PreferencesDraft
    skills: Lines
    beliefs: Lines
    behaviors: BehaviorsDraft
    health: Short
    relationships: Annotated[list[RelationshipDraft], Field(max_length=5)]
    other_facts: Lines

    @field_validator("name")
    @classmethod
    def _a_name(cls, name: str) -> str:
        if not _NAME.fullmatch(name.strip()):
            raise ValueError(f"{name[:40]!r} is not a person's name; write a first and last name, e.g. 'Maria Lopez'")
        return name

    def persona(self) -> dict[str, Any]:
        """The persona dict in TinyTroupe's format (empty strings and lists left out)."""
        return _prune(self.model_dump(mode="json")) | {"name": self.name.strip()}


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in ("", [], {}, None)}
    if isinstance(value, list):
        return [item for item in (_prune(v) for v in value) if item not in ("", [], {}, None)]
    if isinstance(value, str):
        return value.strip()
    return value

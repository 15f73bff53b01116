"""Writing a population's people with the LLM, around attributes sampled in code.

Each person is one structured call (:class:`PersonaDraft`), concurrent through the gateway. A
draft that contradicts its sampled attributes is rewritten with the contradictions pointed out,
a bounded number of times. Then diversity rounds: a later person who repeats an earlier one's
name, or nearly repeats a whole person, is rewritten with the names to avoid or the person to
differ from in the prompt. Every prompt is deterministic in its inputs, so a rerun is served
from the call cache, and shards of one population can be written apart and joined with
:func:`adiversify`.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import BaseModel, Field

from .. import prompts
from ..agent.persona import Persona
from ..errors import SpecError
from ..llm.errors import LLMStructuredOutputError
from ..population import PopulationSpec, SampledPerson
from . import check, diversity
from .draft import PersonaDraft

if TYPE_CHECKING:
    from ..llm import LLMGateway

Flag = Literal["conflict", "duplicate-name", "near-duplicate", "renamed"]


class GeneratedPersona(BaseModel):
    """One generated person: the persona, what was sampled for it, and how it came about."""

    index: int
    persona: dict[str, Any]
    sampled: dict[str, int | str] = Field(default_factory=dict, description="the values the persona must hold")
    categories: dict[str, str] = Field(default_factory=dict, description="the category per dimension (bands as 'lo-hi')")
    conflicts: dict[str, str] = Field(default_factory=dict, description="attributes still contradicted after the last draft")
    flags: list[Flag] = Field(default_factory=list, description="why the person was rewritten, once per reason")
    drafts: int = 1
    call_key: str = ""

    @property
    def name(self) -> str:
        return str(self.persona.get("name", ""))

    def sampled_json(self) -> str:
        """The sampled values as JSON object text (the ``sampled`` column of the personas dataset)."""
        return json.dumps(self.sampled, ensure_ascii=False, sort_keys=True)

    def sampled_person(self) -> SampledPerson:
        return SampledPerson(index=self.index, categories=self.categories, values=self.sampled)


PERSONA_MAX_TOKENS = 2048


class GenerationSettings(BaseModel):
    """How people are written; part of every prompt or bound, so part of what makes a run."""

    context: str = ""
    particularities: str | None = None
    total: int | None = Field(default=None, description="population size, shown to the LLM as 'person i of N'")
    max_attempts: int = Field(default=3, ge=1, le=10, description="drafts per person to meet its attributes")
    max_rounds: int = Field(default=3, ge=0, le=10, description="diversity rounds (names, near-duplicates)")
    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1, description="estimated Jaccard similarity")
    temperature: float | None = None

    @classmethod
    def for_spec(cls, spec: PopulationSpec, size: int, **overrides: Any) -> "GenerationSettings":
        values: dict[str, Any] = {"context": spec.context, "total": size}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class Hints(BaseModel):
    """What a rewrite must avoid: names taken, people it came out too close to."""

    avoid_names: list[str] = Field(default_factory=list)
    differ_from: list[str] = Field(default_factory=list)


def _messages(person: SampledPerson, settings: GenerationSettings, hints: Hints, conflicts: Sequence[str]) -> list[dict[str, str]]:
    fields = {dim: check.field_for(dim, value) for dim, value in person.values.items()}
    user = prompts.render(
        "persona_generate",
        context=settings.context,
        number=person.index + 1,
        total=settings.total,
        particularities=settings.particularities,
        attributes=person.values,
        fields=fields,
        avoid_names=hints.avoid_names,
        differ_from=hints.differ_from,
        conflicts=list(conflicts),
    )
    return [{"role": "system", "content": prompts.render("persona_generate_system")}, {"role": "user", "content": user}]


async def agenerate_person(
    person: SampledPerson, gateway: "LLMGateway", settings: GenerationSettings, hints: Hints | None = None
) -> GeneratedPersona:
    """One person written around its sampled attributes, rewritten while it contradicts them."""
    hints = hints or Hints()
    params: dict[str, Any] = {} if settings.temperature is None else {"temperature": settings.temperature}
    # A whole persona is longer than an agent's turn: [llm] max_tokens (512 by default, sized for
    # turns) cut SmolLM2's drafts off. Drafts get at least PERSONA_MAX_TOKENS, more if configured.
    params["max_tokens"] = max(gateway.config.llm.max_tokens, PERSONA_MAX_TOKENS)
    problems: dict[str, str] = {}
    failure: LLMStructuredOutputError | None = None
    persona: dict[str, Any] | None = None
    key = ""
    drafts = 0
    for _ in range(settings.max_attempts):
        drafts += 1
        messages = _messages(person, settings, hints, list(problems.values()))
        try:
            reply = await gateway.astructured(messages, PersonaDraft, purpose=f"persona:{person.index}", **params)
        except LLMStructuredOutputError as exc:
            failure = exc
            continue
        persona, key = reply.value.persona(), reply.key
        problems = check.conflicts(persona, person.values)
        if not problems:
            break
    if persona is None:
        assert failure is not None
        raise failure
    return GeneratedPersona(
        index=person.index,
        persona=persona,
        sampled=person.values,
        categories=person.categories,
        conflicts=problems,
        flags=["conflict"] if drafts > 1 else [],
        drafts=drafts,
        call_key=key,
    )


def _minibio(persona: dict[str, Any]) -> str:
    try:
        return Persona.from_dict(persona).minibio_facts()
    except SpecError:  # a bio is only a hint for the rewrite: fall back to the outline
        return diversity.persona_text(persona)[:300]


async def adiversify(
    rows: Sequence[GeneratedPersona],
    gateway: "LLMGateway",
    settings: GenerationSettings,
    existing: Sequence[GeneratedPersona] = (),
) -> list[GeneratedPersona]:
    """rows with repeated names and near-duplicate people rewritten (existing people are kept as they are).

    Runs up to ``settings.max_rounds`` rounds. A name still repeated after them is numbered ("John",
    "John 2") and the row flagged ``renamed``: names must be unique, and a small model that keeps
    writing one name should not throw the population away. A near-duplicate left is only reported.
    """
    rows = list(rows)
    hints: dict[int, Hints] = {}
    offset = len(existing)
    for round_ in range(settings.max_rounds + 1):
        everyone = [*existing, *rows]
        names = diversity.duplicate_names([r.name for r in everyone])
        near = diversity.near_duplicates([diversity.persona_text(r.persona) for r in everyone], settings.near_duplicate_threshold)
        redo: dict[int, set[str]] = {}
        for position, first in names.items():
            if position >= offset:
                hint = hints.setdefault(position - offset, Hints())
                if everyone[position].name not in hint.avoid_names:
                    hint.avoid_names.append(everyone[position].name)
                redo.setdefault(position - offset, set()).add("duplicate-name")
        for position, first in near.items():
            if position >= offset:
                hint = hints.setdefault(position - offset, Hints())
                hint.differ_from.append(_minibio(everyone[first].persona))
                redo.setdefault(position - offset, set()).add("near-duplicate")
        if not redo:
            break
        if round_ == settings.max_rounds:
            return _numbered(rows, existing)

        async def rewrite(position: int, reasons: set[str]) -> None:
            old = rows[position]
            new = await agenerate_person(old.sampled_person(), gateway, settings, hints[position])
            flags = list(dict.fromkeys([*old.flags, *sorted(reasons), *new.flags]))  # type: ignore[list-item]
            rows[position] = new.model_copy(update={"flags": flags, "drafts": old.drafts + new.drafts})

        await asyncio.gather(*(rewrite(position, reasons) for position, reasons in redo.items()))
    return rows


def _numbered(rows: list[GeneratedPersona], existing: Sequence[GeneratedPersona]) -> list[GeneratedPersona]:
    """rows with each name that is already taken numbered ("John 2", "John 3"), flagged ``renamed``."""
    taken = {r.name for r in existing}
    numbered = []
    for row in rows:
        name, number = row.name, 1
        while name in taken:
            number += 1
            name = f"{row.name} {number}"
        taken.add(name)
        if name != row.name:
            flags = list(dict.fromkeys([*row.flags, "renamed"]))
            row = row.model_copy(update={"persona": {**row.persona, "name": name}, "flags": flags})
        numbered.append(row)
    return numbered


async def agenerate_shard(
    people: Sequence[SampledPerson],
    gateway: "LLMGateway",
    settings: GenerationSettings,
    existing: Sequence[GeneratedPersona] = (),
) -> list[GeneratedPersona]:
    """A shard of a population: its people written concurrently, then made diverse within the shard
    (and against ``existing`` people, who are not rewritten)."""
    rows = await asyncio.gather(*(agenerate_person(person, gateway, settings) for person in people))
    return await adiversify(rows, gateway, settings, existing)


async def agenerate_population(
    spec: PopulationSpec, size: int, seed: int, gateway: "LLMGateway", **settings: Any
) -> list[GeneratedPersona]:
    """A whole population in one go: sampled in code, written, made diverse (settings: see GenerationSettings)."""
    from ..population import sample_population

    people = sample_population(spec, size, seed)
    return await agenerate_shard(people, gateway, GenerationSettings.for_spec(spec, size, **settings))

"""Scenario files: a whole simulation study in one YAML file, validated before any LLM call.

A scenario names its personas (example builders, TinyTroupe files with fragments, or inline specs),
the worlds they live in, the stimuli given at each step, what to extract from the result and how
to reduce it. :func:`load_scenario` reads and checks it all, and resolves the personas, so a bad
file stops with one line naming the file, the field and the fix, and nothing runs half-way.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .agent.persona import Persona, load_spec_file
from .cache import cache_key
from .config import load_config
from .errors import ConfigError, SpecError
from .examples import example_path
from .extraction import ExtractionSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonaEntry(_Strict):
    """One persona: exactly one of builder, file or persona; fragments merge on top; name renames."""

    builder: Literal["lisa", "oscar", "marcos", "lila"] | None = None
    file: str | None = None
    persona: dict[str, Any] | None = None
    fragments: list[str] = Field(default_factory=list)
    name: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "PersonaEntry":
        given = [k for k in ("builder", "file", "persona") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of builder, file or persona")
        return self


StimulusKind = Literal["broadcast", "listen", "see", "think", "goal", "context"]


class Stimulus(_Strict):
    """Given to agents at the start of a step, before they act."""

    step: int = Field(ge=1)
    kind: StimulusKind = "broadcast"
    content: str = Field(min_length=1)
    to: list[str] = Field(default_factory=list, description="agent names; empty = every agent in the world")
    source: str | None = None


_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class WorldSpec(_Strict):
    name: str = Field(min_length=1)
    kind: Literal["TinyWorld", "TinySocialNetwork"] = "TinyWorld"
    agents: list[str] = Field(default_factory=list, description="persona names; empty = all personas")
    steps: int = Field(ge=1, le=10_000)
    time_per_step: str | None = Field(default=None, description="e.g. 30m, 1h, 1d")
    start: datetime | None = None
    step_mode: Literal["parallel", "sequential"] | None = None
    everyone_accessible: bool = True
    relations: list[tuple[str, str]] = Field(default_factory=list)
    stimuli: list[Stimulus] = Field(default_factory=list)

    @field_validator("time_per_step")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _DURATION.match(value):
            raise ValueError("expected a duration such as 30s, 15m, 1h or 1d")
        return value

    def step_delta(self) -> timedelta | None:
        if self.time_per_step is None:
            return None
        amount, unit = _DURATION.match(self.time_per_step).groups()  # type: ignore[union-attr]
        return timedelta(**{_UNITS[unit]: int(amount)})

    # Field validators (not one model validator), so an error names the field: worlds[0].stimuli.
    @field_validator("relations")
    @classmethod
    def _need_network(cls, relations: list[tuple[str, str]], info: ValidationInfo) -> list[tuple[str, str]]:
        if relations and info.data.get("kind", "TinySocialNetwork") != "TinySocialNetwork":
            raise ValueError("relations need kind: TinySocialNetwork")
        return relations

    @field_validator("stimuli")
    @classmethod
    def _within_steps(cls, stimuli: list[Stimulus], info: ValidationInfo) -> list[Stimulus]:
        steps = info.data.get("steps")
        for i, stimulus in enumerate(stimuli):
            if steps is not None and stimulus.step > steps:
                raise ValueError(
                    f"stimuli[{i}] is at step {stimulus.step}, past the world's {steps} steps; "
                    "raise steps or move the stimulus"
                )
        return stimuli


class Reduction(_Strict):
    """A named SQL query (DuckDB) over this run's personas, events and extractions."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    sql: str = Field(min_length=1)

    @field_validator("sql")
    @classmethod
    def _reads_only(cls, sql: str) -> str:
        from .datasets.query import QueryError, check_read_only

        try:
            check_read_only(sql)
        except QueryError as exc:
            raise ValueError(str(exc).removeprefix("SQL: ")) from None
        return sql


class Scenario(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict, description="section.key overrides, e.g. simulation.seed: 7")
    personas: list[PersonaEntry] = Field(min_length=1)
    worlds: list[WorldSpec] = Field(min_length=1)
    extraction: ExtractionSpec | None = None
    reductions: list[Reduction] = Field(default_factory=list)


class LoadedScenario(BaseModel):
    """A validated scenario with its personas resolved to TinyTroupe persona dicts."""

    path: str
    scenario: Scenario
    personas: list[dict[str, Any]]

    @property
    def digest(self) -> str:
        """Content hash of everything that shapes the run (the scenario and the resolved personas)."""
        return cache_key({"scenario": self.scenario.model_dump(mode="json"), "personas": self.personas})

    def world_agents(self, world: WorldSpec) -> list[dict[str, Any]]:
        names = world.agents or [p["name"] for p in self.personas]
        by_name = {p["name"]: p for p in self.personas}
        return [by_name[name] for name in names]


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _fail(path: Path, field: str, problem: str, fix: str) -> SpecError:
    return SpecError(f"{path}: {field}: {problem}; {fix}")


def _resolve_persona(entry: PersonaEntry, index: int, base: Path, path: Path) -> dict[str, Any]:
    field = f"personas[{index}]"
    try:
        if entry.builder is not None:
            persona = Persona.from_file(example_path("agents", entry.builder.capitalize()))
        elif entry.file is not None:
            file = base / entry.file
            if not file.is_file():
                raise _fail(path, f"{field}.file", f"{entry.file} does not exist", "give a path relative to the scenario file")
            persona = Persona.from_file(file)
        else:
            persona = Persona.from_dict(entry.persona, source=f"{path}: {field}.persona")
        for j, fragment in enumerate(entry.fragments):
            file = base / fragment
            if not file.is_file():
                raise _fail(path, f"{field}.fragments[{j}]", f"{fragment} does not exist", "give a path relative to the scenario file")
            kind, spec = load_spec_file(file)
            if kind != "Fragment":
                raise _fail(path, f"{field}.fragments[{j}]", f"{fragment} is a whole agent, not a fragment", "list it under file instead")
            persona = persona.merged(spec, source=str(file))
        if entry.name:
            persona = persona.defined("name", entry.name)
    except SpecError as exc:
        message = str(exc)
        raise SpecError(message if message.startswith(str(path)) else f"{path}: {field}: {message}") from None
    return persona.to_dict()


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read, validate and resolve a scenario file; every problem is one SpecError line."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such scenario file; check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise _fail(path, where, f"invalid YAML ({getattr(exc, 'problem', exc)})", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise _fail(path, "(top level)", "expected a mapping with name, personas and worlds", "see docs/scenarios.md")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        problem = error["msg"].removeprefix("Value error, ")
        raise _fail(path, _location(error["loc"]), problem, "see docs/scenarios.md for the scenario format") from None

    personas = [_resolve_persona(entry, i, path.parent, path) for i, entry in enumerate(scenario.personas)]
    names = [p["name"] for p in personas]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise _fail(path, f"personas[{i}]", f"two personas are named {name!r}", "give one a different name: field")
    for w, world in enumerate(scenario.worlds):
        for a, agent in enumerate(world.agents):
            if agent not in names:
                raise _fail(path, f"worlds[{w}].agents[{a}]", f"no persona is named {agent!r}", f"use one of: {', '.join(names)}")
        members = world.agents or names
        for r, pair in enumerate(world.relations):
            for name in pair:
                if name not in members:
                    raise _fail(path, f"worlds[{w}].relations[{r}]", f"{name!r} is not in this world", f"use one of: {', '.join(members)}")
        for s, stimulus in enumerate(world.stimuli):
            for name in stimulus.to:
                if name not in members:
                    raise _fail(path, f"worlds[{w}].stimuli[{s}].to", f"{name!r} is not in this world", f"use one of: {', '.join(members)}")
    world_names = [w.name for w in scenario.worlds]
    if len(set(world_names)) != len(world_names):
        raise _fail(path, "worlds", "two worlds share a name", "give every world a unique name")
    _check_overrides(scenario, path)
    return LoadedScenario(path=str(path), scenario=scenario, personas=personas)


def _check_overrides(scenario: Scenario, path: Path) -> None:
    try:
        load_config().with_overrides(scenario.config)
    except ConfigError as exc:
        raise _fail(path, "config", str(exc).replace("argument ", ""), "use section.key names from config.ini") from None

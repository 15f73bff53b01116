"""Scenario files: a whole simulation study in one YAML file, validated before any LLM call.

A scenario names its personas (example builders, TinyTroupe files with fragments, inline specs, or
a ``personas_file`` of thousands of specs in JSONL or Parquet), the worlds they live in, the stimuli given at each step, what to extract from the result and how
to reduce it. :func:`load_scenario` reads and checks it all, and resolves the personas, so a bad
file stops with one line naming the file, the field and the fix, and nothing runs half-way.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

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


class StimulusBody(_Strict):
    """What a stimulus gives and to whom: what a scheduled stimulus and an intervention's effect share."""

    kind: StimulusKind = "broadcast"
    content: str = Field(min_length=1)
    to: list[str] = Field(default_factory=list, description="agent names; empty = every agent in the world")
    source: str | None = None


class Stimulus(StimulusBody):
    """Given to agents at the start of a step, before they act."""

    step: int = Field(ge=1)


class InterventionWhen(_Strict):
    """When an intervention fires: every condition given must hold, checked before the step's turns.

    The deterministic ones are checked first, so the LLM judges ``condition`` only when they hold.
    """

    at_step: int | None = Field(default=None, ge=1, description="only at this step")
    from_step: int | None = Field(default=None, ge=1, description="at this step and every later one")
    mentions: str | None = Field(
        default=None, min_length=1, description="text (case-insensitive) in an event of the previous step or in this step's stimuli"
    )
    condition: str | None = Field(default=None, min_length=1, description="a textual precondition the LLM judges against the recent events")

    @model_validator(mode="after")
    def _some_condition(self) -> "InterventionWhen":
        if self.at_step is not None and self.from_step is not None:
            raise ValueError("give at_step or from_step, not both")
        if self.at_step is None and self.from_step is None and self.mentions is None and self.condition is None:
            raise ValueError("give at least one of at_step, from_step, mentions, condition")
        return self

    def first_step(self) -> int:
        return self.at_step or self.from_step or 1

    def possible_at(self, step: int) -> bool:
        """Whether the step conditions allow firing at step (the others are judged during the step)."""
        return step == self.at_step if self.at_step is not None else step >= (self.from_step or 1)


class InterventionSpec(_Strict):
    """An intervention declared in a scenario: when it fires, and the stimuli it gives then."""

    name: str = Field(min_length=1)
    when: InterventionWhen
    repeat: bool = Field(default=False, description="fire every step the conditions hold; default: once per world")
    effect: list[StimulusBody] = Field(min_length=1, description="stimuli given when it fires: kind, content, to, source as under stimuli")


_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# The C YAML parser when PyYAML was built with libyaml: ~4x faster on a 10,000-person scenario.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def duration(text: str | None) -> timedelta | None:
    """``30m`` as a timedelta (None stays None)."""
    if text is None:
        return None
    amount, unit = _DURATION.match(text).groups()  # type: ignore[union-attr]
    return timedelta(**{_UNITS[unit]: int(amount)})


class WorldSpec(_Strict):
    name: str = Field(min_length=1)
    kind: Literal["TinyWorld", "TinySocialNetwork", "isolated"] = Field(
        default="TinyWorld", description="isolated = one world per person, each on their own (e.g. interviews)"
    )
    agents: list[str] = Field(default_factory=list, description="persona names; empty = all personas")
    faculties: list[str] = Field(default_factory=list, description="registered faculty (tool) names every agent here gets")
    steps: int = Field(ge=1, le=10_000)
    time_per_step: str | None = Field(default=None, description="e.g. 30m, 1h, 1d")
    start: datetime | None = None
    step_mode: Literal["parallel", "sequential"] | None = None
    everyone_accessible: bool = True
    relations: list[tuple[str, str]] = Field(default_factory=list)
    stimuli: list[Stimulus] = Field(default_factory=list)
    interventions: list[InterventionSpec] = Field(default_factory=list, description="stimuli given when conditions hold (docs/scenarios.md)")

    @field_validator("time_per_step")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _DURATION.match(value):
            raise ValueError("expected a duration such as 30s, 15m, 1h or 1d")
        return value

    def step_delta(self) -> timedelta | None:
        return duration(self.time_per_step)

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

    @field_validator("interventions")
    @classmethod
    def _interventions_fit(cls, interventions: list[InterventionSpec], info: ValidationInfo) -> list[InterventionSpec]:
        steps = info.data.get("steps")
        seen: set[str] = set()
        for i, intervention in enumerate(interventions):
            if intervention.name in seen:
                raise ValueError(f"interventions[{i}].name: two interventions are named {intervention.name!r}; give each a unique name")
            seen.add(intervention.name)
            first, field = intervention.when.first_step(), "at_step" if intervention.when.at_step else "from_step"
            if steps is not None and first > steps:
                raise ValueError(
                    f"interventions[{i}].when.{field} is {first}, past the world's {steps} steps; raise steps or lower {field}"
                )
        return interventions


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


class PopulationBlock(_Strict):
    """People written by the persona factory around attributes sampled in code (docs/populations.md).

    ``spec`` is a population spec (a mapping with ``dimensions``) or a TinyTroupe demography
    (anything else: one cached LLM call derives a spec from it), as a file relative to the
    scenario or inline.
    """

    spec: str | dict[str, Any]
    size: int = Field(ge=1, le=1_000_000)
    seed: int = 0
    context: str | None = Field(default=None, description="what these people have in common; default: the spec's context")


class SurveyBlock(_Strict):
    """Typed questions (docs/surveys.md) asked of every persona, or of a world's agents after its steps."""

    questions: list[dict[str, Any]] = Field(min_length=1, description="troupe.survey question dicts, each with a type")
    together: bool = True
    on_invalid: Literal["raise", "skip"] = "raise"
    after: str | None = Field(default=None, description="a world's name: its agents answer after its steps (with their memories)")
    categories: int | None = Field(
        default=None, ge=2, le=50, description="sort each free-text question's answers into at most this many categories (answers.category)"
    )

    def survey(self) -> Any:
        from .survey import Survey

        return Survey(questions=self.questions, together=self.together, on_invalid=self.on_invalid)

    @field_validator("questions")
    @classmethod
    def _as_survey(cls, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # troupe.survey loads the LLM client: imported here, so loading a scenario without a survey stays light.
        from .survey import QuestionType, Survey

        try:
            survey = Survey(questions=questions)  # every question's and the survey's own checks, at load time
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = [p for p in error["loc"][1:] if p not in get_args(QuestionType)]  # drop the union's branch name
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
            raise ValueError(f"{'question' + where + ': ' if where else ''}{error['msg'].removeprefix('Value error, ')}") from None
        return [q.model_dump(mode="json") for q in survey.questions]


class Arm(_Strict):
    """One arm of an experiment: its name, and what its worlds are given besides the world's own stimuli."""

    name: str = Field(description="lower-case letters, digits and _; the datasets' arm column")
    description: str = ""
    stimuli: list[Stimulus] = Field(default_factory=list, description="given in this arm's worlds, after the world's own at the same step")
    replace: bool = Field(default=False, description="at each step this arm gives stimuli, they replace the world's own")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"{name!r}: use lower-case letters, digits and _, starting with a letter (it names files and SQL values)")
        return name

    def stimuli_at(self, step: int, world: list[Stimulus]) -> list[Stimulus]:
        """The stimuli of one step in this arm, from the world's own stimuli of that step."""
        mine = [s for s in self.stimuli if s.step == step]
        return mine if mine and self.replace else [*world, *mine]


class Comparison(_Strict):
    """One outcome compared between the arms after the run: an extraction field or a survey question."""

    field: str | None = Field(default=None, description="an extraction field")
    question: str | None = Field(default=None, description="a survey question id (the survey must follow an experiment world)")
    test: str | None = Field(default=None, description="a StatisticalTester test; default welch_t_test for numbers, chi_square for categories")
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_outcome(self) -> "Comparison":
        if (self.field is None) == (self.question is None):
            raise ValueError("give exactly one of field (an extraction field) or question (a survey question id)")
        return self

    @field_validator("test")
    @classmethod
    def _known_test(cls, test: str | None) -> str | None:
        from .experimentation.statistics import TESTS  # scipy: only for a scenario that names a test

        if test is not None and test not in TESTS:
            raise ValueError(f"{test!r} is not a test; use one of {', '.join(TESTS)}")
        return test

    @property
    def metric(self) -> str:
        return self.field or self.question or ""


class ExperimentBlock(_Strict):
    """Arms over some worlds (docs/scenarios.md, "Experiments"): each world copied per arm (within) or its
    people split between the arms by a seeded draw (between); outcomes compared per arm after the run."""

    arms: list[Arm] = Field(min_length=2, max_length=26)
    assign: Literal["within", "between"] = Field(
        default="within", description="within: everyone in every arm; between: each person in one arm, drawn with seed"
    )
    seed: int = 0
    worlds: list[str] = Field(default_factory=list, description="the worlds the arms apply to; empty = every world")
    control: str | None = Field(default=None, description="the arm the others are compared with; default: the first")
    compare: list[Comparison] = Field(default_factory=list)

    @field_validator("arms")
    @classmethod
    def _unique_arms(cls, arms: list[Arm]) -> list[Arm]:
        seen: set[str] = set()
        for i, arm in enumerate(arms):
            if arm.name in seen:
                raise ValueError(f"arms[{i}].name: two arms are named {arm.name!r}; give each arm a unique name")
            seen.add(arm.name)
        return arms

    @field_validator("control")
    @classmethod
    def _control_is_an_arm(cls, control: str | None, info: ValidationInfo) -> str | None:
        names = [a.name for a in info.data.get("arms") or []]
        if control is not None and names and control not in names:
            raise ValueError(f"no arm is named {control!r}; use one of: {', '.join(names)}")
        return control

    @property
    def control_arm(self) -> str:
        return self.control or self.arms[0].name

    def applies_to(self, world: str) -> bool:
        return not self.worlds or world in self.worlds


class Scenario(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict, description="section.key overrides, e.g. simulation.seed: 7")
    personas: list[PersonaEntry] = Field(default_factory=list)
    personas_file: str | None = Field(default=None, description="JSONL or Parquet of TinyTroupe persona specs, relative to the scenario")
    population: PopulationBlock | None = None
    worlds: list[WorldSpec] = Field(default_factory=list, description="may be empty when a population or survey is the study")
    extraction: ExtractionSpec | None = None
    survey: SurveyBlock | None = None
    reductions: list[Reduction] = Field(default_factory=list)
    experiment: ExperimentBlock | None = Field(default=None, description="arms over worlds and the comparisons between them")


class LoadedScenario(BaseModel):
    """A validated scenario with its personas resolved to TinyTroupe persona dicts."""

    path: str
    scenario: Scenario
    personas: list[dict[str, Any]]
    population_spec: dict[str, Any] | None = Field(default=None, description="the population's spec, validated (a spec file or mapping)")
    demography: dict[str, Any] | None = Field(default=None, description="a free-form demography a spec is derived from at run time")
    _models: list[Persona] = PrivateAttr(default_factory=list)

    def persona_models(self) -> dict[str, Persona]:
        """The personas as the models they were validated into at load time, by name (no second validation)."""
        models = self._models if len(self._models) == len(self.personas) else [Persona.from_dict(p) for p in self.personas]
        return {m.name: m for m in models}

    @property
    def digest(self) -> str:
        """Content hash of everything that shapes the run (the scenario and the resolved personas)."""
        content: dict[str, Any] = {"scenario": self.scenario.model_dump(mode="json"), "personas": self.personas}
        if self.scenario.population is not None:
            content["population"] = [self.population_spec, self.demography]
        return cache_key(content)

    def with_personas(self, models: list[Persona]) -> "LoadedScenario":
        """This scenario with more personas (a generated population) after its own."""
        loaded = self.model_copy(update={"personas": [*self.personas, *(m.to_dict() for m in models)]})
        loaded._models = [*self.persona_models().values(), *models]
        return loaded

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


def _resolve_persona(entry: PersonaEntry, index: int, base: Path, path: Path) -> Persona:
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
    return persona


def _file_specs(file: Path, path: Path) -> list[Any]:
    """The rows of a personas file: JSONL (one spec per line) or Parquet (a spec_json column, or one column per field)."""
    field = "personas_file"
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(file)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise _fail(path, field, f"{file.name} is not a readable Parquet file ({str(exc).splitlines()[0]})", "write it with pyarrow or polars") from None
        if "spec_json" in table.column_names:
            return [json.loads(text) for text in table.column("spec_json").to_pylist()]
        return [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]
    specs = []
    try:
        with file.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        specs.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise _fail(path, field, f"{file.name} line {number}: invalid JSON ({exc.msg})", "write one JSON object per line") from None
    except UnicodeDecodeError:
        raise _fail(path, field, f"{file.name} is not UTF-8 text", "save it as UTF-8") from None
    return specs


def _personas_from_file(name: str, base: Path, path: Path) -> list[Persona]:
    file = base / name
    if file.suffix not in (".jsonl", ".parquet") or not file.is_file():
        problem = f"{name} does not exist" if not file.is_file() else f"{name} is neither .jsonl nor .parquet"
        raise _fail(path, "personas_file", problem, "give a .jsonl or .parquet file, relative to the scenario file")
    personas = []
    for row, spec in enumerate(_file_specs(file, path)):
        if isinstance(spec, dict) and spec.get("type") in ("TinyPerson", "Fragment") and isinstance(spec.get("persona"), dict):
            spec = spec["persona"]  # a whole TinyTroupe agent document
        personas.append(Persona.from_dict(spec, source=f"{path}: personas_file: {file.name} row {row}"))
    return personas


_LOADED: dict[str, tuple[tuple[Any, ...], LoadedScenario]] = {}


def _dependencies(path: Path, scenario: Scenario) -> list[Path]:
    """The files a loaded scenario was read from: itself, persona and fragment files, the personas file."""
    base = path.parent
    files = [path]
    for entry in scenario.personas:
        files.extend(base / name for name in ([entry.file] if entry.file else []) + entry.fragments)
    if scenario.personas_file:
        files.append(base / scenario.personas_file)
    if scenario.population is not None and isinstance(scenario.population.spec, str):
        files.append(base / scenario.population.spec)
    return files


def _stamp(*files: Path) -> tuple[Any, ...]:
    stats = [file.stat() for file in files]
    return tuple((st.st_mtime_ns, st.st_size) for st in stats)


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read, validate and resolve a scenario file; every problem is one SpecError line.

    A file is parsed once per process while it (and its personas file) is unchanged: the CLI
    checks a scenario before Prefect starts and the flow reuses that work.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such scenario file; check the path")
    key = f"{path.resolve()}|{path}"
    cached = _LOADED.get(key)
    if cached is not None:
        stamp, loaded = cached
        try:
            if _stamp(*_dependencies(path, loaded.scenario)) == stamp:
                return loaded
        except OSError:
            pass
    loaded = _load(path)
    if len(_LOADED) > 8:
        _LOADED.clear()
    _LOADED[key] = (_stamp(*_dependencies(path, loaded.scenario)), loaded)
    return loaded


def _load(path: Path) -> LoadedScenario:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise _fail(path, where, f"invalid YAML ({getattr(exc, 'problem', exc)})", "fix the YAML syntax") from None
    except UnicodeDecodeError as exc:
        raise _fail(path, "(file)", f"not UTF-8 text (byte {exc.object[exc.start]:#x} at offset {exc.start})", "save the file as UTF-8") from None
    if not isinstance(data, dict):
        raise _fail(path, "(top level)", "expected a mapping with name, personas and worlds", "see docs/scenarios.md")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        problem = error["msg"].removeprefix("Value error, ")
        raise _fail(path, _location(error["loc"]), problem, "see docs/scenarios.md for the scenario format") from None

    models = [_resolve_persona(entry, i, path.parent, path) for i, entry in enumerate(scenario.personas)]
    if scenario.personas_file:
        models.extend(_personas_from_file(scenario.personas_file, path.parent, path))
    if not models and scenario.population is None:
        raise _fail(path, "personas", "no personas", "list personas, give a personas_file, or a population")
    if not scenario.worlds and scenario.population is None and scenario.survey is None:
        raise _fail(path, "worlds", "Field required (list at least one world, or give a population or survey)", "see docs/scenarios.md for the scenario format")
    population_spec, demography = _population(scenario.population, path) if scenario.population else (None, None)
    names = [m.name for m in models]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise _fail(path, f"personas[{i}]", f"two personas are named {name!r}", "give one a different name: field")
        seen[name] = i
    everyone = set(names)

    def choices(members: list[str]) -> str:
        shown = ", ".join(members[:10])
        return f"use one of: {shown}" + (f" (and {len(members) - 10} more)" if len(members) > 10 else "")

    for w, world in enumerate(scenario.worlds):
        for a, agent in enumerate(world.agents):
            if agent not in everyone:
                raise _fail(path, f"worlds[{w}].agents[{a}]", f"no persona is named {agent!r}", choices(names))
        member_list = world.agents or names
        members = set(member_list)
        for r, pair in enumerate(world.relations):
            for name in pair:
                if name not in members:
                    raise _fail(path, f"worlds[{w}].relations[{r}]", f"{name!r} is not in this world", choices(member_list))
        for s_, stimulus in enumerate(world.stimuli):
            for name in stimulus.to:
                if name not in members:
                    raise _fail(path, f"worlds[{w}].stimuli[{s_}].to", f"{name!r} is not in this world", choices(member_list))
        for i, intervention in enumerate(world.interventions):
            for e, effect in enumerate(intervention.effect):
                for name in effect.to:
                    if name not in members:
                        raise _fail(path, f"worlds[{w}].interventions[{i}].effect[{e}].to", f"{name!r} is not in this world", choices(member_list))
        for f, faculty in enumerate(world.faculties):
            _check_faculty(faculty, path, f"worlds[{w}].faculties[{f}]")
    world_names = [w.name for w in scenario.worlds]
    if len(set(world_names)) != len(world_names):
        raise _fail(path, "worlds", "two worlds share a name", "give every world a unique name")
    if scenario.survey is not None and scenario.survey.after is not None and scenario.survey.after not in world_names:
        raise _fail(path, "survey.after", f"no world is named {scenario.survey.after!r}", f"use one of: {', '.join(world_names) or '(no worlds)'}")
    if scenario.extraction is not None:
        from .datasets.schemas import EXTRACTIONS_BASE

        for name in scenario.extraction.fields:
            if name in EXTRACTIONS_BASE.names:
                raise _fail(path, f"extraction.fields.{name}", f"{name!r} is a column every extraction row has", "give the field another name")
    if scenario.experiment is not None:
        _check_experiment(scenario, scenario.experiment, names, path)
    _check_overrides(scenario, path)
    loaded = LoadedScenario(
        path=str(path), scenario=scenario, personas=[m.to_dict() for m in models], population_spec=population_spec, demography=demography
    )
    loaded._models = models
    return loaded


def _population(block: PopulationBlock, path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The population's spec validated (spec, None), or a free-form demography to derive one from (None, demography).

    A mapping with ``dimensions`` is a spec; anything else is a TinyTroupe demography.
    """
    from .population import parse_spec

    field = "population.spec"
    if isinstance(block.spec, dict):
        data, source = block.spec, f"{path}: {field}"
    else:
        file = path.parent / block.spec
        if not file.is_file():
            raise _fail(path, field, f"{block.spec} does not exist", "give a spec or demography file (YAML or JSON), relative to the scenario file")
        try:
            text = file.read_text(encoding="utf-8")
            data = json.loads(text) if file.suffix.lower() == ".json" else yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
        except (ValueError, yaml.YAMLError) as exc:
            raise _fail(path, field, f"{block.spec} is not valid {file.suffix.lstrip('.').upper() or 'YAML'} ({str(exc).splitlines()[0]})", "fix its syntax") from None
        source = str(file)
    if not isinstance(data, dict):
        raise _fail(path, field, "expected a mapping (a spec with dimensions, or a demography)", "see docs/populations.md")
    if "dimensions" not in data:
        return None, data
    return parse_spec(data, source).model_dump(mode="json"), None


def population_scenario(spec: str | Path, size: int, seed: int = 0, context: str | None = None) -> dict[str, Any]:
    """A scenario that only generates a population (what ``troupe population SPEC`` runs): no worlds, no survey."""
    path = Path(spec)
    if not path.is_file():
        raise SpecError(f"{path}: no such population spec file; give a spec (YAML/JSON with dimensions) or a demography JSON")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.name.split(".")[0]).strip("-._") or "population"
    population: dict[str, Any] = {"spec": str(path.resolve()), "size": size, "seed": seed}
    if context is not None:
        population["context"] = context
    return {"name": name, "description": f"the population of {path.name}", "population": population}


def _check_faculty(name: str, path: Path, field: str) -> None:
    """A faculty must be registered, or be one troupe ships (registered when an agent first needs it)."""
    from .agent.person import _FACULTIES, _SHIPPED_FACULTIES

    if name not in _FACULTIES and name not in _SHIPPED_FACULTIES:
        known = ", ".join(sorted({*_FACULTIES, *_SHIPPED_FACULTIES})) or "none"
        raise _fail(path, field, f"no faculty is registered as {name!r} (registered: {known})", "import the module that registers it, or remove it")


def _check_overrides(scenario: Scenario, path: Path) -> None:
    try:
        load_config().with_overrides(scenario.config)
    except ConfigError as exc:
        raise _fail(path, "config", str(exc).replace("argument ", ""), "use section.key names from config.ini") from None


def _check_experiment(scenario: Scenario, experiment: ExperimentBlock, everyone: list[str], path: Path) -> None:
    """The experiment's worlds, arm stimuli and comparisons refer to what the scenario has; one line per problem."""
    from .experimentation.arms import OutcomeError, arm_world_name, outcome

    worlds = {w.name: w for w in scenario.worlds}
    if not worlds:
        raise _fail(path, "experiment", "the arms apply to worlds and the scenario has none", "add a world, or remove the experiment")
    for i, name in enumerate(experiment.worlds):
        if name not in worlds:
            raise _fail(path, f"experiment.worlds[{i}]", f"no world is named {name!r}", f"use one of: {', '.join(worlds)}")
    applied = [w for w in scenario.worlds if experiment.applies_to(w.name)]
    for world in applied:
        for index in range(len(experiment.arms)):
            copy = arm_world_name(world.name, index)
            if copy in worlds:
                raise _fail(path, "worlds", f"world {copy!r} has the name the experiment gives an arm's copy of {world.name!r}", "rename that world")
    members = {n for w in applied for n in (w.agents or everyone)}
    for a, arm in enumerate(experiment.arms):
        for s, stimulus in enumerate(arm.stimuli):
            field = f"experiment.arms[{a}].stimuli[{s}]"
            short = next((w for w in applied if stimulus.step > w.steps), None)
            if short is not None:
                raise _fail(path, f"{field}.step", f"step {stimulus.step} is past world {short.name!r}'s {short.steps} steps", "raise its steps or move the stimulus")
            for name in stimulus.to:
                if name not in members:
                    raise _fail(path, f"{field}.to", f"{name!r} is in none of the experiment's worlds", f"use one of: {', '.join(sorted(members)[:10])}")
    for c, comparison in enumerate(experiment.compare):
        try:
            outcome(scenario, comparison)
        except OutcomeError as exc:
            raise _fail(path, f"experiment.compare[{c}].{exc.field}", exc.problem, exc.fix) from None

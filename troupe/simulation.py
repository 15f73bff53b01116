"""Scenario worlds as functions of typed state: what the pipeline's shard tasks call.

A run is cut into shards: consecutive worlds holding up to ``[pipeline] shard_size`` people (a
world is never split). A shard advances one step at a time, :func:`run_shard_step` taking the
shard's :class:`ShardState` and that step's :class:`StepPlan` per world and returning a
:class:`StepResult` with only what the step added (new events, the agents' new state, the calls).
Every world of the shard advances concurrently on the async gateway. With the call cache warm a
step is reproducible, which is what makes caching it by its inputs sound.

Nothing here imports Prefect: a notebook can drive the same functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from .agent.person import TinyPerson
from .agent.persona import Persona
from .agent.state import AgentState, ItemFailure
from .config import Config
from .environment import Intervention, TinySocialNetwork, TinyWorld, WorldState
from .environment.world import ITEM_ERRORS
from .extraction import ExtractedRecord, ExtractionSpec
from .llm import CallRecord, LLMGateway, loop
from .scenario import Arm, InterventionSpec, Stimulus, StimulusBody, WorldSpec, duration

if TYPE_CHECKING:
    from .scenario import LoadedScenario
    from .survey import Survey, SurveyResult


class WorldPlan(BaseModel):
    """One world of a run before it exists: its scenario entry and its people."""

    spec: int = Field(description="index into the scenario's worlds")
    name: str
    agents: list[str]
    arm: str | None = Field(default=None, description="the experiment arm this world belongs to (docs/scenarios.md, Experiments)")


class StepPlan(BaseModel):
    """What shapes one world's step besides its state: the step's stimuli, the interventions that
    may fire in it, and the clock (a cache-key part)."""

    step: int
    time_per_step: str | None = None
    stimuli: list[Stimulus] = Field(default_factory=list)
    interventions: list[InterventionSpec] = Field(default_factory=list)


class ShardState(BaseModel):
    """The worlds of one shard, in the data form (each event once). The task boundary's currency."""

    worlds: list[WorldState]


class StepResult(BaseModel):
    """What one step of a shard added: worlds with only the step's events, calls, failed items."""

    worlds: list[WorldState]
    calls: list[CallRecord] = Field(default_factory=list)
    failures: list[ItemFailure] = Field(default_factory=list)


class ExtractionResult(BaseModel):
    records: list[ExtractedRecord]
    calls: list[CallRecord] = Field(default_factory=list)
    failures: list[ItemFailure] = Field(default_factory=list)


# ----- planning (no LLM call) -----


def plan_worlds(loaded: LoadedScenario) -> list[WorldPlan]:
    """Every world of the run in order; a ``kind: isolated`` entry becomes one world per person.

    A world an experiment applies to becomes one copy per arm (``Square A``, ``Square B``), holding
    everyone (``assign: within``) or the people drawn into that arm (``between``); an arm's copy
    with nobody in it is left out.
    """
    from .experimentation.arms import arm_members, arm_world_name

    everyone = [p["name"] for p in loaded.personas]
    experiment = loaded.scenario.experiment
    plans: list[WorldPlan] = []
    for index, spec in enumerate(loaded.scenario.worlds):
        members = spec.agents or everyone
        if experiment is None or not experiment.applies_to(spec.name):
            plans.extend(_world_plans(index, spec, spec.name, members, None))
            continue
        for number, (arm, people) in enumerate(arm_members(experiment, members, everyone)):
            if people:
                plans.extend(_world_plans(index, spec, arm_world_name(spec.name, number), people, arm.name))
    return plans


def _world_plans(index: int, spec: WorldSpec, name: str, members: list[str], arm: str | None) -> list[WorldPlan]:
    if spec.kind == "isolated":
        return [WorldPlan(spec=index, name=f"{name}/{person}", agents=[person], arm=arm) for person in members]
    return [WorldPlan(spec=index, name=name, agents=list(members), arm=arm)]


def shard(plans: list[WorldPlan], shard_size: int) -> Iterator[list[WorldPlan]]:
    """Consecutive worlds, up to shard_size people per shard (a bigger world is a shard of its own).

    A shard never mixes experiment arms, so each part file a shard's task writes belongs to one arm.
    """
    current: list[WorldPlan] = []
    people = 0
    for plan in plans:
        if current and (people + len(plan.agents) > shard_size or plan.arm != current[0].arm):
            yield current
            current, people = [], 0
        current.append(plan)
        people += len(plan.agents)
    if current:
        yield current


def step_plan(spec: WorldSpec, step: int, arm: Arm | None = None) -> StepPlan:
    """The step's stimuli (with an experiment arm's, in that arm's worlds) and the interventions whose
    step window allows this step: a changed intervention reruns only the steps it could fire in
    (and the ones after them)."""
    stimuli = [s for s in spec.stimuli if s.step == step]
    return StepPlan(
        step=step,
        time_per_step=spec.time_per_step,
        stimuli=stimuli if arm is None else arm.stimuli_at(step, stimuli),
        interventions=[i for i in spec.interventions if i.when.possible_at(step)],
    )


def new_world(plan: WorldPlan, spec: WorldSpec, personas: dict[str, Persona], config: Config) -> WorldState:
    """The initial state of a world (no LLM call)."""
    kind = TinySocialNetwork if spec.kind == "TinySocialNetwork" else TinyWorld
    agents = [TinyPerson.from_state(AgentState(persona=personas[n], faculties=list(spec.faculties)), config=config, transcript=False) for n in plan.agents]
    world = kind(plan.name, agents, initial_datetime=spec.start, step_mode=spec.step_mode, config=config, transcript=False)
    if isinstance(world, TinySocialNetwork):
        present = set(plan.agents)  # an experiment's between draw may put a relation's ends in different arms
        for a, b in (pair for pair in spec.relations if set(pair) <= present):
            world.add_relation(world.get_agent_by_name(a), world.get_agent_by_name(b))  # type: ignore[arg-type]
    elif spec.everyone_accessible and len(agents) > 1:
        world.make_everyone_accessible()
    return world.snapshot()


def extend(state: WorldState, added: WorldState) -> WorldState:
    """state followed by a step's result: the step's agents and clock, the log with the new events."""
    return added.model_copy(update={"events": [*state.events, *added.events]})


# ----- a step, an extraction -----


def apply_stimulus(world: TinyWorld, stimulus: StimulusBody) -> None:
    targets = [world.get_agent_by_name(n) for n in stimulus.to] if stimulus.to else list(world.agents)
    source = stimulus.source
    for agent in targets:
        if agent is None:
            continue
        if stimulus.kind in ("broadcast", "listen"):
            agent.listen(stimulus.content, source)
        elif stimulus.kind == "see":
            agent.see(stimulus.content, source)
        elif stimulus.kind == "think":
            agent.think(stimulus.content)
        elif stimulus.kind == "goal":
            agent.internalize_goal(stimulus.content)
        elif stimulus.kind == "context":
            agent.change_context(stimulus.content)


def declared_intervention(spec: InterventionSpec) -> Intervention:
    """A scenario's intervention as a live one: its conditions as preconditions, its stimuli as the effect."""
    when = spec.when
    intervention = Intervention(name=spec.name, repeat=spec.repeat).set_step_precondition(when.at_step, when.from_step)
    if when.mentions:
        intervention.set_mentions_precondition(when.mentions)
    if when.condition:
        intervention.set_textual_precondition(when.condition)

    def give(world: TinyWorld) -> None:
        for stimulus in spec.effect:
            apply_stimulus(world, stimulus)

    return intervention.set_effect(give)


def _live(
    state: WorldState, config: Config, gateway: LLMGateway, failures: list[ItemFailure] | None, transcript: bool | None = None
) -> TinyWorld:
    world = TinyWorld.from_state(state, gateway=gateway, config=config, transcript=transcript)
    world.failures = failures
    return world


def run_shard_step(
    shard: ShardState, plans: list[StepPlan], config: Config, gateway: LLMGateway, *, totals: list[int] | None = None
) -> StepResult:
    """One step of every world of the shard, concurrently; returns only what the step added.

    With ``[pipeline] on_item_error = skip`` an agent whose turn fails sits the step out and is
    listed in the result's failures; with ``fail`` the error propagates.
    """
    failures: list[ItemFailure] | None = [] if config.pipeline.on_item_error == "skip" else None
    worlds = [_live(state, config, gateway, failures) for state in shard.worlds]
    before = [len(state.events) for state in shard.worlds]
    totals = totals or [plan.step for plan in plans]

    async def one(world: TinyWorld, plan: StepPlan, total: int) -> None:
        def give_stimuli(world: TinyWorld) -> None:
            for stimulus in plan.stimuli:
                apply_stimulus(world, stimulus)

        for intervention in plan.interventions:
            world.add_intervention(declared_intervention(intervention))
        delta = duration(plan.time_per_step)
        await world.astep(delta, total=total, index=plan.step, prelude=give_stimuli)

    start = len(gateway.ledger.records)

    async def all_worlds() -> None:
        await asyncio.gather(*(one(w, p, t) for w, p, t in zip(worlds, plans, totals)))

    loop.run_sync(all_worlds())
    added = []
    for world, n in zip(worlds, before):
        snapshot = world.snapshot()
        added.append(snapshot.model_copy(update={"events": snapshot.events[n:]}))
    return StepResult(worlds=added, calls=gateway.ledger.records[start:], failures=failures or [])


def extract_shard(shard: ShardState, spec: ExtractionSpec, config: Config, gateway: LLMGateway) -> ExtractionResult:
    """The extraction of every world of the shard, concurrently; a world whose extraction fails fails alone."""
    from .extraction import aextract

    skip = config.pipeline.on_item_error == "skip"
    failures: list[ItemFailure] = []
    worlds = [_live(state, config, gateway, None, transcript=False) for state in shard.worlds]
    start = len(gateway.ledger.records)

    async def one(world: TinyWorld) -> list[ExtractedRecord]:
        try:
            return await aextract(world, spec, gateway)
        except ITEM_ERRORS as exc:
            if not skip:
                raise
            failures.append(ItemFailure.from_error(exc, "extract", config.llm.max_attempts, world=world.name))
            return []

    async def all_worlds() -> list[list[ExtractedRecord]]:
        return list(await asyncio.gather(*(one(w) for w in worlds)))

    records = [r for rs in loop.run_sync(all_worlds()) for r in rs]
    return ExtractionResult(records=records, calls=gateway.ledger.records[start:], failures=failures)


def survey_shard(shard: ShardState, survey: "Survey", config: Config, gateway: LLMGateway) -> "SurveyResult":
    """A survey asked of every agent of the shard's worlds, each answering with its memories of its world."""
    from .survey import ask_shard

    worlds = [_live(state, config, gateway, None, transcript=False) for state in shard.worlds]
    agents = [(world.name, agent.snapshot()) for world in worlds for agent in world.agents]
    return ask_shard(survey, [a for _, a in agents], config, gateway, worlds=[w for w, _ in agents])


# ----- notebook helpers over a single world -----


def run_step(world: WorldState, spec: WorldSpec, config: Config, gateway: LLMGateway) -> WorldState:
    """The whole state of one world after its next step (for notebooks: the pipeline uses shards)."""
    plan = step_plan(spec, world.step + 1)
    result = run_shard_step(ShardState(worlds=[world]), [plan], config, gateway, totals=[spec.steps])
    return extend(world, result.worlds[0])

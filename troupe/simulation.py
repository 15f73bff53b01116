"""Scenario worlds as pure functions of JSON: what the pipeline tasks call.

Each function takes plain data (world state, specs, configuration) and returns plain data, so a
Prefect task can hash its inputs and cache its output, and a notebook can call the same functions
without Prefect. A world step is (world state, stimuli, LLM replies) -> world state: with the call
cache warm it is reproducible, which is what makes caching it by its inputs sound.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .agent.person import TinyPerson
from .config import Config
from .environment import TinySocialNetwork, TinyWorld
from .extraction import ExtractionSpec, aextract
from .llm import CallRecord, LLMGateway, loop
from .scenario import Stimulus, WorldSpec


class StepOutcome(BaseModel):
    """A world after one step, and the gateway calls the step made."""

    world: dict[str, Any]
    calls: list[CallRecord]


class ExtractionOutcome(BaseModel):
    records: list[dict[str, Any]]
    calls: list[CallRecord]


def new_world(spec: WorldSpec, personas: list[dict[str, Any]], config: Config) -> dict[str, Any]:
    """The initial state of a scenario world (no LLM call)."""
    kind = TinySocialNetwork if spec.kind == "TinySocialNetwork" else TinyWorld
    world = kind(
        spec.name,
        [TinyPerson(persona=p, config=config, transcript=False) for p in personas],
        initial_datetime=spec.start,
        step_mode=spec.step_mode,
        config=config,
        transcript=False,
    )
    if isinstance(world, TinySocialNetwork):
        for a, b in spec.relations:
            world.add_relation(world.get_agent_by_name(a), world.get_agent_by_name(b))  # type: ignore[arg-type]
    elif spec.everyone_accessible:
        world.make_everyone_accessible()
    return world.to_json()


def apply_stimulus(world: TinyWorld, stimulus: Stimulus) -> None:
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


def run_step(world_state: dict[str, Any], spec: WorldSpec, config: Config, gateway: LLMGateway) -> StepOutcome:
    """Give the step's stimuli, run one step, and return the new state with the calls it made."""
    world = TinyWorld.from_json(world_state, gateway=gateway, config=config)
    step = world.step + 1

    def give_stimuli(world: TinyWorld) -> None:
        for stimulus in spec.stimuli:
            if stimulus.step == step:
                apply_stimulus(world, stimulus)

    before = len(gateway.ledger.records)
    loop.run_sync(world.astep(spec.step_delta(), total=spec.steps, index=step, prelude=give_stimuli))
    return StepOutcome(world=world.to_json(), calls=gateway.ledger.records[before:])


def extract(world_state: dict[str, Any], spec: ExtractionSpec, config: Config, gateway: LLMGateway) -> ExtractionOutcome:
    world = TinyWorld.from_json(world_state, gateway=gateway, config=config, transcript=False)
    before = len(gateway.ledger.records)
    records = loop.run_sync(aextract(world, spec, gateway))
    return ExtractionOutcome(
        records=[r.model_dump(mode="json") for r in records],
        calls=gateway.ledger.records[before:],
    )

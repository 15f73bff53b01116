"""One typed state: each event stored once, episodes derived from the world's log, step results that
hold only what the step added (storage grows with steps, not steps squared), personas typed."""

from __future__ import annotations

from typing import Any

from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, talk
from troupe import TinyPerson, TinyWorld
from troupe.agent.persona import Persona
from troupe.agent.state import AgentState
from troupe.config import Config
from troupe.environment import WorldState
from troupe.llm import LLMGateway
from troupe.scenario import Stimulus
from troupe.simulation import ShardState, StepPlan, extend, run_shard_step

STEPS = 6


def _chat(fake: FakeOpenAI, gateway: LLMGateway) -> TinyWorld:
    Script({name: (lambda n, name=name: [talk(f"{name} says {n}"), done()]) for name in ("Ana", "Ben")}).install(fake)
    world = TinyWorld("Room", [TinyPerson("Ana", gateway=gateway), TinyPerson("Ben", gateway=gateway)], gateway=gateway)
    world.make_everyone_accessible()
    return world


def test_a_world_stores_each_event_once_and_agents_get_their_episodes_back(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    world = _chat(fake, gateway)
    lonely = world.agents[0]
    world.broadcast("The bakery opens today.")
    world.run(2)
    text = world.snapshot().model_dump_json()
    # Every event once: Ana's TALK and Ben hearing it are two events; nothing is stored twice.
    assert text.count('"direction":') == len(world.state.events) == sum(len(a.state.episodes) for a in world.agents)
    assert text.count("Ana says 0") == 2 and text.count("The bakery opens today.") == 2
    assert all(agent.episodes == [] for agent in WorldState.model_validate_json(text).agents)

    restored = TinyWorld.from_state(WorldState.model_validate_json(text), gateway=gateway)
    for before, after in zip(world.agents, restored.agents):
        assert after.state.episodes == before.state.episodes and after.state.episodes
        assert {e.agent for e in after.state.episodes} == {after.name}
    assert restored.to_json() == world.to_json()
    assert lonely.state.episodes[0].content == "The bakery opens today."


def test_an_agents_episodes_from_before_the_world_are_kept(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    lisa = TinyPerson("Lisa", gateway=gateway)
    lisa.listen("Before the world existed.")
    world = TinyWorld("Room", [lisa], gateway=gateway)
    world.broadcast("Inside the world.")
    restored = TinyWorld.from_json(world.to_json(), gateway=gateway)
    assert [e.content for e in restored.agents[0].state.episodes] == ["Before the world existed.", "Inside the world."]
    assert [e.content for e in restored.state.events] == ["Inside the world."]


def test_step_results_hold_only_the_step_so_storage_grows_linearly(fake: FakeOpenAI, gateway: LLMGateway, config: Config) -> None:
    world = _chat(fake, gateway).snapshot()
    sizes, total_events = [], 0
    for step in range(1, STEPS + 1):
        plan = StepPlan(step=step, stimuli=[Stimulus(step=step, content=f"News number {step}.", source="Radio")])
        result = run_shard_step(ShardState(worlds=[world]), [plan], config, gateway)
        (added,) = result.worlds
        assert {e.step for e in added.events} == {step}  # only this step's events
        sizes.append(len(result.model_dump_json()))
        world = extend(world, added)
        total_events += len(added.events)
    assert len(world.events) == total_events
    # Each step adds the same kind of events: the results stay the same size instead of growing.
    assert max(sizes) < 1.3 * min(sizes)
    assert len(ShardState(worlds=[world]).model_dump_json()) > 3 * sizes[-1]


def test_the_persona_is_a_model_inside_the_state_and_round_trips_exactly() -> None:
    spec: dict[str, Any] = {"name": "Ana", "age": 34, "occupation": {"title": "Nurse"}, "hobby": "chess"}
    state = AgentState(persona=Persona.from_dict(spec))
    assert isinstance(state.persona, Persona) and state.name == "Ana"
    again = AgentState.model_validate_json(state.model_dump_json())
    assert again.persona.to_dict() == spec and again.model_dump(mode="json")["persona"] == spec

"""TinyWorld: message routing, step modes, broadcasts, prompts, state round-trips and reruns."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.scripted import (
    Script,
    acted,
    done,
    heard,
    reach_out,
    stimuli,
    talk,
    think,
    turn,
    turn_prompts,
)
from troupe import TinyPerson, TinyWorld
from troupe.config import Config
from troupe.llm import LLMGateway


def _world(gateway: LLMGateway, *names: str, **kwargs: Any) -> TinyWorld:
    agents = [TinyPerson(name, gateway=gateway) for name in names]
    return TinyWorld("Chat Room", agents, gateway=gateway, **kwargs)


# ----- routing in parallel mode -----


def test_two_agent_chat_routes_messages_and_delivers_at_end_of_step(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script(
        {
            "Lisa": [
                [talk("L1: hi Oscar", "Oscar"), done()],
                [talk("L2: hello all"), done()],
                [talk("L3: still there, Oscar?", "Oscar"), done()],
                [talk("L4: bye"), done()],
            ],
            "Oscar": [
                [talk("O1: good morning"), done()],
                [talk("O2: hi Lisa", "Lisa"), done()],
                [think("O3: private thought"), done()],
                [talk("O4: see you"), done()],
            ],
        }
    ).install(fake)
    world = _world(gateway, "Lisa", "Oscar")
    lisa, oscar = world.agents

    world.run(4)

    assert world.step == 4
    assert fake.calls == 8  # one turn per agent per step: every turn ended with DONE
    assert heard(oscar) == [(1, "Lisa", "L1: hi Oscar"), (2, "Lisa", "L2: hello all"), (3, "Lisa", "L3: still there, Oscar?"), (4, "Lisa", "L4: bye")]
    assert heard(lisa) == [(1, "Oscar", "O1: good morning"), (2, "Oscar", "O2: hi Lisa"), (4, "Oscar", "O4: see you")]
    # Nobody hears themselves and THINK is private.
    assert all(source != "Lisa" for _, source, _ in heard(lisa))
    assert "O3: private thought" not in json.dumps(lisa.to_json())
    # Parallel: what is said in step k is not in the listener's prompt of step k, but is in step k+1.
    oscar_prompts = turn_prompts(fake, "Oscar")
    lisa_prompts = turn_prompts(fake, "Lisa")
    assert len(oscar_prompts) == len(lisa_prompts) == 4
    for k, said in enumerate(["L1: hi Oscar", "L2: hello all", "L3: still there, Oscar?"]):
        assert said not in oscar_prompts[k]
        assert f'Lisa said: "{said}"' in oscar_prompts[k + 1]
    for k, said in [(0, "O1: good morning"), (1, "O2: hi Lisa")]:
        assert said not in lisa_prompts[k]
        assert f'Oscar said: "{said}"' in lisa_prompts[k + 1]
    # The world's log has every event once, in order: steps never go backwards.
    steps = [e.step for e in world.state.events]
    assert steps == sorted(steps)
    assert len(world.state.events) == len(lisa.state.episodes) + len(oscar.state.episodes)


def test_targeted_talk_reaches_only_the_target(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script(
        {
            "Lisa": [[talk("Only for Oscar", "Oscar"), talk("For everyone"), done()]],
            "Marcos": [[talk("Hello Lila", "Lila"), done()]],
        }
    ).install(fake)
    world = _world(gateway, "Lisa", "Oscar", "Marcos", "Lila")
    lisa, oscar, marcos, lila = world.agents

    actions = world.run(1, return_actions=True)

    assert heard(oscar) == [(1, "Lisa", "Only for Oscar"), (1, "Lisa", "For everyone")]
    assert heard(marcos) == [(1, "Lisa", "For everyone")]
    assert heard(lila) == [(1, "Lisa", "For everyone"), (1, "Marcos", "Hello Lila")]
    assert heard(lisa) == []
    # TinyTroupe's shape: one {agent name: [action dicts]} per step, every agent a key.
    assert actions is not None and len(actions) == 1
    assert {name: [(a["action"]["type"], a["action"]["target"]) for a in acts] for name, acts in actions[0].items()} == {
        "Lisa": [("TALK", "Oscar"), ("TALK", ""), ("DONE", "")],
        "Oscar": [("DONE", "")],
        "Marcos": [("TALK", "Lila"), ("DONE", "")],
        "Lila": [("DONE", "")],
    }
    # Each action also reads as the recorded event, and is the one in the world's log.
    lisa_said = actions[0]["Lisa"][0]
    assert (lisa_said.agent, lisa_said.type, lisa_said["action"]["content"]) == ("Lisa", "TALK", "Only for Oscar")
    assert lisa_said.event in world.state.events and set(lisa_said["cognitive_state"]) >= {"goals", "emotions"}
    assert json.loads(json.dumps(actions)) == actions  # plain JSON, as TinyTroupe users save it


def test_return_actions_gives_each_turn_its_cognitive_state(fake: FakeOpenAI, tmp_path: Path) -> None:
    config = fake_config(fake, tmp_path, **{"simulation.max_turns_until_done": 2})
    Script({"Lisa": [turn(talk("first"), emotions="calm"), turn(talk("second"), done(), emotions="tense")]}).install(fake)
    world = _world(LLMGateway(config), "Lisa")
    (step,) = world.run(1, return_actions=True) or []
    assert [(a["action"]["content"], a["cognitive_state"]["emotions"]) for a in step["Lisa"]] == [
        ("first", "calm"), ("second", "tense"), ("", "tense"),
    ]  # fmt: skip


def test_talk_to_unknown_target_follows_broadcast_if_no_target(fake: FakeOpenAI, config: Config) -> None:
    free_targets = config.with_overrides({"simulation.constrain_targets": "false"})  # else "Bob" cannot be named
    for flag, expected in [(True, [(1, "Lisa", "Is Bob here?")]), (False, [])]:
        gateway = LLMGateway(free_targets)
        Script({"Lisa": [[talk("Is Bob here?", "Bob"), done()]]}).install(fake)
        world = _world(gateway, "Lisa", "Oscar", broadcast_if_no_target=flag)
        world.run(1)
        assert heard(world.agents[1]) == expected


def test_agent_takes_another_turn_within_a_step_until_done(fake: FakeOpenAI, tmp_path: Path) -> None:
    config = fake_config(fake, tmp_path, **{"simulation.max_turns_until_done": 3})
    gateway = LLMGateway(config)
    Script(
        {
            "Lisa": [[talk("first")], [talk("second")], [talk("third")], [talk("fourth"), done()]],
            "Oscar": [[think("hmm")], [done()]],
        }
    ).install(fake)
    world = _world(gateway, "Lisa", "Oscar")
    world.run(1)
    lisa, oscar = world.agents
    # Lisa never said DONE: she stops after max_turns_until_done turns; Oscar after his DONE.
    assert acted(lisa) == [("TALK", "first", ""), ("TALK", "second", ""), ("TALK", "third", "")]
    assert acted(oscar) == [("THINK", "hmm", ""), ("DONE", "", "")]
    assert heard(oscar) == [(1, "Lisa", "first"), (1, "Lisa", "second"), (1, "Lisa", "third")]
    assert len(turn_prompts(fake, "Lisa")) == 3 and len(turn_prompts(fake, "Oscar")) == 2
    # Parallel mode: Oscar's second turn in step 1 still has not heard Lisa.
    assert '"first"' not in turn_prompts(fake, "Oscar")[1]


# ----- sequential mode -----

_RUNS = itertools.count()


def _sequential_run(fake: FakeOpenAI, root: Path, seed: int) -> tuple[TinyWorld, list[tuple[str, ...]]]:
    gateway = LLMGateway(fake_config(fake, root / f"run-{next(_RUNS)}"))
    Script({name: (lambda n, name=name: [talk(f"{name} speaks in step {n + 1}"), done()]) for name in ("Lisa", "Oscar")}).install(fake)
    before = len(fake.requests)
    world = _world(gateway, "Lisa", "Oscar", step_mode="sequential", seed=seed)
    world.run(4)
    orders = []
    for step in range(1, 5):
        actors = [e.agent for e in world.state.events if e.step == step and e.direction == "action"]
        orders.append(tuple(dict.fromkeys(actors)))
    # Sequential requests never overlap, so the server saw them in the acting order.
    names = [r["messages"][0]["content"].split(",")[0].removeprefix("You are ") for r in fake.requests[before:]]
    assert tuple(names) == tuple(name for order in orders for name in order)
    return world, orders


def test_sequential_mode_later_agent_hears_in_the_same_step(fake: FakeOpenAI, tmp_path: Path) -> None:
    world, orders = _sequential_run(fake, tmp_path, seed=7)
    agents = {a.name: a for a in world.agents}
    prompts = {name: turn_prompts(fake, name) for name in agents}
    for step, (first, second) in enumerate(orders, start=1):
        first_said = f"{first} speaks in step {step}"
        second_said = f"{second} speaks in step {step}"
        assert f'{first} said: "{first_said}"' in prompts[second][step - 1]
        assert second_said not in prompts[first][step - 1]
        assert (step, first, first_said) in heard(agents[second])
        assert (step, second, second_said) in heard(agents[first])


def test_sequential_order_is_reproducible_per_seed(fake: FakeOpenAI, tmp_path: Path) -> None:
    _, orders = _sequential_run(fake, tmp_path, seed=7)
    _, again = _sequential_run(fake, tmp_path, seed=7)
    assert again == orders
    assert len(set(orders)) == 2, "four steps with one seed should not all have the same order"
    for other in range(8, 20):
        _, different = _sequential_run(fake, tmp_path, seed=other)
        if different != orders:
            break
    else:
        pytest.fail("every seed gave the same acting order")


def _acting_orders(world: TinyWorld) -> list[tuple[str, ...]]:
    return [tuple(dict.fromkeys(e.agent for e in world.state.events if e.step == step and e.direction == "action")) for step in range(1, world.step + 1)]


def test_tinytroupe_run_keywords_pick_the_mode_and_the_order(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    """run(parallelize=..., randomize_agents_order=...) as TinyTroupe's: for that run only."""
    names = ("Lisa", "Oscar", "Marcos", "Lila")
    Script({name: (lambda n, name=name: [talk(f"{name} {n}"), done()]) for name in names}).install(fake)

    # parallelize=False on a parallel world: sequential, so the later agents hear the earlier ones in the step.
    world = _world(gateway, *names)
    world.run(6, parallelize=False)
    orders = _acting_orders(world)
    assert len(set(orders)) > 1, "randomize_agents_order defaults to True, as in TinyTroupe"
    for step, order in enumerate(orders, start=1):
        last = world.get_agent_by_name(order[-1])
        assert [source for s, source, _ in heard(last) if s == step] == list(order[:-1])
    assert world.state.step_mode == "parallel"  # the keyword did not change the world

    # randomize_agents_order=False: the order the agents were added, every step.
    world = _world(gateway, *names, step_mode="sequential")
    world.run(3, randomize_agents_order=False)
    assert _acting_orders(world) == [names] * 3
    first = world.agents[0]
    assert [s for s, _, _ in heard(first)] == [1, 1, 1, 2, 2, 2, 3, 3, 3]  # hears the others in the same step

    # parallelize=True on a sequential world: nobody hears anything in the step it was said.
    world = _world(gateway, *names, step_mode="sequential")
    world.run(2, parallelize=True)
    for step in (1, 2):  # every action of the step comes before anything is heard
        kinds = [e.direction for e in world.state.events if e.step == step]
        assert kinds == ["action"] * 8 + ["stimulus"] * 12
    assert world.state.step_mode == "sequential"


def test_interventions_given_to_the_constructor_fire(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    from troupe.environment import Intervention

    Script({"Lisa": lambda n: [done()]}).install(fake)
    news = Intervention(name="news").set_step_precondition(at_step=2).set_effect(lambda world: world.broadcast("Breaking news."))
    world = _world(gateway, "Lisa", interventions=[news])
    world.run(3)
    assert heard(world.agents[0]) == [(2, "", "Breaking news.")]
    assert world.state.fired_interventions == ["news"]


def test_tinytroupe_calendar_shorthands(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": lambda n: [done()]}).install(fake)
    world = _world(gateway, "Lisa", initial_datetime=datetime(2025, 1, 1, 9, 0))
    world.run_weeks(1, parallelize=False)
    world.run_months(1, randomize_agents_order=False)
    world.skip_years(1)
    world.skip_minutes(30)
    assert world.current_datetime == datetime(2025, 1, 1, 9, 0) + timedelta(weeks=5, days=365, minutes=30)
    assert (world.step, fake.calls) == (33, 2)


# ----- REACH_OUT, broadcasts and what the prompt shows -----


def test_reach_out_connects_both_agents(fake: FakeOpenAI, config: Config) -> None:
    gateway = LLMGateway(config.with_overrides({"simulation.constrain_targets": "false"}))  # to name "Nobody"
    Script(
        {
            "Lisa": [[reach_out("Oscar"), reach_out("Nobody"), done()], [talk("Nice to meet you", "Oscar"), done()]],
        }
    ).install(fake)
    world = _world(gateway, "Lisa", "Oscar", "Marcos")
    lisa, oscar, marcos = world.agents
    assert lisa.state.accessible == oscar.state.accessible == []

    world.run(2)

    assert lisa.state.accessible == ["Oscar"]
    assert oscar.state.accessible == ["Lisa"]
    assert marcos.state.accessible == []
    assert stimuli(lisa, "SOCIAL") == [
        (1, "Chat Room", "Oscar was reached and is now available to talk."),
        (1, "Chat Room", "Nobody could not be reached."),
    ]
    assert stimuli(oscar, "SOCIAL") == [(1, "Chat Room", "Lisa reached out to you and is now available to talk.")]
    assert stimuli(marcos, "SOCIAL") == []
    # Accessibility shows in the next prompts, not before.
    for name, other in [("Lisa", "Oscar"), ("Oscar", "Lisa")]:
        first, second = turn_prompts(fake, name)
        assert "People you can talk to" not in first
        assert f"People you can talk to: {other}.\n" in second
    assert "People you can talk to" not in turn_prompts(fake, "Marcos")[1]
    assert heard(oscar) == [(2, "Lisa", "Nice to meet you")]


def test_broadcasts_reach_every_agent_and_shape_cognition(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    world = _world(gateway, "Lisa", "Oscar", "Marcos")
    lisa, oscar, marcos = world.agents

    world.broadcast("Welcome to the focus group.")
    world.broadcast("I will take notes.", source=lisa)
    world.broadcast_thought("I should be honest.")
    world.broadcast_internal_goal("Give feedback on the new product.")
    world.broadcast_context_change(["A meeting room", "Afternoon"])

    for agent in world.agents:
        assert agent.state.cognitive.goals == "Give feedback on the new product."
        assert agent.state.cognitive.context == "A meeting room; Afternoon"
        assert stimuli(agent, "THOUGHT") == [(0, agent.name, "I should be honest.")]
        assert stimuli(agent, "INTERNAL_GOAL_FORMULATION") == [(0, agent.name, "Give feedback on the new product.")]
        assert stimuli(agent, "CONTEXT") == [(0, "", "A meeting room; Afternoon")]
    assert heard(lisa) == [(0, "", "Welcome to the focus group.")]
    assert heard(oscar) == heard(marcos) == [(0, "", "Welcome to the focus group."), (0, "Lisa", "I will take notes.")]
    assert len(world.state.events) == 3 + 2 + 3 * 3
    assert fake.calls == 0

    world.make_everyone_accessible()
    prompt = lisa.prompt_messages()[1]["content"]
    assert "Your goals: Give feedback on the new product.\nContext: A meeting room; Afternoon\n" in prompt
    assert "People you can talk to: Oscar, Marcos.\n" in prompt
    assert '[0] Someone said: "Welcome to the focus group."' in prompt
    assert '[0] You thought: "I should be honest."' in prompt


def test_broadcast_with_a_source_name_skips_that_agent(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    world = _world(gateway, "Lisa", "Oscar")
    world.broadcast("Lisa's announcement.", source="Lisa")
    assert heard(world.agents[0]) == []
    assert heard(world.agents[1]) == [(0, "Lisa", "Lisa's announcement.")]


def test_cognitive_state_and_clock_are_rendered_into_the_next_prompt(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script(
        {
            "Lisa": [
                turn(talk("Shall we get coffee?", "Oscar"), done(), goals="Find a good coffee place", context="A busy office",
                     attention="Oscar's answer", emotions="Curious and upbeat"),
                turn(think("He did not answer yet."), done(), goals="Wait for Oscar", emotions="Impatient"),
            ],
        }
    ).install(fake)  # fmt: skip
    world = _world(gateway, "Lisa", "Oscar", initial_datetime=datetime(2025, 3, 3, 9, 0))
    world.make_everyone_accessible()

    world.run(2, timedelta(hours=1))

    first, second = turn_prompts(fake, "Lisa")
    assert first.startswith("Now: Monday 03 March 2025, 09:00.\nYour goals: none yet\nContext: none\n")
    assert "Emotions: Calm.\nPeople you can talk to: Oscar.\n" in first
    assert second.startswith(
        "Now: Monday 03 March 2025, 10:00.\n"
        "Your goals: Find a good coffee place\n"
        "Context: A busy office\n"
        "Attention: Oscar's answer\n"
        "Emotions: Curious and upbeat\n"
        "People you can talk to: Oscar.\n"
    )
    assert '[1] You TALK to Oscar: "Shall we get coffee?"' in second
    lisa = world.agents[0]
    assert lisa.state.cognitive.goals == "Wait for Oscar" and lisa.state.cognitive.emotions == "Impatient"
    assert world.current_datetime == datetime(2025, 3, 3, 11, 0)
    assert [e.time for e in lisa.state.episodes if e.direction == "action"] == [datetime(2025, 3, 3, 9, 0)] * 2 + [datetime(2025, 3, 3, 10, 0)] * 2


def test_agent_names_are_unique_per_world_not_per_process(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": [[talk("Hello from world one"), done()]]}).install(fake)
    one = _world(gateway, "Lisa", "Oscar")
    two = _world(gateway, "Lisa", "Oscar")
    with pytest.raises(ValueError, match="already here"):
        one.add_agent(TinyPerson("Lisa", gateway=gateway))
    with pytest.raises(ValueError, match="Oscar is already in Chat Room"):
        TinyWorld("Elsewhere", gateway=gateway).add_agent(one.agents[1])
    one.run(1)
    assert heard(one.agents[1]) == [(1, "Lisa", "Hello from world one")]
    assert all(agent.state.episodes == [] for agent in two.agents)
    assert two.get_agent_by_name("Lisa") is two.agents[0] is not one.agents[0]
    assert two.step == 0 and two.state.events == []


# ----- state round-trips and deterministic reruns -----


def _chat_script() -> Script:
    return Script(
        {
            "Lisa": lambda n: turn(talk(f"Lisa's message {n}", "Oscar" if n % 2 else ""), done(), goals=f"goal {n}"),
            "Oscar": lambda n: turn(think(f"Oscar thinks {n}"), talk(f"Oscar's reply {n}"), done(), emotions=f"mood {n}"),
        }
    )


def test_world_json_round_trip_mid_run(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    _chat_script().install(fake)
    world = _world(gateway, "Lisa", "Oscar", initial_datetime=datetime(2025, 1, 6, 8, 0), step_mode="sequential", seed=3)
    world.make_everyone_accessible()
    world.state.fired_interventions.append("earlier")
    world.run(2, timedelta(minutes=30))

    data = world.to_json()
    restored = TinyWorld.from_json(json.loads(json.dumps(data)), gateway=gateway)
    assert restored.to_json() == data
    assert [a.name for a in restored.agents] == ["Lisa", "Oscar"]
    assert all(a.environment is restored for a in restored.agents)
    assert restored.state.step_mode == "sequential" and restored.state.seed == 3

    calls = fake.calls
    world.run(2, timedelta(minutes=30))
    assert fake.calls > calls
    calls = fake.calls
    restored.run(2, timedelta(minutes=30))
    assert fake.calls == calls, "the restored world should make exactly the original's requests"
    assert restored.to_json() == world.to_json()
    assert restored.step == 4 and restored.current_datetime == datetime(2025, 1, 6, 10, 0)
    assert len(heard(restored.agents[1])) == 4


def _scripted_simulation(fake: FakeOpenAI, root: Path) -> tuple[dict[str, Any], LLMGateway]:
    config = fake_config(fake, root, **{"simulation.consolidate_every": 5})
    gateway = LLMGateway(config)
    world = _world(gateway, "Lisa", "Oscar", initial_datetime=datetime(2025, 1, 6, 8, 0))
    world.make_everyone_accessible()
    world.broadcast("Discuss your weekend plans.")
    world.run(3, timedelta(hours=1))
    return world.to_json(), gateway


def test_rerun_with_a_warm_cache_is_identical_and_free(fake: FakeOpenAI, tmp_path: Path) -> None:
    script = _chat_script()
    script.facts = [["You talked about the weekend."], ["Oscar was thinking a lot."]]
    script.install(fake)
    first, gateway = _scripted_simulation(fake, tmp_path)
    calls, embeddings = fake.calls, fake.embedding_calls
    assert calls >= 6 and embeddings >= 1
    assert any(agent["facts"] for agent in first["agents"])
    assert gateway.ledger.totals()["cache_hits"] == 0

    second, gateway = _scripted_simulation(fake, tmp_path)
    assert second == first
    assert (fake.calls, fake.embedding_calls) == (calls, embeddings)
    assert gateway.ledger.totals()["calls"] == 0 and gateway.ledger.totals()["cache_hits"] == calls


def test_reach_out_without_a_name_tells_the_agent(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": [[reach_out(""), done()]]}).install(fake)
    world = _world(gateway, "Lisa", "Oscar")
    world.run(1)
    lisa, oscar = world.agents
    assert stimuli(lisa, "SOCIAL") == [(1, "Chat Room", "To reach out, name the person you want to reach.")]
    assert lisa.state.accessible == [] and stimuli(oscar, "SOCIAL") == []


def test_reach_out_to_someone_already_in_touch_changes_nothing(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": [[reach_out("Oscar"), done()]]}).install(fake)
    world = _world(gateway, "Lisa", "Oscar")
    world.make_everyone_accessible()
    world.run(1)
    lisa, oscar = world.agents
    assert stimuli(lisa, "SOCIAL") == stimuli(oscar, "SOCIAL") == []
    assert lisa.state.accessible == ["Oscar"] and oscar.state.accessible == ["Lisa"]

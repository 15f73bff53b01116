"""Interventions: fire when their precondition holds, once unless repeat=True."""

from __future__ import annotations

from typing import Any

from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, heard, requests_of_kind, talk, user_text
from troupe import TinyPerson, TinyWorld
from troupe.environment import Intervention
from troupe.llm import LLMGateway


def _news(agent: Any) -> list[int]:
    return [step for step, _, content in heard(agent) if content == "Breaking news!"]


def test_functional_precondition_fires_once_at_the_right_step(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script().install(fake)  # everyone just says DONE
    world = TinyWorld("Office", [TinyPerson("Lisa", gateway=gateway), TinyPerson("Oscar", gateway=gateway)], gateway=gateway)
    seen_steps: list[int] = []

    def precondition(target: TinyWorld) -> bool:
        seen_steps.append(target.step)
        return target.step >= 3

    news = (
        Intervention(world, name="news")
        .set_functional_precondition(precondition)
        .set_effect(lambda target: target.broadcast("Breaking news!"))
    )
    world.add_intervention(news)

    world.run(5)

    assert [_news(agent) for agent in world.agents] == [[3], [3]]
    assert seen_steps == [1, 2, 3]  # checked before each step's turns, never again once fired
    assert world.state.fired_interventions == ["news"]
    # The news is in the agents' prompts from step 3 on: they act after the intervention.
    assert sum("Breaking news!" in user_text(r) for r in fake.requests) == 2 * 3


def test_repeating_intervention_fires_every_time_it_holds(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script().install(fake)
    lisa = TinyPerson("Lisa", gateway=gateway)
    world = TinyWorld("Office", [lisa, TinyPerson("Oscar", gateway=gateway)], gateway=gateway)
    targets: list[Any] = []

    def effect(target: Any) -> None:
        targets.append(target)
        target.listen("Breaking news!")

    world.add_intervention(
        Intervention(lisa, name="nag", repeat=True)
        .set_functional_precondition(lambda target: target.environment.step % 2 == 0)
        .set_effect(effect)
    )
    world.run(5)
    assert _news(lisa) == [2, 4]
    assert _news(world.agents[1]) == []
    assert targets == [lisa, lisa]
    assert world.state.fired_interventions == ["nag"]


def test_textual_precondition_asks_the_llm_and_fires_when_true(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": lambda n: [talk(f"Lisa talks in step {n + 1}"), done()]}, holds=[False, True, True]).install(fake)
    world = TinyWorld("Office", [TinyPerson("Lisa", gateway=gateway), TinyPerson("Oscar", gateway=gateway)], gateway=gateway)
    world.add_intervention(
        Intervention(world, name="alarm")
        .set_textual_precondition("Lisa has spoken at least once.")
        .set_effect(lambda target: target.broadcast("Breaking news!"))
    )

    world.run(4)

    checks = requests_of_kind(fake, "precondition")
    assert len(checks) == 2  # false at step 1, true at step 2, then never asked again
    assert all("Condition: Lisa has spoken at least once." in user_text(c) for c in checks)
    assert "Lisa talks" not in user_text(checks[0])
    assert '[1] Lisa TALK: "Lisa talks in step 1"' in user_text(checks[1])
    assert [_news(agent) for agent in world.agents] == [[2], [2]]
    assert world.state.fired_interventions == ["alarm"]


def test_both_preconditions_must_hold_and_the_llm_is_asked_only_when_needed(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script(holds=[False, True]).install(fake)
    world = TinyWorld("Office", [TinyPerson("Lisa", gateway=gateway)], gateway=gateway)
    fired: list[int] = []
    world.add_intervention(
        Intervention(name="late-and-true", repeat=True)
        .set_functional_precondition(lambda target: target.step >= 3)
        .set_textual_precondition("The meeting is running late.")
        .set_effect(lambda target: fired.append(target.step))
    )
    world.add_intervention(Intervention(name="always").set_effect(lambda target: fired.append(-target.step)))

    world.run(5)

    assert len(requests_of_kind(fake, "precondition")) == 3  # steps 3, 4, 5 only
    assert fired == [-1, 4, 5]
    assert world.state.fired_interventions == ["always", "late-and-true"]


def test_fired_interventions_survive_a_round_trip(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script().install(fake)
    world = TinyWorld("Office", [TinyPerson("Lisa", gateway=gateway)], gateway=gateway)
    world.add_intervention(Intervention(name="once").set_effect(lambda target: target.broadcast("Breaking news!")))
    world.run(1)
    restored = TinyWorld.from_json(world.to_json(), gateway=gateway)
    restored.add_intervention(Intervention(name="once").set_effect(lambda target: target.broadcast("Breaking news!")))
    restored.run(2)
    assert _news(restored.agents[0]) == [1]
    assert restored.state.fired_interventions == ["once"]

"""TinySocialNetwork: relations decide who hears whom and who can be reached."""

from __future__ import annotations

import json

from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, acted, done, heard, reach_out, stimuli, talk, turn_prompts
from troupe import TinyPerson, TinySocialNetwork
from troupe.environment import TinyWorld
from troupe.llm import LLMGateway


def _network(gateway: LLMGateway) -> TinySocialNetwork:
    """Lisa - Oscar are colleagues, Oscar - Marcos friends; Lila knows nobody."""
    lisa, oscar, marcos, lila = (TinyPerson(n, gateway=gateway) for n in ("Lisa", "Oscar", "Marcos", "Lila"))
    network = TinySocialNetwork("Office", gateway=gateway)
    network.add_relation(lisa, oscar, "colleagues").add_relation(oscar, marcos, "friends")
    network.add_agent(lila)
    return network


def test_relations_gate_talk_and_reach_out(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script(
        {
            "Lisa": [[talk("Oscar, lunch?", "Oscar"), talk("Marcos, do you hear me?", "Marcos"), talk("Hello, anyone?"), done()]],
            "Oscar": [[talk("Morning, friends."), done()]],
            "Lila": [[talk("Lisa, can we talk?", "Lisa"), reach_out("Oscar"), talk("Is anybody there?"), done()]],
        }
    ).install(fake)
    network = _network(gateway)
    lisa, oscar, marcos, lila = (network.get_agent_by_name(n) for n in ("Lisa", "Oscar", "Marcos", "Lila"))
    assert network.state.relations == [("Lisa", "Oscar", "colleagues"), ("Oscar", "Marcos", "friends")]

    network.run(1)

    # Related agents talk; a targeted message to an unrelated agent is not delivered.
    assert heard(oscar) == [(1, "Lisa", "Oscar, lunch?"), (1, "Lisa", "Hello, anyone?")]
    assert heard(marcos) == [(1, "Oscar", "Morning, friends.")]  # not Lisa's, not Lila's
    assert heard(lisa) == [(1, "Oscar", "Morning, friends.")]
    assert heard(lila) == []
    assert stimuli(lisa, "SOCIAL") == [(1, "Office", "Marcos cannot hear you: you are not connected.")]
    assert stimuli(lila, "SOCIAL") == [
        (1, "Office", "Lisa cannot hear you: you are not connected."),
        (1, "Office", "Oscar could not be reached."),
    ]
    # The failed REACH_OUT connected nobody; accessibility is exactly the relations.
    assert lila.state.accessible == []
    assert "Lila" not in oscar.state.accessible
    assert lisa.state.accessible == ["Oscar"]
    assert sorted(oscar.state.accessible) == ["Lisa", "Marcos"]
    assert stimuli(oscar, "SOCIAL") == []


def test_prompts_show_relations_and_reach_out_works_between_relations(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Marcos": [[reach_out("Oscar"), done()], [talk("Good to see you, Oscar", "Oscar"), done()]]}).install(fake)
    network = _network(gateway)
    oscar, marcos = network.get_agent_by_name("Oscar"), network.get_agent_by_name("Marcos")

    network.run(2)

    assert network.step == 2
    # Relations are in touch from the start of every step, so reaching out to one changes nothing.
    assert stimuli(marcos, "SOCIAL") == stimuli(oscar, "SOCIAL") == []
    assert heard(oscar) == [(2, "Marcos", "Good to see you, Oscar")]
    # Every step starts from the relations: the prompts show exactly who each agent can reach.
    assert all("People you can talk to: Oscar.\n" in p for p in turn_prompts(fake, "Lisa"))
    assert all("People you can talk to: Lisa, Marcos.\n" in p for p in turn_prompts(fake, "Oscar"))
    assert all("People you can talk to" not in p for p in turn_prompts(fake, "Lila"))
    assert len(turn_prompts(fake, "Lila")) == 2


def test_can_reach_and_related() -> None:
    a, b, c = TinyPerson("A", transcript=False), TinyPerson("B", transcript=False), TinyPerson("C", transcript=False)
    network = TinySocialNetwork("Net").add_relation(a, b)
    network.add_agent(c)
    assert network.related(a, b) and network.related(b, a)
    assert network.can_reach(b, a) and not network.can_reach(a, a)
    assert not network.can_reach(a, c) and not network.can_reach(c, b)
    assert network.audience(a) == [b] and network.audience(c) == []
    network.add_relation(a, b)  # adding a relation twice keeps one
    assert network.state.relations == [("A", "B", "default")] and len(network.agents) == 3
    d, e = TinyPerson("D", transcript=False), TinyPerson("E", transcript=False)
    assert TinyWorld("Plain", [d, e]).audience(d) == [e]  # a plain world has no relations to check


def test_network_round_trips_through_json(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": [[talk("Hi Oscar", "Oscar"), done()]]}).install(fake)
    network = _network(gateway)
    network.run(1)
    data = network.to_json()
    assert data["kind"] == "TinySocialNetwork"
    restored = TinySocialNetwork.from_json(json.loads(json.dumps(data)), gateway=gateway)
    assert isinstance(restored, TinySocialNetwork) and restored.to_json() == data
    lila = restored.get_agent_by_name("Lila")
    assert lila is not None and not restored.can_reach(lila, restored.get_agent_by_name("Lisa"))  # type: ignore[arg-type]
    assert acted(restored.get_agent_by_name("Lisa")) == [("TALK", "Hi Oscar", "Oscar"), ("DONE", "", "")]  # type: ignore[arg-type]

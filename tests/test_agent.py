"""TinyPerson: acting (bounds, guard, DONE, turns), stimuli, state, and TinyTroupe's persona API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.scripted import (
    REPAIR_PREFIX,
    Script,
    acted,
    done,
    is_repair,
    reach_out,
    schema_of,
    talk,
    think,
    turn,
    turn_prompts,
    turn_requests,
)
from troupe import TinyPerson
from troupe.config import Config
from troupe.errors import SpecError
from troupe.examples import example_path, list_examples
from troupe.llm import LLMGateway, LLMStructuredOutputError


def _lisa(fake: FakeOpenAI, tmp_path: Path, **overrides: Any) -> TinyPerson:
    return TinyPerson("Lisa", gateway=LLMGateway(fake_config(fake, tmp_path, **overrides)))


# ----- the action bound -----


def test_max_actions_is_sent_as_max_items(fake: FakeOpenAI, tmp_path: Path) -> None:
    """The bounds reach a grammar-constrained server (llama.cpp's json_object + schema form) as written."""
    Script({"Lisa": [[talk("Hi"), done()]]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.max_actions_per_turn": 3, "llm.structured_output": "json_object_schema"})
    lisa.listen_and_act("Hello there")
    (request,) = turn_requests(fake, "Lisa")
    schema = schema_of(request)
    actions = schema["properties"]["actions"]
    assert (actions["minItems"], actions["maxItems"]) == (1, 3)
    action = schema["$defs"]["Action"]
    assert action["properties"]["type"]["enum"] == ["TALK", "THINK", "REACH_OUT", "DONE"]
    assert action["properties"]["content"]["maxLength"] > 0
    assert action["properties"]["target"]["const"] == ""  # nobody to name yet: USER spoke without a name
    assert "a list of at most 3 actions" in request["messages"][0]["content"]


def test_targets_are_the_people_an_agent_can_name(fake: FakeOpenAI, tmp_path: Path) -> None:
    """Accessible agents, known relations and recent speakers; free text (bounded) when there are too many."""
    Script({"Lisa": [[talk("Hi", "Oscar"), done()], [done()]]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"llm.structured_output": "json_object_schema"})
    lisa.define_several("relationships", [{"name": "Sara", "description": "Your manager."}])
    lisa.make_agent_accessible("Oscar")
    lisa.listen_and_act("Hello", source="Waiter")
    target = schema_of(turn_requests(fake, "Lisa")[0])["$defs"]["Action"]["properties"]["target"]
    assert target["enum"] == ["", "Oscar", "Sara", "Waiter"]
    for i in range(30):
        lisa.make_agent_accessible(f"Person {i}")
    lisa.listen_and_act("And now?", source="Waiter")
    target = schema_of(turn_requests(fake, "Lisa")[1])["$defs"]["Action"]["properties"]["target"]
    assert "enum" not in target and target["maxLength"] > 0


def test_too_many_actions_are_repaired(fake: FakeOpenAI, tmp_path: Path) -> None:
    too_many = [think("one"), think("two"), think("three"), talk("four"), done()]
    Script({"Lisa": [too_many, [talk("Just this"), done()]]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.max_actions_per_turn": 3})

    events = lisa.listen_and_act("Tell me everything", return_actions=True)

    requests = turn_requests(fake, "Lisa", repairs=True)
    assert len(requests) == 2 and is_repair(requests[1]) and not is_repair(requests[0])
    repair = requests[1]["messages"]
    assert json.loads(repair[-2]["content"])["actions"] == too_many  # the rejected reply, sent back
    assert repair[-1]["content"].startswith(REPAIR_PREFIX) and "actions" in repair[-1]["content"]
    assert events is not None and [(e.type, e.content) for e in events] == [("TALK", "Just this"), ("DONE", "")]
    assert acted(lisa) == [("TALK", "Just this", ""), ("DONE", "", "")]


def test_too_many_actions_twice_is_rejected(fake: FakeOpenAI, tmp_path: Path) -> None:
    too_many = [think("one"), think("two"), think("three"), done()]
    Script({"Lisa": [too_many, too_many]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.max_actions_per_turn": 3, "llm.max_resamples": 0})
    with pytest.raises(LLMStructuredOutputError, match="AgentTurn"):
        lisa.listen_and_act("Tell me everything")
    assert fake.calls == 2
    assert acted(lisa) == [] and lisa.state.turns == 0


def test_unknown_action_type_is_not_accepted(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [[{"type": "DANCE", "content": "", "target": ""}], [think("fine"), done()]]}).install(fake)
    lisa = _lisa(fake, tmp_path)
    lisa.act()
    assert acted(lisa) == [("THINK", "fine", ""), ("DONE", "", "")]


# ----- the guard: repetition and DONE -----


def test_repetition_guard_drops_recent_identical_actions(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script(
        {
            "Lisa": [
                [talk("Hello Oscar", "Oscar"), talk("Hello Oscar", "Oscar"), done()],
                [talk("  hello oscar ", "Oscar"), talk("Hello Oscar", "Marcos"), think("He is quiet."), done()],
                [talk("HELLO OSCAR", "Oscar")],
            ]
        }
    ).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.constrain_targets": "false"})  # Oscar and Marcos are only names here
    lisa.act(n=3)
    assert acted(lisa) == [
        ("TALK", "Hello Oscar", "Oscar"),
        ("DONE", "", ""),
        ("TALK", "Hello Oscar", "Marcos"),  # same words to someone else is a different action
        ("THINK", "He is quiet.", ""),
        ("DONE", "", ""),
    ]
    assert lisa.state.turns == 3  # the third turn ran, but everything in it was a repeat


def test_sequence_is_cut_after_done(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [[think("Let me see."), done(), talk("Actually, one more thing"), think("and another")]]}).install(fake)
    lisa = _lisa(fake, tmp_path)
    events = lisa.listen_and_act("Anything else?", return_actions=True)
    assert events is not None and [e.type for e in events] == ["THINK", "DONE"]
    assert acted(lisa) == [("THINK", "Let me see.", ""), ("DONE", "", "")]
    assert fake.calls == 1


# ----- how many turns -----


def test_act_n_makes_exactly_n_calls(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": lambda n: [think(f"thought {n}"), done()]}).install(fake)
    lisa = _lisa(fake, tmp_path)
    lisa.act(n=2)
    assert fake.calls == 2 and lisa.state.turns == 2
    assert acted(lisa) == [("THINK", "thought 0", ""), ("DONE", "", ""), ("THINK", "thought 1", ""), ("DONE", "", "")]
    # The second prompt shows the first turn's actions.
    assert '[0] You THINK: "thought 0"' in turn_prompts(fake, "Lisa")[1]


def test_until_done_stops_after_a_done_turn(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [[think("hmm")], [talk("Got it"), done()], [talk("never asked")]]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.max_turns_until_done": 5})
    lisa.listen_and_act("Do you follow?")
    assert fake.calls == 2
    assert acted(lisa)[-1] == ("DONE", "", "")


def test_until_done_takes_at_most_max_turns(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": lambda n: [think(f"still thinking {n}")]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.max_turns_until_done": 3})
    lisa.listen_and_act("Take your time.")
    assert fake.calls == 3
    assert [c for _, c, _ in acted(lisa)] == ["still thinking 0", "still thinking 1", "still thinking 2"]
    lisa.act(until_done=False)
    assert fake.calls == 4


def test_returned_actions_carry_the_cognitive_state_of_their_own_turn(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [turn(think("Who is there?"), emotions="wary"), turn(talk("Hello!"), done(), emotions="glad")]}).install(fake)
    lisa = _lisa(fake, tmp_path)
    actions = lisa.listen_and_act("Knock knock.", return_actions=True) or []
    assert [(a["action"]["type"], a["cognitive_state"]["emotions"]) for a in actions] == [("THINK", "wary"), ("TALK", "glad"), ("DONE", "glad")]
    assert [a.event for a in actions] == [e for e in lisa.state.episodes if e.direction == "action"]


def test_cognitive_state_is_applied_and_returned_actions_carry_the_call(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [turn(reach_out("Oscar"), done(), goals="Meet Oscar", emotions="Hopeful")]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.constrain_targets": "false"})  # Oscar is only a name here
    events = lisa.think_and_act("I should meet Oscar.", return_actions=True)
    assert lisa.state.cognitive.goals == "Meet Oscar" and lisa.state.cognitive.emotions == "Hopeful"
    assert events is not None and len({e.call_key for e in events}) == 1 and events[0].call_key
    # Without an environment, REACH_OUT simply makes the person accessible.
    assert lisa.state.accessible == ["Oscar"]
    assert lisa.act(return_actions=False) is None


def test_stimuli_are_recorded_with_their_source(fake: FakeOpenAI, tmp_path: Path) -> None:
    lisa = _lisa(fake, tmp_path)
    oscar = TinyPerson("Oscar", transcript=False)
    lisa.listen("Hi!", oscar).see("A sunny office.").socialize("Oscar is new here.", "HR").think("Be kind.")
    assert [(e.type, e.source, e.content) for e in lisa.state.episodes] == [
        ("CONVERSATION", "Oscar", "Hi!"),
        ("VISUAL", "", "A sunny office."),
        ("SOCIAL", "HR", "Oscar is new here."),
        ("THOUGHT", "Lisa", "Be kind."),
    ]
    assert all(e.direction == "stimulus" and e.agent == "Lisa" for e in lisa.state.episodes)
    assert lisa.make_agent_accessible(oscar).make_agent_accessible("Lisa").state.accessible == ["Oscar"]
    assert lisa.make_agent_inaccessible("Oscar").state.accessible == []
    assert "Oscar --> Lisa: [CONVERSATION]" in lisa.pretty_current_interactions()
    assert fake.calls == 0


def test_agent_json_round_trip(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [turn(talk("Hi"), done(), goals="Chat")]}).install(fake)
    lisa = _lisa(fake, tmp_path)
    lisa.define("age", 28).listen_and_act("Hello")
    data = json.loads(json.dumps(lisa.to_json()))
    copy = TinyPerson.from_json(data, gateway=lisa.gateway)
    assert copy.to_json() == lisa.to_json()
    assert copy.name == "Lisa" and copy.get("age") == 28 and copy.state.cognitive.goals == "Chat"
    assert copy.prompt_messages() == lisa.prompt_messages()


# ----- TinyTroupe's persona API and shipped files -----


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield path, item
    else:
        yield path, value


def _at(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@pytest.mark.parametrize("path", list_examples("agents"), ids=lambda p: p.name)
def test_every_shipped_agent_loads(path: Path) -> None:
    persona = json.loads(path.read_text(encoding="utf-8"))["persona"]
    agent = TinyPerson.load_specification(path, transcript=False)
    assert agent.name == persona["name"]
    assert agent.state.persona.to_dict() == persona
    system = agent.prompt_messages()[0]["content"]
    assert system.startswith(f"You are {persona['name']}, a person in a simulation.")
    assert f"age: {persona['age']}" in system
    renamed = TinyPerson.load_specification(path, new_agent_name="Someone Else", transcript=False)
    assert renamed.name == "Someone Else" and renamed.get("age") == persona["age"]


@pytest.mark.parametrize("path", list_examples("fragments"), ids=lambda p: p.name)
def test_every_shipped_fragment_imports(path: Path) -> None:
    fragment = json.loads(path.read_text(encoding="utf-8"))["persona"]
    agent = TinyPerson.load_specification(example_path("agents", "Oscar"), transcript=False)
    before = json.dumps(agent.state.persona.to_dict())
    assert agent.import_fragment(path) is agent
    assert json.dumps(agent.state.persona.to_dict()) != before
    for where, item in _leaves(fragment):
        value = _at(agent.state.persona.to_dict(), where)
        assert item in value if isinstance(value, list) else item == value
    assert agent.name == "Oscar"


def test_import_fragment_refuses_a_whole_agent() -> None:
    with pytest.raises(SpecError, match="Fragment"):
        TinyPerson("Lisa", transcript=False).import_fragment(example_path("agents", "Lisa"))


def test_define_api_and_save_specification_round_trip(tmp_path: Path) -> None:
    lisa = TinyPerson("Lisa", transcript=False)
    lisa.define("age", 28)
    lisa.define("nationality", "Canadian")
    lisa.define("occupation", "Data Scientist")
    lisa.define_several("personality_traits", [{"trait": "You are curious."}, {"trait": "You love to help."}])
    lisa.define("routine", "You walk to work.", group="routines")
    assert lisa.get("age") == 28 and lisa.get("occupation") == "Data Scientist"
    assert lisa.get("personality.traits") == ["You are curious.", "You love to help."]
    assert lisa.get("behaviors.routines.general") == ["You walk to work."]
    assert lisa.get("missing.key", "n/a") == "n/a"
    assert lisa.minibio().startswith("Lisa is a 28-year-old Canadian Data Scientist.")
    system = lisa.prompt_messages()[0]["content"]
    assert "age: 28\nnationality: Canadian\noccupation: Data Scientist\n" in system
    assert "personality.traits: You are curious.; You love to help." in system

    path = tmp_path / "lisa.agent.json"
    lisa.save_specification(path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"type": "TinyPerson", "persona": lisa.state.persona.to_dict()}
    again = TinyPerson.load_specification(path, transcript=False)
    assert again.state.persona == lisa.state.persona
    again.save_specification(tmp_path / "again.agent.json")
    assert (tmp_path / "again.agent.json").read_bytes() == path.read_bytes()


def test_shipped_agent_saves_byte_for_byte(tmp_path: Path) -> None:
    source = example_path("agents", "Lisa")
    TinyPerson.load_specification(source, transcript=False).save_specification(tmp_path / "Lisa.agent.json")
    assert json.loads((tmp_path / "Lisa.agent.json").read_text(encoding="utf-8")) == json.loads(source.read_text(encoding="utf-8"))


def test_persona_outline_is_cut_to_persona_max_items(fake: FakeOpenAI, tmp_path: Path) -> None:
    config = fake_config(fake, tmp_path, **{"simulation.persona_max_items": 2})
    lisa = TinyPerson.load_specification(example_path("agents", "Lisa"), config=config, transcript=False)
    skills = lisa.get("skills")
    system = lisa.prompt_messages()[0]["content"]
    assert f"skills: {skills[0]}; {skills[1]} (+{len(skills) - 2} more)" in system
    assert skills[2] not in system


def test_the_whole_persona_is_shown_by_default_as_in_tinytroupe(fake: FakeOpenAI, config: Config) -> None:
    lisa = TinyPerson.load_specification(example_path("agents", "Lisa"), config=config, transcript=False)
    system = lisa.prompt_messages()[0]["content"]
    lists = [lisa.get("personality.traits"), lisa.get("preferences.interests"), lisa.get("behaviors.general")]
    assert all(len(items) > 3 for items in lists)  # longer than the 3-item cap troupe used to apply
    for items in lists:
        assert all(item in system for item in items)
    assert " more)" not in system


def test_tinytroupe_state_api(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [[think("Noted."), done()]]}).install(fake)
    lisa = _lisa(fake, tmp_path)
    lisa.listen_and_act("Remember the meeting at noon.")
    state = lisa.encode_complete_state()
    assert state == lisa.to_json()
    other = _lisa(fake, tmp_path).decode_complete_state(state)
    assert other.to_json() == state and other.state is not lisa.state
    assert "Remember the meeting at noon." in other.pretty_current_interactions()


def test_strict_json_schema_keeps_the_bound_in_validation(fake: FakeOpenAI, tmp_path: Path) -> None:
    """OpenAI's strict form carries no maxItems, so the bound is enforced when the reply is validated."""
    too_many = [think("one"), think("two"), think("three"), talk("four"), done()]
    Script({"Lisa": [too_many, [talk("Just this"), done()]]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.max_actions_per_turn": 3})
    lisa.listen_and_act("Hello")
    first, repair = turn_requests(fake, "Lisa", repairs=True)
    sent = first["response_format"]["json_schema"]
    assert sent["strict"] is True and "maxItems" not in sent["schema"]["properties"]["actions"]
    assert acted(lisa) == [("TALK", "Just this", ""), ("DONE", "", "")]


class _Notepad:
    """A tool: adds a WRITE_NOTE action and keeps what the agent writes."""

    actions = {"WRITE_NOTE": "write a note to yourself; content = the note"}

    def __init__(self) -> None:
        self.notes: list[str] = []

    async def handle(self, agent: TinyPerson, action: Any) -> None:
        self.notes.append(f"{agent.name}: {action.content}")


def test_faculties_add_action_types_and_handle_them(fake: FakeOpenAI, tmp_path: Path) -> None:
    note = {"type": "WRITE_NOTE", "content": "Buy milk.", "target": ""}
    Script({"Lisa": [[note, talk("Done with my notes."), done()]]}).install(fake)
    notepad = _Notepad()
    lisa = TinyPerson("Lisa", gateway=LLMGateway(fake_config(fake, tmp_path)), faculties=[notepad])
    lisa.listen_and_act("Anything to remember?")
    (request,) = turn_requests(fake, "Lisa")
    assert schema_of(request)["$defs"]["Action"]["properties"]["type"]["enum"] == ["TALK", "THINK", "REACH_OUT", "WRITE_NOTE", "DONE"]
    assert "- WRITE_NOTE: write a note to yourself" in request["messages"][0]["content"]
    assert notepad.notes == ["Lisa: Buy milk."]
    assert acted(lisa)[0] == ("WRITE_NOTE", "Buy milk.", "")


def test_done_is_recorded_without_content_or_target(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [[think("All set."), {"type": "DONE", "content": "Bye now.", "target": "Oscar"}]]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.constrain_targets": "false"})
    lisa.listen_and_act("Anything else?")
    assert acted(lisa) == [("THINK", "All set.", ""), ("DONE", "", "")]

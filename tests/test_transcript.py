"""The transcript: TinyTroupe's readable log, compared with a stored example."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, talk, think
from troupe import TinyPerson, TinyWorld
from troupe.agent.state import Event
from troupe.environment import Intervention
from troupe.llm import LLMGateway
from troupe.transcript import Transcript, event_lines

EXAMPLE = Path(__file__).parent / "data" / "transcript_example.txt"


def _chat(fake: FakeOpenAI, gateway: LLMGateway, transcript: Transcript | bool) -> TinyWorld:
    Script(
        {
            "Lisa": [
                [talk("Hi Oscar! What are you working on these days?", "Oscar"), done()],
                [think("Libraries, how lovely."), talk("That sounds wonderful."), done()],
            ],
            "Oscar": [
                [talk("Hello, everyone. I am Oscar, an architect."), done()],
                [
                    talk(
                        "A public library in Lisbon, designed for quiet reading, with daylight coming in "
                        "from the south facade all afternoon.",
                        "Lisa",
                    ),
                    done(),
                ],
            ],
        }
    ).install(fake)
    lisa = TinyPerson("Lisa", gateway=gateway)
    oscar = TinyPerson("Oscar", gateway=gateway)
    world = TinyWorld("Chat Room", [lisa, oscar], datetime(2025, 3, 3, 9, 0), gateway=gateway, transcript=transcript)
    world.make_everyone_accessible()
    world.add_intervention(Intervention(name="coffee").set_functional_precondition(lambda w: w.step == 2).set_effect(
        lambda w: w.broadcast_context_change("Coffee is served.")
    ))  # fmt: skip
    world.broadcast("Please introduce yourselves.")
    world.run(2)
    return world


def test_transcript_matches_the_stored_example(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    transcript = Transcript.recording(width=100)
    world = _chat(fake, gateway, transcript)
    assert transcript.text() == EXAMPLE.read_text(encoding="utf-8")
    # Agents print to the world's transcript once they join it.
    assert all(agent.transcript is transcript for agent in world.agents)


def test_disabled_transcript_prints_nothing(fake: FakeOpenAI, gateway: LLMGateway, capsys: pytest.CaptureFixture[str]) -> None:
    _chat(fake, gateway, False)
    assert capsys.readouterr().out == ""
    _chat(fake, gateway, True)  # the same run, printed: proves the capture would have seen it
    out = capsys.readouterr().out
    assert "Lisa acts: [TALK] -> Oscar" in out and "Chat Room step 1 of 2" in out


def test_default_transcript_follows_the_configuration(fake: FakeOpenAI, gateway: LLMGateway, capsys: pytest.CaptureFixture[str]) -> None:
    assert gateway.config.simulation.transcript is False
    lisa = TinyPerson("Lisa", gateway=gateway)
    lisa.listen("Hi")
    TinyWorld("Quiet", [TinyPerson("Oscar", gateway=gateway)], gateway=gateway).broadcast("Hello")
    assert capsys.readouterr().out == ""


def test_event_lines() -> None:
    said = Event(agent="Lisa", direction="stimulus", type="CONVERSATION", source="Oscar", content="Hi")
    assert event_lines(said) == ("Oscar --> Lisa: [CONVERSATION]", "          > Hi")
    told = Event(agent="Lisa", direction="stimulus", type="CONVERSATION", content="Welcome")
    assert event_lines(told)[0] == "USER --> Lisa: [CONVERSATION]"
    finished = Event(agent="Lisa", direction="action", type="DONE")
    assert event_lines(finished) == ("Lisa acts: [DONE]", "")
    long = Event(agent="Lisa", direction="action", type="TALK", target="Oscar", content="word " * 30)
    header, quoted = event_lines(long)
    assert header == "Lisa acts: [TALK] -> Oscar"
    lines = quoted.split("\n")
    assert len(lines) == 2 and lines[0].startswith("          > word") and lines[1].startswith("            word")

"""Memory: the episode window in the prompt, consolidation into embedded facts, and recall."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fake_config
from tests.fake_openai import EMBEDDING_DIMENSIONS, FakeOpenAI, _embed
from tests.scripted import Script, done, requests_of_kind, talk, turn_prompts, user_text
from troupe import TinyPerson
from troupe.agent import memory
from troupe.agent.state import AgentState, Event
from troupe.llm import LLMGateway, loop


def _lisa(fake: FakeOpenAI, tmp_path: Path, **overrides: Any) -> TinyPerson:
    return TinyPerson("Lisa", gateway=LLMGateway(fake_config(fake, tmp_path, **overrides)))


def _round(lisa: TinyPerson, n: int) -> None:
    """One stimulus and one turn (TALK + DONE): three new events."""
    lisa.listen(f"Question number {n}?", "Oscar")
    lisa.act()


def test_episode_window_in_the_prompt(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": [[talk("Enough messages!"), done()]]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.episode_prefix": 2, "simulation.episode_window": 3})
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    for word in words:
        lisa.listen(f"message {word}", "Oscar")

    lisa.act()

    (prompt,) = turn_prompts(fake, "Lisa")
    history = prompt.split("What has happened (oldest first):\n", 1)[1]
    assert history == (
        '[0] Oscar said: "message one"\n'
        '[0] Oscar said: "message two"\n'
        "(... 3 earlier events not shown ...)\n"
        '[0] Oscar said: "message six"\n'
        '[0] Oscar said: "message seven"\n'
        '[0] Oscar said: "message eight"\n'
        "\n"
        "Act now as Lisa: what do you make of what Oscar said, and what do you say back?"
    )
    # All events stay in the state; only the prompt is windowed.
    assert len(lisa.state.episodes) == 8 + 2


def test_episode_window_edges() -> None:
    state = AgentState(persona={"name": "Lisa"})
    state.episodes = [Event(agent="Lisa", direction="stimulus", type="CONVERSATION", content=str(i)) for i in range(6)]
    short = memory.episode_window(state, 2, 4)
    assert (short.prefix, short.omitted, [e.content for e in short.recent]) == ([], 0, ["0", "1", "2", "3", "4", "5"])
    cut = memory.episode_window(state, 1, 2)
    assert ([e.content for e in cut.prefix], cut.omitted, [e.content for e in cut.recent]) == (["0"], 3, ["4", "5"])
    none_recent = memory.episode_window(state, 2, 0)
    assert ([e.content for e in none_recent.prefix], none_recent.omitted, none_recent.recent) == (["0", "1"], 4, [])


def test_consolidation_every_n_events_produces_embedded_facts(fake: FakeOpenAI, tmp_path: Path) -> None:
    script = Script(
        {"Lisa": lambda n: [talk(f"Answer number {n}"), done()]},
        facts=[["You answered two questions from Oscar."], ["Oscar keeps asking questions.", "You stay patient."]],
    ).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.consolidate_every": 4})

    _round(lisa, 1)  # 3 events: not yet
    assert requests_of_kind(fake, "consolidation") == [] and lisa.state.facts == []
    _round(lisa, 2)  # 6 events: consolidate all six
    assert len(requests_of_kind(fake, "consolidation")) == 1
    assert lisa.state.consolidated_upto == 6
    _round(lisa, 3)  # 3 new: not yet
    assert len(requests_of_kind(fake, "consolidation")) == 1
    _round(lisa, 4)  # 6 new: consolidate again
    assert script.kinds["consolidation"] == 2
    assert lisa.state.consolidated_upto == 12

    texts = [f.text for f in lisa.state.facts]
    assert texts == ["You answered two questions from Oscar.", "Oscar keeps asking questions.", "You stay patient."]
    for fact in lisa.state.facts:
        assert fact.embedding is not None and len(fact.embedding) == EMBEDDING_DIMENSIONS
        assert fact.embedding == pytest.approx(_embed(fact.text), abs=1e-6)
        assert math.isclose(math.fsum(x * x for x in fact.embedding), 1.0, rel_tol=1e-5)
    # Each consolidation summarises exactly the events since the previous one.
    first, second = (user_text(r) for r in requests_of_kind(fake, "consolidation"))
    assert '"Question number 1?"' in first and '"Answer number 1"' in first and "Question number 3" not in first
    assert "Question number 2" not in second and '"Question number 3?"' in second and '"Answer number 3"' in second
    assert first.startswith("Events to summarise:\n[0] Oscar said: \"Question number 1?\"\n[0] You TALK: \"Answer number 0\"")
    # Embeddings: one request per consolidation, one per turn that recalled (rounds 3 and 4).
    assert fake.embedding_calls == 4


def test_no_consolidation_when_disabled(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script({"Lisa": lambda n: [talk(f"Answer number {n}"), done()]}).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.consolidate_every": 0})
    for n in range(1, 6):
        _round(lisa, n)
    assert len(lisa.state.episodes) == 15
    assert requests_of_kind(fake, "consolidation") == []
    assert lisa.state.facts == [] and lisa.state.consolidated_upto == 0
    assert fake.embedding_calls == 0
    assert all("You remember:" not in p for p in turn_prompts(fake, "Lisa"))


def test_recall_puts_the_most_similar_fact_into_the_prompt(fake: FakeOpenAI, tmp_path: Path) -> None:
    Script(
        {"Lisa": lambda n: [talk(f"Reply {n}"), done()]},
        facts=[["You love strong coffee in the morning.", "Oscar designs libraries in Lisbon."]],
    ).install(fake)
    lisa = _lisa(fake, tmp_path, **{"simulation.consolidate_every": 3, "simulation.recall_top_k": 1})
    lisa.listen("Tell me about your day.", "Oscar")
    lisa.act()  # 3 events: consolidated into the two facts
    assert [f.text for f in lisa.state.facts] == ["You love strong coffee in the morning.", "Oscar designs libraries in Lisbon."]

    lisa.listen("Would you like some coffee this morning?", "Oscar")
    lisa.act()
    lisa.listen("Which libraries did Oscar design in Lisbon?", "Marcos")
    lisa.act()

    first, coffee, libraries = turn_prompts(fake, "Lisa")
    assert "You remember:" not in first
    assert "You remember:\n- You love strong coffee in the morning.\n\n" in coffee
    assert "Oscar designs libraries" not in coffee
    assert "You remember:\n- Oscar designs libraries in Lisbon.\n\n" in libraries
    assert "strong coffee" not in libraries


def test_recall_ranks_by_similarity(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    state = AgentState(persona={"name": "Lisa"})
    texts = ["Cats sleep all day.", "The harbor is full of boats.", "Boats leave the harbor at dawn."]
    state.facts = [memory.Fact(text=t, embedding=v) for t, v in zip(texts, gateway.embed(texts))]
    state.facts.append(memory.Fact(text="Not embedded yet, boats harbor."))

    async def recall(query: str, k: int) -> list[str]:
        return await memory.recall(state, gateway, query, k)

    assert loop.run_sync(recall("boats in the harbor", 2)) == ["The harbor is full of boats.", "Boats leave the harbor at dawn."]
    assert loop.run_sync(recall("sleepy cats", 3))[0] == "Cats sleep all day."
    assert loop.run_sync(recall("   ", 3)) == []
    assert loop.run_sync(recall("cats", 0)) == []

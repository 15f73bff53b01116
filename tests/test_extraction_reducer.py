"""TinyTroupe's ResultsReducer: rules per event type turn episodes into polars rows (no LLM call)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from troupe import TinyPerson, TinyWorld
from troupe.config import Config
from troupe.extraction import ResultsReducer


def said(focus_agent: Any, source_agent: Any, target_agent: Any, kind: str, event: str, content: str, timestamp: Any) -> dict[str, Any]:
    return {"listener": focus_agent.name, "speaker": source_agent.name if source_agent else None, "kind": kind, "content": content}


def test_rules_reduce_an_agents_events_to_a_dataframe(config: Config) -> None:
    lisa = TinyPerson("Lisa", config=config, transcript=False)
    oscar = TinyPerson("Oscar", config=config, transcript=False)
    TinyWorld("Room", [lisa, oscar], config=config, transcript=False)
    lisa.listen("Hello Lisa.", source=oscar)
    lisa.think("Oscar seems tired.")
    lisa.listen("Anyone there?", source="Stranger")
    reducer = ResultsReducer()
    reducer.add_reduction_rule("CONVERSATION", said)
    reducer.add_reduction_rule("THINK", lambda **kw: None)  # a rule may drop an event
    frame = reducer.reduce_agent_to_dataframe(lisa)
    assert isinstance(frame, pl.DataFrame)
    assert frame.to_dicts() == [
        {"listener": "Lisa", "speaker": "Oscar", "kind": "stimulus", "content": "Hello Lisa."},
        {"listener": "Lisa", "speaker": None, "kind": "stimulus", "content": "Anyone there?"},  # not in the world
    ]
    assert reducer.reduce_agent_to_dataframe(lisa, column_names=["content"]).columns == ["content"]
    assert len(reducer.results["Lisa"]) == 2


def test_rows_may_be_tuples_named_by_columns(config: Config) -> None:
    lisa = TinyPerson("Lisa", config=config, transcript=False)
    lisa.think("One.").think("Two.")
    reducer = ResultsReducer().add_reduction_rule("THOUGHT", lambda **kw: (kw["focus_agent"].name, kw["content"]))
    frame = reducer.reduce_agent_to_dataframe(lisa, column_names=["agent", "thought"])
    assert frame.rows() == [("Lisa", "One."), ("Lisa", "Two.")]


def test_a_world_reduces_agent_by_agent(config: Config) -> None:
    ana, ben = (TinyPerson(n, config=config, transcript=False) for n in ("Ana", "Ben"))
    world = TinyWorld("Street", [ana, ben], config=config, transcript=False)
    world.broadcast("The bakery opens tomorrow.")
    reducer = ResultsReducer().add_reduction_rule("CONVERSATION", lambda **kw: {"content": kw["content"]})
    frame = reducer.reduce_world_to_dataframe(world)
    assert frame.to_dicts() == [{"agent": "Ana", "content": "The bakery opens tomorrow."}, {"agent": "Ben", "content": "The bakery opens tomorrow."}]


def test_one_rule_per_event_type() -> None:
    reducer = ResultsReducer().add_reduction_rule("TALK", said)
    with pytest.raises(ValueError, match="rule for 'TALK' already exists"):
        reducer.add_reduction_rule("TALK", said)

"""Multiple-choice options in a seeded, blinded order per respondent, stored by their real names (against the fake server)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from tests.fake_openai import FakeOpenAI
from tests.scripted import schema_of, user_text
from troupe.llm import LLMGateway
from troupe.survey import MultipleChoice, Survey

ADS = MultipleChoice(
    id="ad", text="Which ad makes you want the product?", options=["control", "treatment_1", "treatment_2"],
    descriptions=["Ad one: a family at breakfast.", "Ad two: a climber on a cliff.", "Ad three: a dog steals a sandwich."],
    shuffle=True, blind=True, seed=7, why=True,
)
PEOPLE = [{"name": f"Viewer {i}", "age": 30 + i} for i in range(12)]


def picks_ad_two(body: dict[str, Any]) -> dict[str, Any]:
    """Answers with whichever letter the prompt put in front of "Ad two"."""
    letter = re.search(r"([A-C]) = Ad two", user_text(body))[1]
    return {"ad": {"answer": letter, "why": "Climbing."}}


def shown_order(body: dict[str, Any]) -> list[str]:
    return re.findall(r"[A-C] = Ad (\w+):", user_text(body))


def test_each_respondent_sees_a_seeded_blinded_order_and_the_answer_is_stored_unblinded(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.responder = picks_ad_two
    rows = Survey([ADS]).ask(PEOPLE, gateway=gateway)
    assert [r.answer for r in rows] == ["treatment_1"] * len(PEOPLE)  # the real option behind each person's letter
    assert all(schema_of(b)["$defs"]["Answer_ad"]["properties"]["answer"]["enum"] == ["A", "B", "C"] for b in fake.requests)
    assert all("control" not in user_text(b) and "treatment" not in user_text(b) for b in fake.requests)  # blind
    orders = {tuple(shown_order(b)) for b in fake.requests}
    assert len(orders) > 2 and all(sorted(o) == ["one", "three", "two"] for o in orders)  # shuffled per person
    fake.reset()
    assert Survey([ADS]).ask(PEOPLE, gateway=gateway) == rows
    assert fake.calls == 0  # seeded: the same orders make the same prompts, all answered by the call cache


def test_unshuffled_questions_are_asked_as_written(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    plain = ADS.model_copy(update={"shuffle": False, "blind": False})
    assert plain.for_respondent("anyone") is plain
    Survey([plain]).ask(PEOPLE[:1], gateway=gateway)
    assert "Pick one of: control = Ad one: a family at breakfast.; treatment_1 = Ad two" in user_text(fake.requests[0])


def test_descriptions_must_match_the_options() -> None:
    with pytest.raises(ValidationError, match="one description per option"):
        MultipleChoice(id="x", text="?", options=["a", "b"], descriptions=["only one"])

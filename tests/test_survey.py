"""Surveys against the fake OpenAI server: typed questions, valid rows only, re-asking, memory."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.scripted import is_repair, user_text
from tests.survey_replies import valid_picks
from troupe import TinyPerson
from troupe.llm import LLMGateway
from troupe.survey import (
    AnswerRow,
    Checkbox,
    FreeText,
    Likert,
    MultipleChoice,
    Numeric,
    Rank,
    Survey,
    SurveyError,
    YesNo,
    answers_schema,
    answers_table,
    ask_shard,
)

AD = MultipleChoice(id="ad", text="Which ad would make you visit the bakery?", options=("Fresh bread", "Half price", "Local flour"))
LIKE = Likert(id="like", text="How much do you like the new bakery?", scale=(1, 7), why=True)
PAY = Numeric(id="pay", text="How many euros would you pay for a loaf?", min=0.5, max=9)


def personas(n: int) -> list[dict[str, Any]]:
    return [{"name": f"Person {i:02d}", "age": 20 + i, "occupation": {"title": "baker" if i % 2 else "nurse"}} for i in range(n)]


def check_valid(row: AnswerRow, survey: Survey) -> None:
    """Every answer column agrees with its question's limits."""
    question = next(q for q in survey.questions if q.id == row.question_id)
    assert row.question_type == question.type and row.answer
    if isinstance(question, MultipleChoice):
        assert row.answer in question.options and row.answer_number is None and row.answer_list is None
    elif isinstance(question, Likert):
        assert row.answer_number is not None and row.answer_number.is_integer()
        assert question.scale[0] <= row.answer_number <= question.scale[1]
        assert row.why  # asked for
    elif isinstance(question, Numeric):
        assert row.answer_number is not None and question.min <= row.answer_number <= question.max  # type: ignore[operator]
    elif isinstance(question, Checkbox):
        assert row.answer_list is not None and len(set(row.answer_list)) == len(row.answer_list)
        assert question.min_picks <= len(row.answer_list) <= question.top and set(row.answer_list) <= set(question.options)
    elif isinstance(question, Rank):
        assert row.answer_list is not None and sorted(row.answer_list) == sorted(question.options)
    elif isinstance(question, YesNo):
        assert row.answer in ("Yes", "No")
    else:
        assert isinstance(question, FreeText) and len(row.answer) <= question.max_length


@pytest.fixture
def full_schema_gateway(fake: FakeOpenAI, tmp_path: Path) -> LLMGateway:
    """A gateway that sends the whole JSON schema (as to llama.cpp), bounds included.

    The default ``json_schema`` mode sends OpenAI's strict form, which drops ``minimum`` and
    ``maximum``; the fake then draws numbers from 0-100 (test_bounds_survive_strict_mode covers
    what survives there).
    """
    return LLMGateway(fake_config(fake, tmp_path, **{"llm.structured_output": "json_object_schema"}))


def test_three_questions_by_fifty_personas_give_150_valid_typed_rows(fake: FakeOpenAI, full_schema_gateway: LLMGateway) -> None:
    survey = Survey([AD, LIKE, PAY])
    rows = survey.ask(personas(50), gateway=full_schema_gateway)
    assert len(rows) == 150 and all(isinstance(r, AnswerRow) for r in rows)
    assert fake.calls == 50  # the three questions go together, one call per persona
    for row in rows:
        check_valid(row, survey)
    assert [(r.agent, r.question_id) for r in rows[:3]] == [("Person 00", "ad"), ("Person 00", "like"), ("Person 00", "pay")]
    assert len({r.answer for r in rows if r.question_id == "ad"}) > 1  # answers differ between personas
    assert all(re.fullmatch(r"[0-9a-f]{16}", r.persona_id) for r in rows) and len({r.persona_id for r in rows}) == 50
    table = answers_table(rows)
    assert table.schema == answers_schema() and table.num_rows == 150
    # A rerun is answered by the call cache: same rows, no call.
    assert survey.ask(personas(50), gateway=full_schema_gateway) == rows and fake.calls == 50


def test_bounds_survive_strict_mode(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    """In OpenAI's strict form the options and the Likert points travel as enums, so they still bind."""
    rows = Survey([AD, LIKE]).ask(personas(10), gateway=gateway)
    sent = fake.requests[0]["response_format"]["json_schema"]
    assert sent["strict"] is True
    assert '"enum": [1, 2, 3, 4, 5, 6, 7]' in json.dumps(sent["schema"])
    assert len(rows) == 20 and fake.calls == 10  # no repair was needed
    for row in rows:
        check_valid(row, Survey([AD, LIKE]))


class Planted:
    """Answers 'ad' with an option that does not exist for the first ``bad`` requests, then defers to the fake."""

    def __init__(self, bad: int) -> None:
        self.bad = bad
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            self.seen.append(body)
            planted = len(self.seen) <= self.bad
        if planted:
            return {"ad": {"answer": "Free coffee"}, "like": {"answer": 9, "why": "planted"}}
        return None


def test_an_invalid_answer_is_reasked_and_never_stored(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    planted = Planted(bad=2)  # the first reply and its repair are invalid
    fake.responder = planted
    survey = Survey([AD, LIKE])
    rows = survey.ask(personas(1), gateway=gateway)
    assert fake.calls == 3  # reply, repair, then a new sample
    assert not is_repair(planted.seen[0]) and is_repair(planted.seen[1]) and not is_repair(planted.seen[2])
    assert planted.seen[2]["seed"] != planted.seen[0]["seed"]  # a new sample, not the cached failure
    assert len(rows) == 2
    for row in rows:
        check_valid(row, survey)
    assert "Free coffee" not in {r.answer for r in rows} and "planted" not in {r.why for r in rows}


def test_a_repaired_answer_needs_no_reask(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.responder = Planted(bad=1)
    rows = Survey([AD, LIKE]).ask(personas(1), gateway=gateway)
    assert fake.calls == 2 and rows[0].answer in AD.options


def test_answers_that_stay_invalid_fail_or_are_skipped(fake: FakeOpenAI, tmp_path: Path) -> None:
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.max_resamples": 1}))
    fake.responder = Planted(bad=1000)
    with pytest.raises(SurveyError, match=r"^Person 00: no valid answer to ad, like; SurveyReply: .* one repair round and 1 resamples"):
        Survey([AD, LIKE]).ask(personas(1), gateway=gateway)
    assert fake.calls == 4  # two samples, each with its repair
    assert Survey([AD, LIKE], on_invalid="skip").ask(personas(2), gateway=gateway) == []
    assert fake.calls == 4 + 8


def test_every_question_type_asked_one_at_a_time(fake: FakeOpenAI, full_schema_gateway: LLMGateway) -> None:
    fake.responder = valid_picks
    survey = Survey(
        [
            AD,
            Checkbox(id="days", text="Which days do you buy bread?", options=("Mon", "Wed", "Fri", "Sun"), min_picks=1, max_picks=2),
            LIKE,
            PAY,
            Rank(id="order", text="Rank these breads.", options=("Rye", "Sourdough", "Baguette")),
            YesNo(id="visit", text="Will you visit this week?"),
            FreeText(id="wish", text="What should the bakery sell?", max_length=120),
        ],
        together=False,
    )
    rows = survey.ask(personas(4), gateway=full_schema_gateway)
    assert fake.calls == 4 * 7 and len(rows) == 28
    assert [r.question_id for r in rows[:7]] == ["ad", "days", "like", "pay", "order", "visit", "wish"]
    for row in rows:
        check_valid(row, survey)
    order = next(r for r in rows if r.question_id == "order")
    assert order.answer == " > ".join(order.answer_list or [])


def test_likert_labels_are_the_answer_text(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    labelled = Likert(id="agree", text="The bakery is good.", scale=(1, 3), labels={1: "Disagree", 2: "Neutral", 3: "Agree"})
    rows = Survey([labelled]).ask(personas(6), gateway=gateway)
    assert all(r.answer == labelled.labels[int(r.answer_number) - 1] for r in rows)  # type: ignore[index, arg-type]
    assert "1 = Disagree; 2 = Neutral; 3 = Agree" in user_text(fake.requests[0])


def test_answers_come_from_the_persona_and_its_memory(fake: FakeOpenAI, config: Any) -> None:
    lisa = TinyPerson("Lisa", config=config, transcript=False).define("occupation", "data scientist")
    lisa.listen("The bakery on Elm Street burned its bread again today.", source="Oscar")
    rows = Survey([AD]).ask([lisa])
    assert len(rows) == 1 and rows[0].agent == "Lisa"
    system, user = (m["content"] for m in fake.requests[0]["messages"])
    assert system.startswith("You are Lisa, answering a survey.") and "occupation: data scientist" in system
    assert 'Oscar said: "The bakery on Elm Street burned its bread again today."' in user
    assert "Which ad would make you visit the bakery?" in user and "Fresh bread; Half price; Local flour" in user


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ({"id": "a", "type": "multiple_choice", "text": "t", "options": ["only"]}, "at least 2 items"),
        ({"id": "a", "type": "multiple_choice", "text": "t", "options": ["x", "x"]}, "distinct"),
        ({"id": "a", "type": "likert", "text": "t", "scale": [1, 5], "labels": ["a", "b"]}, "2 given for the 5 points"),
        ({"id": "a", "type": "likert", "text": "t", "scale": [5, 1]}, "low end must be below"),
        ({"id": "a", "type": "checkbox", "text": "t", "options": ["x", "y"], "max_picks": 3}, "max_picks <= 2"),
        ({"id": "a", "type": "rank", "text": "t", "options": ["x", "y"], "picks": 3}, "more than the 2 options"),
        ({"id": "a b", "type": "yes_no", "text": "t"}, "should match pattern"),
        ({"id": "a", "type": "slider", "text": "t"}, "does not match any of the expected tags"),
    ],
)
def test_bad_questions_are_rejected(question: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Survey([question])


def test_question_ids_are_unique() -> None:
    with pytest.raises(ValidationError, match="repeated: ad"):
        Survey([AD, AD])


def test_a_shard_returns_rows_calls_and_the_respondents_that_failed(fake: FakeOpenAI, tmp_path: Path) -> None:
    config = fake_config(fake, tmp_path, **{"llm.max_resamples": 0})
    gateway = LLMGateway(config)

    def stubborn(body: dict[str, Any]) -> dict[str, Any] | None:
        system = body["messages"][0]["content"]
        return {"ad": {"answer": "Free coffee"}} if system.startswith("You are Person 01,") else None

    fake.responder = stubborn
    survey = Survey([AD])
    result = ask_shard(survey, personas(3), config, gateway, world="Street")
    assert [r.agent for r in result.rows] == ["Person 00", "Person 02"] and all(r.answer in AD.options for r in result.rows)
    assert len(result.calls) == fake.calls == 4  # two answers, and Person 01's reply and its repair
    (failure,) = result.failures
    assert (failure.stage, failure.world, failure.agent, failure.error_type) == ("survey", "Street", "Person 01", "SurveyError")
    assert failure.message.startswith("Person 01: no valid answer to ad")
    with pytest.raises(SurveyError):
        ask_shard(survey, personas(3), fake_config(fake, tmp_path, **{"llm.max_resamples": 0, "pipeline.on_item_error": "fail"}), gateway)

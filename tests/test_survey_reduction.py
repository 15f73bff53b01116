"""Reductions of answers: choice shares with Wilson intervals, numeric means, distributions by persona."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from tests.fake_openai import FakeOpenAI
from troupe.llm import LLMGateway
from troupe.reduction import choice_shares, distribution_by, numeric_means, wilson_interval
from troupe.survey import Likert, MultipleChoice, Survey, answers_table, persona_id


def rows(question_id: str, answers: list[str], **extra: Any) -> list[dict[str, Any]]:
    return [
        {"agent": f"P{i}", "persona_id": f"id{i}", "question_id": question_id, "question_type": "multiple_choice",
         "answer": a, "answer_number": None, "answer_list": None, "why": None, **extra}
        for i, a in enumerate(answers)
    ]


def test_wilson_interval_matches_the_textbook_value() -> None:
    # 30 of 50: centre (p + z²/2n) / (1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n), z = 1.96.
    low, high = wilson_interval(30, 50)
    assert low == pytest.approx(0.4618, abs=5e-4) and high == pytest.approx(0.7239, abs=5e-4)
    assert wilson_interval(0, 0) != wilson_interval(0, 0)  # nan without respondents


def test_choice_shares_with_intervals() -> None:
    answers = pl.DataFrame(rows("ad", ["A"] * 30 + ["B"] * 20))
    shares = choice_shares(answers)
    assert shares.select("answer", "n", "respondents").rows() == [("A", 30, 50), ("B", 20, 50)]
    a = shares.row(0, named=True)
    assert a["share"] == pytest.approx(0.6) and (a["ci_low"], a["ci_high"]) == pytest.approx((0.4618, 0.7239), abs=5e-4)


def test_checkbox_picks_count_once_per_respondent_each() -> None:
    answers = pl.DataFrame(
        [{**rows("days", ["x"])[0], "agent": f"P{i}", "question_type": "checkbox", "answer_list": picks, "answer": "; ".join(picks)}
         for i, picks in enumerate([["Mon", "Fri"], ["Mon"], ["Fri", "Sun"], ["Mon", "Sun"]])]
    )
    shares = choice_shares(answers)
    assert dict(zip(shares["answer"], shares["n"])) == {"Mon": 3, "Fri": 2, "Sun": 2}
    assert set(shares["respondents"]) == {4}


def test_survey_answers_reduce_to_shares_means_and_distributions(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    people = [{"name": f"P{i:02d}", "age": 20 + i, "occupation": {"title": "baker" if i % 3 else "nurse"}} for i in range(30)]
    survey = Survey(
        [MultipleChoice(id="ad", text="Which ad?", options=("A", "B", "C")), Likert(id="like", text="Like it?", scale=(1, 7))]
    )
    answers = pl.from_arrow(answers_table(survey.ask(people, gateway=gateway)))
    assert isinstance(answers, pl.DataFrame)

    shares = choice_shares(answers, question_id="ad")
    assert shares["n"].sum() == 30 and shares["share"].sum() == pytest.approx(1.0)
    assert ((shares["ci_low"] <= shares["share"]) & (shares["share"] <= shares["ci_high"])).all()

    means = numeric_means(answers)
    likes = answers.filter(pl.col("question_id") == "like")["answer_number"]
    assert means.rows(named=True)[0]["mean"] == pytest.approx(likes.mean()) and means["n"].to_list() == [30]
    low, high = means["ci_low"][0], means["ci_high"][0]
    assert low < likes.mean() < high

    personas = pl.DataFrame(
        {"persona_id": [persona_id(p) for p in people], "occupation_title": [p["occupation"]["title"] for p in people]}
    )
    spread = distribution_by(answers, personas, "p.occupation_title", question_id="ad")
    assert set(spread["group"]) == {"baker", "nurse"}
    assert spread.group_by("group").agg(pl.col("n").sum()).sort("group").rows() == [("baker", 20), ("nurse", 10)]
    assert spread.group_by("group").agg(pl.col("share").sum())["share"].to_list() == pytest.approx([1.0, 1.0])

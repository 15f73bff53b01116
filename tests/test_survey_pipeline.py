"""A scenario's ``survey:`` block as a sharded Prefect stage writing the ``answers`` dataset.

Against the fake server (schema-valid answers, scripted turns) and a real Prefect server: a
survey of every persona, a survey of a world's agents after its steps (with their memories), and
``choice``/``list`` extraction fields stored with their storage types.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import flow_overrides, sql
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, kind_of, schema_of, talk
from troupe.datasets import connect
from troupe.errors import SpecError
from troupe.scenario import load_scenario

PEOPLE = [{"persona": {"name": f"Person {i:02d}", "age": 20 + i, "occupation": {"title": "Clerk"}}} for i in range(7)]
ADS = ["Fresh bread daily", "Half price on Mondays", "Local organic flour"]
QUESTIONS = [
    {"type": "multiple_choice", "id": "ad", "text": "Which ad would make you visit?", "options": ADS, "why": True},
    {"type": "likert", "id": "like", "text": "How much do you like the bakery?", "scale": [1, 7]},
    {"type": "numeric", "id": "pay", "text": "How many euros for a loaf?", "min": 0, "max": 20},
]


@pytest.fixture(autouse=True)
def _send_prefect_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "prefect_server" in request.fixturenames:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)


def write(tmp_path: Path, scenario: dict[str, Any]) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return path


def run(fake: FakeOpenAI, scenario: Path, root: Path, run_id: str) -> dict[str, Any]:
    from flows import scenario_flow

    overrides = flow_overrides(fake, **{"pipeline.shard_size": "3",
                                        "llm.structured_output": "json_object_schema"})  # the whole schema, bounds included (OpenAI's strict form drops them)
    return scenario_flow(str(scenario), run_id=run_id, datasets_root=str(root), overrides=overrides)


def test_a_survey_of_every_persona_writes_typed_answers(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    scenario = write(tmp_path, {"name": "bakery", "personas": PEOPLE, "survey": {"questions": QUESTIONS}})
    root = tmp_path / "datasets"
    summary = run(fake, scenario, root, "s1")
    assert summary["status"] == "completed" and summary["rows"]["answers"] == 7 * 3
    assert fake.calls == 7 and summary["task_runs"] == 3 + 3  # personas and survey: shards of 3, 3 and 1
    connection = connect(root)
    try:
        rows = connection.sql("SELECT agent, persona_id, question_id, question_type, answer, answer_number, why FROM answers").fetchall()
        joined = connection.sql("SELECT count(*) FROM answers a JOIN personas p USING (run_id, persona_id)").fetchall()
    finally:
        connection.close()
    assert joined == [(21,)]  # every answer joins its persona
    by_question: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_question.setdefault(row[2], []).append(row)
    assert all(r[4] in ADS and r[3] == "multiple_choice" and r[6] for r in by_question["ad"])
    assert all(r[5] in range(1, 8) and r[4] == str(int(r[5])) for r in by_question["like"])
    assert all(0 <= r[5] <= 20 for r in by_question["pay"])

    from flows.cli import app

    result = CliRunner().invoke(app, ["sql", "select answer, count(*) from answers where question_id = 'ad' group by 1 order by 1",
                                      "--datasets", str(root), "--format", "csv"])
    assert result.exit_code == 0, result.output
    header, *counted = csv.reader(io.StringIO(result.output.strip()))
    assert header == ["answer", "count_star()"] and sum(int(n) for _, n in counted) == 7
    assert {answer for answer, _ in counted} <= set(ADS)

    # an unchanged rerun replays every survey shard from the task cache
    again = run(fake, scenario, root, "s2")
    assert fake.calls == 7 and again["rows"]["answers"] == 21


def test_free_text_answers_are_put_in_categories(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    questions = [QUESTIONS[0], {"type": "free_text", "id": "wish", "text": "What would you change about the bakery?"}]
    scenario = write(tmp_path, {"name": "wishes", "personas": PEOPLE, "survey": {"questions": questions, "categories": 3}})
    root = tmp_path / "datasets"
    summary = run(fake, scenario, root, "c1")
    assert summary["rows"]["answers"] == 14
    purposes = [r[0] for r in sql(root, "SELECT purpose FROM llm_calls WHERE purpose LIKE 'normalize:%'")]
    assert purposes.count("normalize:categories") == 1 and purposes.count("normalize:assign") == 1  # 7 texts: one batch
    rows = sql(root, "SELECT question_id, category FROM answers")
    assert all(category is None for q, category in rows if q == "ad")
    wishes = [category for q, category in rows if q == "wish"]
    assert len(wishes) == 7 and all(wishes) and len(set(wishes)) <= 3
    calls = fake.calls
    again = run(fake, scenario, root, "c2")
    assert fake.calls == calls and again["rows"]["answers"] == 14
    assert sorted(sql(root, "SELECT agent, category FROM answers WHERE run_id = 'c2' AND question_id = 'wish'")) == sorted(
        sql(root, "SELECT agent, category FROM answers WHERE run_id = 'c1' AND question_id = 'wish'")
    )


class _Town(Script):
    """Scripted turns; extraction fields answered with an option and a list."""

    def __init__(self) -> None:
        super().__init__({p["persona"]["name"]: (lambda n, name=p["persona"]["name"]: [talk(f"{name} saw the ad"), done()]) for p in PEOPLE[:4]})

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        properties = schema_of(body).get("properties", {})
        if kind_of(body) == "other" and "mood" in properties:
            return {"mood": "curious", "topics": ["bread", "price"]}
        return super().__call__(body)


def test_a_survey_after_a_world_asks_its_agents_with_their_memories(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = _Town()
    scenario = write(tmp_path, {
        "name": "ad-test",
        "config": {"simulation.max_turns_until_done": 1},
        "personas": PEOPLE[:4],
        "worlds": [{"name": "Viewing", "kind": "isolated", "steps": 1,
                    "stimuli": [{"step": 1, "content": "A new bakery advertises fresh bread daily.", "source": "TV"}]}],
        "extraction": {"objective": "How each person reacted.", "fields": {
            "mood": {"type": "choice", "options": ["curious", "bored", "annoyed"]},
            "topics": {"type": "list"},
        }},
        "survey": {"questions": QUESTIONS[:1], "after": "Viewing"},
    })
    root = tmp_path / "datasets"
    summary = run(fake, scenario, root, "w1")
    assert summary["status"] == "completed" and summary["rows"]["answers"] == 4
    survey_prompts = [b for b in fake.requests if "Which ad would make you visit?" in str(b["messages"])]
    assert len(survey_prompts) == 4
    assert all("A new bakery advertises fresh bread daily." in str(b["messages"]) for b in survey_prompts)  # remembered
    connection = connect(root)
    try:
        answers = connection.sql("SELECT agent, answer FROM answers ORDER BY agent").fetchall()
        types = {c[0]: c[1] for c in connection.execute("DESCRIBE extractions").fetchall()}
        extracted = connection.sql("SELECT DISTINCT mood, topics FROM extractions").fetchall()
    finally:
        connection.close()
    assert [a for a, _ in answers] == [p["persona"]["name"] for p in PEOPLE[:4]] and all(x in ADS for _, x in answers)
    assert (types["mood"], types["topics"]) == ("VARCHAR", "VARCHAR[]")
    assert extracted == [("curious", ["bread", "price"])]


def test_a_survey_after_an_unknown_world_stops_at_load(tmp_path: Path) -> None:
    scenario = write(tmp_path, {"name": "x", "personas": PEOPLE[:1], "worlds": [{"name": "Room", "steps": 1}],
                                "survey": {"questions": QUESTIONS[:1], "after": "Kitchen"}})
    with pytest.raises(SpecError, match=r"survey.after: no world is named 'Kitchen'; use one of: Room"):
        load_scenario(scenario)


@pytest.mark.parametrize(
    ("questions", "message"),
    [
        ([{"type": "multiple_choice", "id": "b", "text": "?", "options": ["only"]}], r"survey.questions: question\[0\].options: "),
        ([{"type": "yes_no", "id": "a", "text": "?"}, {"type": "yes_no", "id": "a", "text": "?"}], "question ids must be unique; repeated: a"),
        ([{"type": "essay", "id": "a", "text": "?"}], "survey.questions: question\\[0\\]"),
    ],
)
def test_a_bad_survey_question_is_one_line_naming_it(tmp_path: Path, questions: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(SpecError, match=message) as raised:
        load_scenario(write(tmp_path, {"name": "x", "personas": PEOPLE[:1], "survey": {"questions": questions}}))
    assert "\n" not in str(raised.value)


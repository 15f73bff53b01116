"""The seed scenarios in examples/ end to end at a small size, against the fake server and a real Prefect server.

Each runs as ``troupe run`` runs it (the scenario flow), with only its size cut down, and its
datasets and reductions are checked. The fake server plays the LLM: scripted turns where the
check needs them, people written around their sampled attributes, schema-valid answers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import polars as pl
import pytest
import yaml

from tests.conftest import flow_overrides, sql
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, cognitive, done, kind_of, schema_of, talk, user_text
from tests.test_factory import consistent
from troupe.datasets import connect
from troupe.population import load_spec
from troupe.reduction import choice_shares

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ADS = {"calm_family", "trail_runner", "dog_chase"}


@pytest.fixture(autouse=True)
def _send_prefect_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "prefect_server" in request.fixturenames:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)


def smaller(name: str, tmp_path: Path, change: Any = None) -> Path:
    """The example with change(data) applied, its files still found next to the original."""
    data = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    population = data.get("population")
    if population and isinstance(population["spec"], str):
        population["spec"] = str(EXAMPLES / population["spec"])
    if change:
        change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run(fake: FakeOpenAI, scenario: Path, root: Path, **extra: str) -> dict[str, Any]:
    from flows import scenario_flow

    summary = scenario_flow(str(scenario), run_id="ex", datasets_root=str(root), overrides=flow_overrides(fake, **extra))
    assert summary["status"] == "completed", summary
    return summary


class Talk(Script):
    """Every agent says a numbered line, then DONE, whatever its name (generated people included)."""

    def __init__(self, line: str) -> None:
        super().__init__({})
        self.line = line

    def _turn(self, name: str, number: int) -> dict[str, Any]:
        return {"actions": [talk(f"{name}: {self.line} {number + 1}"), done()], "cognitive_state": cognitive()}


def test_every_example_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    from troupe.scenario import load_scenario

    names = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert names == ["customer_interview.yaml", "product_brainstorming.yaml", "synthetic_conversations.yaml", "tv_ad_evaluation.yaml"]
    for name in names:
        load_scenario(EXAMPLES / name)
    from typer.testing import CliRunner

    from flows.cli import app, out

    monkeypatch.setattr(out, "width", 200)
    checked = CliRunner().invoke(app, ["validate", str(EXAMPLES / "tv_ad_evaluation.yaml")])
    assert checked.exit_code == 0 and "valid: 0 personas + a population of 200; a survey of 2 questions; worlds none" in checked.output


class _Interview(Talk):
    """Turns of both people scripted; the banker written around their sampled attributes; a typed record."""

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if "willingness_to_buy" in schema_of(body).get("properties", {}):
            return {"needs": ["faster checks", "fewer missing documents"], "objections": ["data privacy"],
                    "willingness_to_buy": "likely", "decision_maker": "the head of lending", "summary": "Useful if private."}
        if kind_of(body) == "turn":
            return super().__call__(body)
        return consistent(body)


def test_customer_interview(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = _Interview("answer")
    summary = run(fake, smaller("customer_interview.yaml", tmp_path), tmp_path / "d")
    assert summary["rows"]["personas"] == 2 and summary["rows"]["extractions"] == 1
    (banker, sampled), = sql(tmp_path / "d", "SELECT name, sampled->>'role' FROM personas WHERE sampled IS NOT NULL")
    assert sampled in {"branch manager", "small-business loan officer", "head of digital channels"}
    talkers = sql(tmp_path / "d", "SELECT DISTINCT agent FROM events WHERE type = 'TALK' ORDER BY 1")
    assert talkers == sorted([(banker,), ("Dana Whitfield",)])
    record = sql(tmp_path / "d", "SELECT world, agent, needs, willingness_to_buy FROM extractions")
    assert record == [("Interview", "", ["faster checks", "fewer missing documents"], "likely")]


def test_tv_ad_evaluation(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = consistent  # people around their attributes; the fake's schema-valid answers for the survey
    size = 30

    def cut(data: dict[str, Any]) -> None:
        data["population"]["size"] = size

    root = tmp_path / "d"
    summary = run(fake, smaller("tv_ad_evaluation.yaml", tmp_path, cut), root, **{"pipeline.shard_size": "10"})
    assert summary["rows"]["answers"] == 2 * size and summary["rows"]["reduction_ad_shares"] == 3
    survey_prompts = [b for b in fake.requests if "Sunrise Oats" in user_text(b)]
    assert len(survey_prompts) == size
    assert all(not ADS & set(re.findall(r"\w+", user_text(b))) for b in survey_prompts)  # blind: A, B, C only
    assert len({tuple(re.findall(r"([ABC]) = A (\w+)", user_text(b))) for b in survey_prompts}) > 1  # orders differ
    connection = connect(root)
    try:
        answers = pl.from_arrow(connection.sql("SELECT * FROM answers").to_arrow_table())
    finally:
        connection.close()
    assert set(answers.filter(pl.col("question_id") == "ad")["answer"]) <= ADS  # un-blinded
    shares = {r[0]: r[1:] for r in sql(root, "SELECT ad, n, respondents, share, ci_low, ci_high FROM reduction_ad_shares")}
    expected = choice_shares(answers, question_id="ad")
    for row in expected.iter_rows(named=True):
        n, respondents, share, low, high = shares[row["answer"]]
        assert (n, respondents) == (row["n"], size) and share == pytest.approx(row["share"])
        assert (low, high) == (pytest.approx(row["ci_low"], abs=1e-5), pytest.approx(row["ci_high"], abs=1e-5))  # Wilson, as scipy
    by_age = sql(root, "SELECT age_band, sum(n), min(respondents) FROM reduction_ad_shares_by_age GROUP BY 1 ORDER BY 1")
    targets = load_spec(EXAMPLES / "populations" / "us_adults.yaml").targets(size)["age"]
    assert [band for band, _, _ in by_age] == sorted(targets)
    assert all(n == people and abs(people - targets[band]) <= 1 for band, n, people in by_age)

    from troupe.report import write_report

    written = write_report(root, "ex", tmp_path / "ads.html")
    html = written[-1].read_text(encoding="utf-8")
    assert "trail_runner" in html and html.count("data:image/png;base64,") >= 2  # shares and marginals, embedded


class _FocusGroup(Talk):
    """Scripted talk; each person's idea, and whom they supported (Lisa by Oscar and Marcos, Oscar by Lisa)."""

    SUPPORTS = {"Lisa Carter": ["Oscar"], "Oscar": ["Lisa Carter"], "Marcos Almeida": ["Lisa Carter"], "Lila": []}

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        subject = re.search(r"Extract it for (.+?)\.\n", user_text(body) + "\n")
        if subject and "idea_title" in schema_of(body).get("properties", {}):
            name = subject[1]
            return {"idea_title": f"{name}'s idea", "idea_description": "It helps.", "supported": self.SUPPORTS[name]}
        return super().__call__(body)


def test_product_brainstorming(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = _FocusGroup("idea")
    root = tmp_path / "d"
    summary = run(fake, smaller("product_brainstorming.yaml", tmp_path), root)
    assert summary["rows"]["extractions"] == 4 and summary["rows"]["answers"] == 4
    ideas = sql(root, "SELECT title, proposed_by, support_count, category FROM reduction_ideas")
    assert [i[:3] for i in ideas[:2]] == [("Lisa Carter's idea", "Lisa Carter", 2), ("Oscar's idea", "Oscar", 1)]
    assert sorted(i[2] for i in ideas[2:]) == [0, 0]
    categories = dict(sql(root, "SELECT agent, category FROM answers WHERE question_id = 'idea'"))
    assert all(category == categories[who] and category for _, who, _, category in ideas)  # each idea's category, from the survey
    by_category = sql(root, "SELECT category, ideas FROM reduction_ideas_by_category")
    assert sum(n for _, n in by_category) == 4 and 1 <= len(by_category) <= 5


def test_synthetic_conversations(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = Talk("line")
    root = tmp_path / "d"
    summary = run(fake, smaller("synthetic_conversations.yaml", tmp_path), root)
    conversations = sql(root, "SELECT world, utterances, speakers FROM reduction_conversations")
    assert len(conversations) == 6 and all(u == 4 and s == 2 for _, u, s in conversations)  # two people, two steps
    heard = sql(root, "SELECT count(*) FROM events e JOIN events a ON a.world = e.world AND a.type = 'TALK' AND a.agent <> e.agent "
                      "WHERE e.direction = 'stimulus' AND e.type = 'CONVERSATION' AND e.content = a.content")
    assert heard[0][0] > 0 and summary["rows"]["events"] > 0

    from troupe.export import export_run
    from troupe.export.options import Format, Per

    exported = export_run(root, "ex", Format.openai_chat, tmp_path / "chats.jsonl", Per.agent)
    chats = [json.loads(line) for line in (tmp_path / "chats.jsonl").read_text(encoding="utf-8").splitlines()]
    assert exported.conversations == len(chats) == 12  # six pairs, each person's own view
    assert all(c["messages"][0]["role"] == "system" and any(m["role"] == "assistant" for m in c["messages"]) for c in chats)

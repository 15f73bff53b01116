"""The seed scenarios in examples/ end to end at a small size, against the fake server and a real Prefect server.

Each runs as ``troupe run`` runs it (the scenario flow), with only its size cut down, and its
datasets and reductions are checked. The fake server plays the LLM: scripted turns where the
check needs them, people written around their sampled attributes, schema-valid answers. Then, as
a user would, each gets ``troupe report`` (its HTML must embed the chart that example is about,
and show its key table) and ``troupe export`` in every format, read back with Hugging Face
``datasets`` (offline) with roles and turn order checked against what the scenario says happened.
"""

from __future__ import annotations

import base64
import html as htmllib
import io
import json
import re
from dataclasses import dataclass, field
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


# ----- what every example ends with: troupe report and troupe export, as a user runs them -----

FIGURE = re.compile(
    r'<figure class="chart" data-kind="([\w-]+)" id="chart-[\w-]+">\s*<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">'
)
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def cli(*args: str) -> str:
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def html_tables(html: str) -> dict[str, list[list[str]]]:
    """Every table of the report by its heading: its body rows as cell texts."""
    found = {}
    for title, body in re.findall(r"<h3>(.*?)</h3>\s*<table>(.*?)</table>", html, re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
        found[htmllib.unescape(title)] = [[htmllib.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)] for row in rows]
    return found


def drawn(png: bytes) -> tuple[int, int]:
    """The PNG's size, after checking it is a PNG with something drawn on it (not one flat colour)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 8
        return image.size


@dataclass
class Report:
    """The report as a reader gets it: charts by title (their kind), and tables by heading."""

    charts: dict[str, str]
    tables: dict[str, list[list[str]]] = field(default_factory=dict)


def report_of(root: Path, out: Path) -> Report:
    """``troupe report ex`` as HTML: self-contained, every chart an embedded PNG with its kind."""
    cli("report", "ex", "--datasets", str(root), "--out", str(out))
    html = out.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing outside the file
    figures = FIGURE.findall(html)
    assert len(figures) == html.count("<img ")  # every image is an embedded chart
    for _, encoded, _ in figures:
        width, height = drawn(base64.b64decode(encoded))
        assert width > 200 and height > 100
    return Report(charts={htmllib.unescape(title): kind for kind, _, title in figures}, tables=html_tables(html))


def exported(root: Path, tmp_path: Path, hf: Any, per: str = "agent", calls: bool = False) -> list[list[dict[str, str]]]:
    """``troupe export ex`` in all three formats, each read back by ``datasets.load_dataset``; the formats must agree.

    Returns the examples' messages (role and content) in file order.
    """
    options = ["--calls"] if calls else ["--per", per]
    loaded = {}
    for fmt, suffix, reader in (("openai-chat", ".jsonl", "json"), ("sharegpt", ".json", "json"), ("parquet", ".parquet", "parquet")):
        out = tmp_path / f"export-{per}-{calls}{suffix}"
        cli("export", "ex", "--datasets", str(root), "--format", fmt, "--out", str(out), *options)
        rows = hf.load_dataset(reader, data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
        if fmt == "sharegpt":
            loaded[fmt] = [[{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in row["conversations"]] for row in rows]
        else:
            loaded[fmt] = [row["messages"] for row in rows]
    assert loaded["openai-chat"] == loaded["sharegpt"] == loaded["parquet"] and loaded["parquet"]
    for messages in loaded["parquet"]:  # the fine-tuning shape: system, then user and assistant in turn, ending on the assistant
        roles = [m["role"] for m in messages]
        assert roles == ["system"] + ["user", "assistant"] * ((len(roles) - 1) // 2) and len(roles) % 2 == 1
    return loaded["parquet"]


def lines_in(content: str, word: str) -> list[tuple[str, int]]:
    """The scripted lines (``<name>: <word> <n>``) in a message, as (speaker, n) in order."""
    return [(who.strip(), int(n)) for who, n in re.findall(rf"([^:\n]+): {word} (\d+)$", content, re.M)]


def check_chats(root: Path, tmp_path: Path, hf: Any, word: str, steps: int, worlds: dict[str, list[str]]) -> dict[str, Any]:
    """Per agent and per conversation, the exports of worlds where everyone hears everyone and says one line a step.

    The lines come from the run's ``events`` (each person's TALK actions, one per step). Each
    agent's view: its persona as the system message; its own lines, in order, as the assistant;
    before each of its lines after the first, the lines the others in its world said at the step
    before (heard at the end of that step) as the user, and nothing from any other world. Each
    world's view: every line of its people, step by step. Returns both views' messages.
    """
    talk: dict[tuple[str, str], list[tuple[str, int]]] = {}
    step_of: dict[tuple[str, int], int] = {}
    for world, agent, step, content in sql(root, "SELECT world, agent, step, content FROM events "
                                                 "WHERE type = 'TALK' AND direction = 'action' ORDER BY world, seq"):
        (line,) = lines_in(content, word)
        talk.setdefault((world, agent), []).append(line)
        step_of[line] = step
    assert sorted(talk) == sorted((w, p) for w, people in worlds.items() for p in people)
    assert all([step_of[line] for line in said] == list(range(1, steps + 1)) for said in talk.values())  # a line a step
    agent_views = exported(root, tmp_path, hf, "agent")
    views = [(world, person) for world in sorted(worlds) for person in sorted(worlds[world])]  # the export's order
    assert [re.match(r"You are (.+?)\.\n", m[0]["content"])[1] for m in agent_views] == [p for _, p in views]  # type: ignore[index]
    for messages, (world, me) in zip(agent_views, views):
        others = [p for p in worlds[world] if p != me]
        said = [lines_in(m["content"], word) for m in messages[2::2]]
        heard = [sorted(lines_in(m["content"], word)) for m in messages[1::2]]
        assert said == [[line] for line in talk[(world, me)]]
        assert heard == [[]] + [sorted(talk[(world, o)][k] for o in others) for k in range(steps - 1)]
    world_views = exported(root, tmp_path, hf, "conversation")
    assert len(world_views) == len(worlds)
    for messages, (world, people) in zip(world_views, sorted(worlds.items())):
        assert messages[0]["content"].startswith(f"A conversation in {world} between ")
        assert all(p in messages[0]["content"] for p in people)
        said = [line for m in messages[2::2] for line in lines_in(m["content"], word)]
        assert sorted(said) == sorted(line for p in people for line in talk[(world, p)])
        assert [step_of[line] for line in said] == sorted(step_of[line] for line in said)  # step by step
    return {"agent": agent_views, "conversation": world_views}


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
    seeds = {"customer_interview.yaml", "product_brainstorming.yaml", "synthetic_conversations.yaml", "tv_ad_evaluation.yaml"}
    assert seeds <= set(names)  # the four seed scenarios, each run end to end below; every example file validates
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


def test_customer_interview(prefect_server: str, fake: FakeOpenAI, hf: Any, tmp_path: Path) -> None:
    fake.responder = _Interview("answer")
    root = tmp_path / "d"
    summary = run(fake, smaller("customer_interview.yaml", tmp_path), root)
    assert summary["rows"]["personas"] == 2 and summary["rows"]["extractions"] == 1
    (banker, sampled), = sql(root, "SELECT name, sampled->>'role' FROM personas WHERE sampled IS NOT NULL")
    assert sampled in {"branch manager", "small-business loan officer", "head of digital channels"}
    talkers = sql(root, "SELECT DISTINCT agent FROM events WHERE type = 'TALK' ORDER BY 1")
    assert talkers == sorted([(banker,), ("Dana Whitfield",)])
    record = sql(root, "SELECT world, agent, needs, willingness_to_buy FROM extractions")
    assert record == [("Interview", "", ["faster checks", "fewer missing documents"], "likely")]

    report = report_of(root, tmp_path / "interview.html")
    assert report.tables["Extracted records"] == [  # the typed record, the interview's one finding
        ["Interview", "faster checks; fewer missing documents", "data privacy", "likely", "the head of lending", "Useful if private."]
    ]
    assert report.charts["role: target vs achieved"] == "target-vs-achieved"  # the banker the factory was asked for
    share = {"branch manager": "0.4", "small-business loan officer": "0.4", "head of digital channels": "0.2"}
    assert ["role", sampled, share[sampled], "1", "1"] in report.tables["Marginals"]
    check_chats(root, tmp_path, hf, "answer", steps=4, worlds={"Interview": [banker, "Dana Whitfield"]})


def test_tv_ad_evaluation(prefect_server: str, fake: FakeOpenAI, hf: Any, tmp_path: Path) -> None:
    fake.responder = consistent  # people around their attributes; the fake's schema-valid answers for the survey
    size = 30

    def cut(data: dict[str, Any]) -> None:
        data["population"]["size"] = size

    root = tmp_path / "d"
    summary = run(fake, smaller("tv_ad_evaluation.yaml", tmp_path, cut), root, **{"pipeline.shard_size": "10", "datasets.store_prompts": "true"})
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

    report = report_of(root, tmp_path / "ads.html")
    assert report.charts["ad: choice shares"] == "shares-with-intervals"
    assert report.charts["ad by age"] == report.charts["buy by age"] == "by-attribute"  # answers by the sampled age band
    assert report.charts["age: target vs achieved"] == "target-vs-achieved"
    assert sorted(report.tables["ad: shares"]) == sorted(
        [r["answer"], str(r["n"]), f"{r['share']:.1%}", f"{r['ci_low']:.1%} - {r['ci_high']:.1%}"] for r in expected.iter_rows(named=True)
    )

    # no one talks in this study: its training data is the calls themselves, prompt and completion (store_prompts)
    pairs = exported(root, tmp_path, hf, calls=True)
    calls = sql(root, "SELECT DISTINCT key, messages, completion FROM llm_calls WHERE messages IS NOT NULL")
    assert len(pairs) == len(calls) >= 2 * size  # a persona draft and a survey call per person, rewrites too
    sent = sorted(json.dumps(json.loads(m) + [{"role": "assistant", "content": c}]) for _, m, c in calls)
    assert sorted(json.dumps(p) for p in pairs) == sent
    picks = [p for p in pairs if "Sunrise Oats" in p[1]["content"]]
    assert len(picks) == size and all(not ADS & set(re.findall(r"\w+", p[1]["content"])) for p in picks)  # still blind


class _FocusGroup(Talk):
    """Scripted talk; each person's idea, and whom they supported (Lisa by Oscar and Marcos, Oscar by Lisa)."""

    SUPPORTS = {"Lisa Carter": ["Oscar"], "Oscar": ["Lisa Carter"], "Marcos Almeida": ["Lisa Carter"], "Lila": []}

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        subject = re.search(r"Extract it for (.+?)\.\n", user_text(body) + "\n")
        if subject and "idea_title" in schema_of(body).get("properties", {}):
            name = subject[1]
            return {"idea_title": f"{name}'s idea", "idea_description": "It helps.", "supported": self.SUPPORTS[name]}
        return super().__call__(body)


def test_product_brainstorming(prefect_server: str, fake: FakeOpenAI, hf: Any, tmp_path: Path) -> None:
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

    report = report_of(root, tmp_path / "ideas.html")
    assert report.charts["ideas: by support_count"] == "ranked"  # ideas by support
    assert report.charts["ideas_by_category: by ideas"] == "ranked"
    assert report.charts["idea: categories"] == "shares-with-intervals"  # the free-text answers, sorted into categories
    assert sorted((row[0], row[3]) for row in report.tables["Answers"]) == sorted(categories.items())
    assert [row[0] for row in report.tables["ideas"]] == [title for title, *_ in ideas]
    assert report.tables["ideas"][0] == ["Lisa Carter's idea", "It helps.", categories["Lisa Carter"], "Lisa Carter", "2"]
    people = ["Lila", "Lisa Carter", "Marcos Almeida", "Oscar"]
    chats = check_chats(root, tmp_path, hf, "idea", steps=4, worlds={"Focus group": people})
    (world,) = chats["conversation"]
    asked = next(i for i, m in enumerate(world) if "which of the others' ideas you would support" in m["content"])
    assert world[asked]["role"] == "user" and "Facilitator: Thank you." in world[asked]["content"]  # an outside voice: the user
    before = [k for m in world[:asked] for _, k in lines_in(m["content"], "idea")]
    after = [k for m in world[asked:] for _, k in lines_in(m["content"], "idea")]
    assert set(before) == {1, 2} and set(after) == {3, 4}  # the facilitator's second broadcast, heard before step 3


def test_synthetic_conversations(prefect_server: str, fake: FakeOpenAI, hf: Any, tmp_path: Path) -> None:
    fake.responder = Talk("line")
    root = tmp_path / "d"
    summary = run(fake, smaller("synthetic_conversations.yaml", tmp_path), root)
    conversations = sql(root, "SELECT world, utterances, speakers FROM reduction_conversations")
    assert len(conversations) == 6 and all(u == 4 and s == 2 for _, u, s in conversations)  # two people, two steps
    heard = sql(root, "SELECT count(*) FROM events e JOIN events a ON a.world = e.world AND a.type = 'TALK' AND a.agent <> e.agent "
                      "WHERE e.direction = 'stimulus' AND e.type = 'CONVERSATION' AND e.content = a.content")
    assert heard[0][0] > 0 and summary["rows"]["events"] > 0


    report = report_of(root, tmp_path / "chats.html")
    assert report.charts["conversations: by utterances"] == "ranked"  # lines per conversation
    assert sorted(report.tables["conversations"]) == [[world, "4", "2"] for world, _, _ in sorted(conversations)]
    pairs = yaml.safe_load((EXAMPLES / "synthetic_conversations.yaml").read_text(encoding="utf-8"))["worlds"]
    worlds = {w["name"]: w["agents"] for w in pairs}
    assert len(worlds) == 6
    chats = check_chats(root, tmp_path, hf, "line", steps=2, worlds=worlds)  # each person hears only their partner
    assert len(chats["agent"]) == 12  # six pairs, each person's own view

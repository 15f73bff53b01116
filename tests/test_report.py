"""Reports of runs: a real run of the scenario flow against the fake server, reported as HTML (charts
embedded) and Markdown (charts beside it); and a survey run's datasets, written with the datasets'
own partition writer, for the answers and population sections."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tests.fake_openai import FakeOpenAI
from tests.sample_run import AGENTS, SCENARIO, Responder, SampleRun, make_run
from troupe.datasets import table_from_rows, write_partition
from troupe.datasets.schemas import FAILURES, PERSONAS, RUNS
from troupe.errors import ConfigError, SpecError
from troupe.report import Report, build_report, write_report
from troupe.report.data import sections
from troupe.report.render import write
from troupe.run_data import open_run

IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def sample(fake_server: FakeOpenAI, prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    return make_run(fake_server, tmp_path_factory.mktemp("report") / "datasets")


def png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def facts(html: str) -> dict[str, str]:
    return dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", html))


def test_html_report_is_self_contained_with_the_run_its_calls_and_charts(sample: SampleRun, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert write_report(sample.root, sample.run_id, out) == [out]
    html = out.read_text(encoding="utf-8")
    assert list(tmp_path.iterdir()) == [out]  # one file, nothing beside it
    shown = facts(html)
    assert shown["run id"] == sample.run_id
    assert shown["scenario"] == "bakery"
    assert shown["LLM calls"] == str(sample.paid_calls) == str(sample.summary["calls"])
    assert shown["status"] == "completed"
    assert shown["model"] == "fake-model (openai)"
    images = IMAGE.findall(html)
    assert len(images) >= 3  # visit shares, favourite shares, ideas by support
    for encoded in images:
        width, height = png_size(base64.b64decode(encoded))
        assert width > 200 and height > 100
    assert not re.search(r'(src|href)="(?!data:)', html)  # no external file or URL
    for name in AGENTS:
        assert f"<td>{name}</td>" in html


def test_report_sections_follow_the_run_data(sample: SampleRun) -> None:
    report = build_report(sample.root, sample.run_id)
    titles = [s.title for s in report.sections]
    assert titles == ["Run", "Population", "Extractions", "Reduction: ideas"]
    by_title = {s.title: s for s in report.sections}
    calls = {t.title: t for t in by_title["Run"].tables}["LLM calls by purpose"]
    purposes = {row[0]: int(row[1]) for row in calls.rows}
    assert purposes == {"act": len(AGENTS) * 2, "extract": len(AGENTS)}  # 2 steps, 1 turn each; 1 extraction each
    assert [c.name for c in by_title["Extractions"].charts] == ["extraction-visit", "extraction-favourite", "extraction-idea"]
    (ideas,) = by_title["Reduction: ideas"].charts
    assert ideas.name == "reduction-ideas"
    assert by_title["Reduction: ideas"].tables[0].rows == [["Rye bread", "2"], ["Vegan cakes", "1"]]
    assert not by_title["Population"].charts  # no population spec in this run: no marginals chart


def test_markdown_report_writes_its_charts_beside_it(sample: SampleRun, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    written = write_report(sample.root, sample.run_id, out)
    text = out.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and sorted(tmp_path / link for link in links) == sorted(written[:-1])
    for link in links:
        png_size((tmp_path / link).read_bytes())
    assert f"| run id | {sample.run_id} |" in text
    assert f"| LLM calls | {sample.paid_calls} |" in text
    assert "| title | support |" in text and "| Rye bread | 2 |" in text


def test_bad_input_is_one_line_and_writes_nothing(sample: SampleRun, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--out .*report\.pdf: a report is \.html or \.md"):
        write_report(sample.root, sample.run_id, tmp_path / "report.pdf")
    with pytest.raises(SpecError, match="run nope: not found"):
        write_report(sample.root, "nope", tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []
    from flows.cli import app

    result = CliRunner().invoke(app, ["report", "nope", "--datasets", str(sample.root), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["report", sample.run_id, "--datasets", str(sample.root), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "<img src=\"data:image/png;base64," in (tmp_path / "r.html").read_text(encoding="utf-8")


# ----- a survey run: answers and the population's marginals -----

SURVEY_RUN = "survey-1"
AD_ANSWERS = ["Ad A"] * 6 + ["Ad B"] * 4  # Wilson 95% for 6/10: 31.3% - 83.2%
WHY = "<script>alert(1)</script> | a\nnew line"  # text a model wrote: must not run, nor break a table


def write_survey_run(root: Path, profile: bool = True) -> None:
    """A run's runs, personas (with sampled attributes), answers and (if profile) population_profile partitions."""
    people = [
        {"persona_id": f"p{i}", "name": f"Person {i}", "age": str(25 + i), "sampled": json.dumps({"age": "18-29" if i < 5 else "30-44", "region": "North" if i % 2 else "South"})}
        for i in range(10)
    ]
    write_partition(root, "runs", SURVEY_RUN, table_from_rows([{"scenario": "ads", "status": "completed", "model": "m", "api_type": "openai", "calls": 20, "cache_hits": 0, "prompt_tokens": 1, "completion_tokens": 1, "cost_usd": 0.0}], RUNS))
    write_partition(root, "personas", SURVEY_RUN, table_from_rows(people, PERSONAS if "sampled" in PERSONAS.names else pa.schema([*PERSONAS, ("sampled", pa.string())])))
    answers = [
        {"agent": p["name"], "persona_id": p["persona_id"], "question_id": "ad", "question_type": "multiple_choice", "answer": a,
         "answer_number": None, "answer_list": None, "why": WHY if p["persona_id"] == "p0" else "Because."}
        for p, a in zip(people, AD_ANSWERS)
    ] + [
        {"agent": p["name"], "persona_id": p["persona_id"], "question_id": "liking", "question_type": "likert", "answer": str(i % 7 + 1),
         "answer_number": float(i % 7 + 1), "answer_list": None, "why": ""}
        for i, p in enumerate(people)
    ]
    schema = pa.schema([("agent", pa.string()), ("persona_id", pa.string()), ("question_id", pa.string()), ("question_type", pa.string()),
                        ("answer", pa.string()), ("answer_number", pa.float64()), ("answer_list", pa.list_(pa.string())), ("why", pa.string())])
    write_partition(root, "answers", SURVEY_RUN, pa.Table.from_pylist(answers, schema=schema))
    failure = {"stage": "survey", "world": "", "agent": "Person 9", "step": None, "error_type": "SchemaError", "message": "no valid answer", "attempts": 3}
    write_partition(root, "failures", SURVEY_RUN, table_from_rows([failure], FAILURES))
    if profile:
        rows = [{"dimension": "region", "category": c, "target": 5.0, "sampled": 5, "achieved": 4 + (c == "North")} for c in ("North", "South")]
        write_partition(root, "population_profile", SURVEY_RUN, pa.Table.from_pylist(rows))


def survey_report(root: Path) -> Report:
    with open_run(root, SURVEY_RUN) as run:
        for name in ("answers", "population_profile"):  # views troupe.datasets.connect may not know yet
            if name not in run.views():
                run.connection.execute(
                    f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{root.resolve()}/{name}/run_id=*/*.parquet', "
                    f"hive_partitioning = true, hive_types = {{'run_id': VARCHAR}}) WHERE run_id = '{SURVEY_RUN}'"
                )
        return Report(run_id=SURVEY_RUN, title="survey", sections=sections(run))


def test_answers_get_shares_with_intervals_and_breakdowns_by_attribute(tmp_path: Path) -> None:
    write_survey_run(tmp_path)
    report = survey_report(tmp_path)
    by_title = {s.title: s for s in report.sections}
    assert list(by_title) == ["Run", "Failures", "Population", "Survey answers"]
    assert by_title["Failures"].text == "1 item failed: survey 1."
    assert by_title["Failures"].tables[0].rows[0][:2] == ["survey", ""] and "SchemaError" in by_title["Failures"].tables[0].rows[0]
    answers = by_title["Survey answers"]
    tables = {t.title: t for t in answers.tables}
    assert tables["ad: shares"].rows == [["Ad A", "6", "60.0%", "31.3% - 83.2%"], ["Ad B", "4", "40.0%", "16.8% - 68.7%"]]
    summary = {row[0]: row for row in tables["Questions"].rows}
    assert summary["liking"][1:] == ["likert", "10", "mean 3.4 (min 1, max 7)"]
    assert [c.name for c in answers.charts] == [
        "answers-ad", "answers-ad-by-age", "answers-ad-by-region", "answers-liking-by-age", "answers-liking-by-region",
    ]
    population = by_title["Population"]
    marginals = {t.title: t for t in population.tables}["Marginals"]
    assert marginals.columns == ["dimension", "category", "target", "sampled", "achieved"]
    assert marginals.rows == [["region", "North", "5", "5", "5"], ["region", "South", "5", "5", "4"]]
    assert [c.name for c in population.charts] == ["population-region"]
    assert population.charts[0].title == "region: target vs achieved"
    out = tmp_path / "out" / "survey.html"
    write(report, out)
    html = out.read_text(encoding="utf-8")
    assert len(IMAGE.findall(html)) == 6
    assert "<script>" not in html and "<td>&lt;script&gt;alert(1)&lt;/script&gt; | a\nnew line</td>" in html
    write(report, out.with_suffix(".md"))
    markdown = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "| Person 0 | ad | Ad A | <script>alert(1)</script> \\| a<br>new line |" in markdown


def test_marginals_come_from_sampled_attributes_without_a_profile(tmp_path: Path) -> None:
    write_survey_run(tmp_path, profile=False)
    with open_run(tmp_path, SURVEY_RUN) as run:
        population = next(s for s in sections(run) if s.title == "Population")
    marginals = {t.title: t for t in population.tables}["Marginals"]
    assert marginals.columns == ["dimension", "category", "achieved"]  # no target recorded: no empty column
    assert marginals.rows == [["age", "18-29", "5"], ["age", "30-44", "5"], ["region", "North", "5"], ["region", "South", "5"]]
    assert [c.title for c in population.charts] == ["age: achieved (no target recorded)", "region: achieved (no target recorded)"]


# ----- troupe run --report -----


def test_run_with_report_writes_it_when_the_run_ends(fake: FakeOpenAI, prefect_server: str, tmp_path: Path) -> None:
    from flows.cli import app

    Responder().install(fake)
    scenario = tmp_path / "bakery.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    settings = ["--set", "llm.api_type=openai", "--set", f"llm.base_url={fake.url}", "--set", "llm.model=fake-model", "--quiet"]
    root, out = tmp_path / "datasets", tmp_path / "out" / "run.html"
    bad = CliRunner().invoke(app, ["run", str(scenario), "--datasets", str(root), "--report", str(tmp_path / "run.pdf"), *settings])
    assert bad.exit_code == 2, bad.output
    assert "--report" in bad.output and not root.exists() and fake.calls == 0  # stopped before any work
    result = CliRunner().invoke(app, ["run", str(scenario), "--datasets", str(root), "--run-id", "r-report", "--report", str(out), *settings])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert facts(html)["run id"] == "r-report" and facts(html)["LLM calls"] == str(fake.calls)
    assert IMAGE.search(html)


def test_people_are_grouped_by_few_values_or_by_quartile_bands_of_a_number() -> None:
    from troupe.report.data import grouping

    ages = grouping(range(20, 60))  # 40 distinct ages: quartile bands
    assert ages is not None and ages.order == ["20-29.25", "29.25-39.5", "39.5-49.75", "49.75-59"]
    assert [ages.of(a) for a in (20, 29, 30, 59)] == ["20-29.25", "20-29.25", "29.25-39.5", "49.75-59"]
    regions = grouping(["South", "North", "South", None])
    assert regions is not None and regions.order == ["North", "South"] and regions.of("North") == "North"
    assert grouping(["only"]) is None  # nothing to compare
    assert grouping([f"name {i}" for i in range(20)]) is None  # many texts: no chart could show them

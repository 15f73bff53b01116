"""Experiments in scenario files: arms over worlds, who is in which arm, results keyed by arm, and the
comparisons computed after the run.

The pipeline tests run the scenario below as a real Prefect flow against the fake server. Its
extraction replies depend on what each interview's record shows (the treatment arm's ad or not),
so the arm column, the arm's stimuli and the statistics are all checked against what the run
actually did; the expected statistics are recomputed with scipy from the datasets, never typed in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pytest
import yaml
from scipy import stats

from tests.conftest import flow_overrides, sql
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, kind_of, schema_of, talk, user_text
from troupe.datasets import connect, write_partition
from troupe.datasets.schemas import ANSWERS, COMPARISONS, EVENTS
from troupe.errors import SpecError
from troupe.experimentation.arms import Outcome, arm_world_name, assign, comparison_rows
from troupe.scenario import load_scenario
from troupe.simulation import plan_worlds, shard, step_plan

PEOPLE = ["Ana", "Ben", "Caio", "Dora", "Eli", "Fay"]
AD = "An ad: fresh bread at half price every morning."
WELCOME = "We are opening a bakery on your street."
STEPS = 2


def scenario_data(**experiment: Any) -> dict[str, Any]:
    """Six people interviewed alone for two steps; the treatment arm also sees an ad at step 1."""
    block: dict[str, Any] = {
        "arms": [
            {"name": "control", "description": "the announcement only"},
            {"name": "treatment", "stimuli": [{"step": 1, "kind": "see", "content": AD}]},
        ],
        "compare": [{"field": "score"}, {"field": "would_visit"}, {"question": "like", "test": "mann_whitney"}],
    }
    block.update(experiment)
    return {
        "name": "bakery-ad",
        "config": {"simulation.persona_max_items": 2, "simulation.max_turns_until_done": 1},
        "personas": [{"persona": {"name": name, "age": 30 + i, "occupation": {"title": "Clerk"}}} for i, name in enumerate(PEOPLE)],
        "worlds": [
            {
                "name": "Interview", "kind": "isolated", "steps": STEPS,
                "stimuli": [{"step": 1, "source": "Interviewer", "content": WELCOME}],
            }
        ],
        "extraction": {
            "objective": "Whether each person would visit the bakery.",
            "fields": {"would_visit": {"type": "bool"}, "score": {"type": "int", "description": "0 to 10"}},
        },
        "survey": {"after": "Interview", "questions": [{"type": "likert", "id": "like", "text": "How much do you like the bakery?", "scale": [1, 7]}]},
        "experiment": block,
    }


def write(tmp_path: Path, data: dict[str, Any], name: str = "arms") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# ----- load-time checks -----


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    target: Any = data
    *head, last = dotted.split(".")
    for part in head:
        target = target[int(part)] if part.isdigit() else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("dotted", "value", "fragments"),
    [
        ("experiment.arms.1.name", "control", ("experiment.arms: arms[1].name: two arms are named 'control'", "unique name")),
        ("experiment.arms", [{"name": "control"}], ("experiment.arms:", "at least 2")),
        ("experiment.arms.1.name", "Treatment", ("experiment.arms[1].name: 'Treatment': use lower-case letters",)),
        ("experiment.worlds", ["Lobby"], ("experiment.worlds[0]: no world is named 'Lobby'", "use one of: Interview")),
        ("experiment.control", "placebo", ("experiment.control: ", "no arm is named 'placebo'")),
        ("experiment.arms.1.stimuli.0.step", 3, ("experiment.arms[1].stimuli[0].step: step 3 is past world 'Interview''s 2 steps",)),
        ("experiment.arms.1.stimuli.0.to", ["Zoe"], ("experiment.arms[1].stimuli[0].to: 'Zoe' is in none of the experiment's worlds",)),
        ("experiment.compare.0", {"field": "price"}, ("experiment.compare[0].field: no extraction field is named 'price'", "would_visit, score")),
        ("experiment.compare.0", {"field": "score", "question": "like"}, ("experiment.compare[0]:", "exactly one of field")),
        ("experiment.compare.0", {"field": "score", "test": "z_test"}, ("experiment.compare[0].test:", "'z_test' is not a test", "welch_t_test")),
        ("experiment.compare.0", {"question": "nope"}, ("experiment.compare[0].question: no survey question has id 'nope'", "use one of: like")),
        ("survey.after", None, ("experiment.compare[2].question: the survey does not follow a world of the experiment",)),
        ("extraction.fields.score", {"type": "str"}, ("experiment.compare[0].test: welch_t_test needs numbers", "use test: chi_square")),
        ("extraction.fields.score", {"type": "list[str]"}, ("experiment.compare[0].field: 'score' is a list",)),
        ("extraction.fields.arm", {"type": "str"}, ("extraction.fields.arm: 'arm' is a column every extraction row has",)),
        ("experiment.assign", "between", ("experiment.compare[0].test: paired_t_test pairs each person's values across arms", "assign: between")),
        ("extraction.per", "world", ("experiment.compare[0].test: paired_t_test pairs", "per: world has no person to pair")),
    ],
)
def test_a_bad_experiment_is_one_line_naming_the_field(tmp_path: Path, dotted: str, value: Any, fragments: tuple[str, ...]) -> None:
    data = scenario_data()
    data["experiment"]["compare"][0]["test"] = "paired_t_test" if "paired" in fragments[0] else "welch_t_test"
    path = write(tmp_path, _set(data, dotted, value))
    with pytest.raises(SpecError) as error:
        load_scenario(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, message


def test_an_arm_copy_may_not_take_another_worlds_name(tmp_path: Path) -> None:
    data = scenario_data()
    data["worlds"].append({"name": "Interview B", "steps": 1})
    data["experiment"]["worlds"] = ["Interview"]
    with pytest.raises(SpecError, match=r"worlds: world 'Interview B' has the name the experiment gives an arm's copy of 'Interview'"):
        load_scenario(write(tmp_path, data))


# ----- planning: arms as worlds, assignment, stimuli -----


def test_within_copies_every_world_per_arm_with_neutral_names(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, scenario_data()))
    plans = plan_worlds(loaded)
    assert [(p.name, p.arm) for p in plans] == [
        *((f"Interview A/{n}", "control") for n in PEOPLE), *((f"Interview B/{n}", "treatment") for n in PEOPLE),
    ]
    # A shard never mixes arms, even when both would fit in it.
    shards = list(shard(plans, 100))
    assert [{p.arm for p in s} for s in shards] == [{"control"}, {"treatment"}]
    arms = {a.name: a for a in loaded.scenario.experiment.arms}  # type: ignore[union-attr]
    spec = loaded.scenario.worlds[0]
    assert [s.content for s in step_plan(spec, 1, arms["control"]).stimuli] == [WELCOME]
    assert [s.content for s in step_plan(spec, 1, arms["treatment"]).stimuli] == [WELCOME, AD]
    assert step_plan(spec, 2, arms["treatment"]).stimuli == []


def test_an_arm_can_replace_the_worlds_stimuli_of_a_step(tmp_path: Path) -> None:
    data = scenario_data()
    data["experiment"]["arms"][1]["replace"] = True
    loaded = load_scenario(write(tmp_path, data))
    treatment = loaded.scenario.experiment.arms[1]  # type: ignore[union-attr]
    assert [s.content for s in step_plan(loaded.scenario.worlds[0], 1, treatment).stimuli] == [AD]


def test_between_draws_each_person_into_one_arm_reproducibly(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, scenario_data(assign="between", seed=11)))
    plans = plan_worlds(loaded)
    drawn = {p.agents[0]: p.arm for p in plans}
    assert sorted(drawn) == PEOPLE and len(plans) == len(PEOPLE)  # everyone once
    assert drawn == assign(PEOPLE, ["control", "treatment"], 11)
    assert sorted(list(drawn.values()).count(arm) for arm in ("control", "treatment")) == [3, 3]  # balanced
    assert all(p.name == f"{arm_world_name('Interview', 0 if p.arm == 'control' else 1)}/{p.agents[0]}" for p in plans)
    # Another seed draws differently (for these six people and these seeds), the same seed the same.
    draws = {tuple(sorted(n for n, a in assign(PEOPLE, ["c", "t"], seed).items() if a == "c")) for seed in range(20)}
    assert len(draws) > 5 and assign(PEOPLE, ["c", "t"], 11) == assign(PEOPLE, ["c", "t"], 11)


def test_a_group_world_is_split_by_arm_between_subjects(tmp_path: Path) -> None:
    data = scenario_data(assign="between", seed=2)
    data["worlds"][0]["kind"] = "TinySocialNetwork"
    data["worlds"][0]["relations"] = [[a, b] for a, b in zip(PEOPLE, PEOPLE[1:])]
    loaded = load_scenario(write(tmp_path, data))
    plans = plan_worlds(loaded)
    drawn = assign(PEOPLE, ["control", "treatment"], 2)
    assert [(p.name, p.arm, p.agents) for p in plans] == [
        ("Interview A", "control", [n for n in PEOPLE if drawn[n] == "control"]),
        ("Interview B", "treatment", [n for n in PEOPLE if drawn[n] == "treatment"]),
    ]


# ----- statistics on known samples (no LLM) -----


def test_comparison_rows_are_scipys_tests_with_effect_sizes() -> None:
    rng = np.random.default_rng(5)
    control, treatment = rng.normal(5, 1, 40).tolist(), rng.normal(6, 1, 40).tolist()
    outcome = Outcome(metric="score", source="extraction", column="score", kind="numeric", test="welch_t_test", alpha=0.05)
    rows = comparison_rows(outcome, {"treatment": treatment, "control": control}, ["control", "treatment"], "control")
    assert [(r["arm"], r["n"]) for r in rows] == [("control", 40), ("treatment", 40)]
    assert rows[0].get("p_value") is None and rows[0]["mean"] == pytest.approx(np.mean(control))
    expected = stats.ttest_ind(control, treatment, equal_var=False)
    assert rows[1]["statistic"] == pytest.approx(expected.statistic) and rows[1]["p_value"] == pytest.approx(expected.pvalue)
    pooled = np.sqrt((np.var(control, ddof=1) + np.var(treatment, ddof=1)) / 2)
    assert rows[1]["effect_size"] == pytest.approx((np.mean(treatment) - np.mean(control)) / pooled)
    assert rows[1]["significant"] is True and rows[1]["effect_size_kind"] == "cohen_d"

    shares = Outcome(metric="visit", source="extraction", column="visit", kind="categorical", test="chi_square", alpha=0.05)
    rows = comparison_rows(shares, {"control": [True] * 3 + [False] * 7, "treatment": [True] * 8 + [False] * 2}, ["control", "treatment"], "control")
    assert json.loads(rows[1]["shares"]) == {"no": 0.2, "yes": 0.8} and rows[1]["mean"] == pytest.approx(0.8)
    assert rows[1]["p_value"] == pytest.approx(stats.chi2_contingency([[7, 3], [2, 8]]).pvalue)


def test_paired_tests_pair_each_person_across_arms() -> None:
    """A shift every person shares is clear person by person and lost in the spread between people."""
    rng = np.random.default_rng(9)
    people = [f"p{i}" for i in range(30)]
    before = rng.normal(50, 10, 30)
    after = before + 1.0 + rng.normal(0, 0.5, 30)
    order = rng.permutation(30)  # the treatment arm's rows come in another order
    values = {"control": before.tolist(), "treatment": after[order].tolist()}
    subjects = {"control": people, "treatment": [people[i] for i in order]}
    arms = ["control", "treatment"]
    for test, scipy_test, kind in (("paired_t_test", stats.ttest_rel, "cohen_dz"), ("wilcoxon", stats.wilcoxon, "rank_biserial_paired")):
        outcome = Outcome(metric="m", source="extraction", column="m", kind="numeric", test=test, alpha=0.05)
        row = comparison_rows(outcome, values, arms, "control", subjects)[1]
        expected = scipy_test(after, before)
        assert row["p_value"] == pytest.approx(expected.pvalue) and row["significant"] and row["effect_size_kind"] == kind
    independent = Outcome(metric="m", source="extraction", column="m", kind="numeric", test="welch_t_test", alpha=0.05)
    assert comparison_rows(independent, values, arms, "control")[1]["p_value"] > 0.5  # the same data as independent samples
    # Cohen's d_z is the mean shift over the shifts' spread; a person missing from one arm is left out of the pairs.
    outcome = Outcome(metric="m", source="extraction", column="m", kind="numeric", test="paired_t_test", alpha=0.05)
    row = comparison_rows(outcome, values, arms, "control", subjects)[1]
    assert row["effect_size"] == pytest.approx(np.mean(after - before) / np.std(after - before, ddof=1))
    fewer = {"control": values["control"][:-1], "treatment": values["treatment"]}
    short = comparison_rows(outcome, fewer, arms, "control", {"control": people[:-1], "treatment": subjects["treatment"]})[1]
    assert short["p_value"] == pytest.approx(stats.ttest_rel(after[:-1], before[:-1]).pvalue) and short["n"] == 30


def test_the_experiment_knows_every_test_of_statistical_tester() -> None:
    """arms.py keeps its own list of test names (so planning a run imports no scipy): the same names."""
    from troupe.experimentation import arms, statistics

    assert {*arms.NUMERIC_TESTS, "chi_square"} == set(statistics.TESTS) and arms.PAIRED_TESTS == statistics.PAIRED_TESTS


def test_a_test_that_cannot_run_is_a_note_not_a_failed_run() -> None:
    outcome = Outcome(metric="score", source="extraction", column="score", kind="numeric", test="t_test", alpha=0.05)
    few = comparison_rows(outcome, {"control": [1.0, 2.0], "treatment": [3.0]}, ["control", "treatment"], "control")
    assert few[1]["note"] == "treatment: needs at least 2 values, got 1" and few[1].get("p_value") is None
    flat = comparison_rows(outcome, {"control": [2.0, 2.0], "treatment": [2.0, 2.0]}, ["control", "treatment"], "control")
    assert "constant" in flat[1]["note"]
    empty = comparison_rows(outcome, {"control": [1.0, 2.0]}, ["control", "treatment"], "control")
    assert empty[1]["n"] == 0 and empty[1]["note"] == "treatment: no values"
    shares = outcome.model_copy(update={"kind": "categorical", "test": "chi_square"})
    one_category = comparison_rows(shares, {"control": [True, True], "treatment": [True]}, ["control", "treatment"], "control")
    assert one_category[1]["note"].startswith("every answer is the same category")
    no_control = comparison_rows(shares, {"treatment": [True, False]}, ["control", "treatment"], "control")
    assert no_control[1]["note"] == "control: no values" and no_control[1].get("p_value") is None


# ----- the pipeline -----


class Responder(Script):
    """Turns: one TALK, then DONE. Extraction: a person whose record shows the ad would visit and scores
    high; without it, not and low (scores vary by person, and so does each person's shift)."""

    def __init__(self, ad: str = "half price", count: str = "score") -> None:
        super().__init__({name: (lambda n, name=name: [talk(f"{name} thinks about it."), done()]) for name in PEOPLE})
        self.ad, self.count = ad, count

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        subject = re.search(r"Extract it for (\w+)\.", user_text(body)) if kind_of(body) == "other" else None
        if subject:
            saw_ad = self.ad in user_text(body)
            place = PEOPLE.index(subject[1])
            reply = {"would_visit": saw_ad, self.count: 6 + place % 2 if saw_ad else 2 + place % 3}  # each person's shift varies
            return {key: reply.get(key, f"{key} of {subject[1]}") for key in schema_of(body)["properties"]}
        return super().__call__(body)


@pytest.fixture(autouse=True)
def _send_prefect_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "prefect_server" in request.fixturenames:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)


def run(fake: FakeOpenAI, root: Path, run_id: str, scenario: Path, **extra: str) -> dict[str, Any]:
    from flows import scenario_flow

    return scenario_flow(str(scenario), run_id=run_id, datasets_root=str(root), overrides=flow_overrides(fake, **extra))


def by_arm(root: Path, query: str) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for arm, value in sql(root, query):
        grouped.setdefault(arm, []).append(value)
    return grouped


def test_a_within_experiment_runs_with_results_keyed_by_arm(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    Responder().install(fake)
    scenario = write(tmp_path, scenario_data())
    root = tmp_path / "datasets"
    summary = run(fake, root, "w1", scenario, **{"pipeline.shard_size": "4"})
    worlds = 2 * len(PEOPLE)
    assert summary["status"] == "completed"
    assert fake.calls == worlds * (STEPS + 2)  # a turn per step, an extraction and a survey answer per world
    assert summary["rows"]["comparisons"] == 3 * 2  # three outcomes, a row per arm

    # Every world's events carry its arm; the ad reached exactly the treatment arm's six people.
    assert sql(root, "SELECT DISTINCT left(world, 11), arm FROM events ORDER BY 1") == [("Interview A", "control"), ("Interview B", "treatment")]
    assert sql(root, f"SELECT arm, count(*) FROM events WHERE content = '{AD}' GROUP BY arm") == [("treatment", len(PEOPLE))]
    assert sql(root, "SELECT count(*) FROM events WHERE arm IS NULL") == [(0,)]
    for dataset, schema in (("events", EVENTS), ("answers", ANSWERS), ("comparisons", COMPARISONS)):  # labelled parts keep the schema
        assert [c[0] for c in sql(root, f"DESCRIBE {dataset}")] == [*schema.names, "run_id"], dataset
    # Extractions and answers: one per person per arm (within subjects: everyone in both arms).
    assert sql(root, "SELECT arm, count(DISTINCT agent), count(*) FROM extractions GROUP BY arm ORDER BY arm") == [
        ("control", 6, 6), ("treatment", 6, 6),
    ]
    assert sql(root, "SELECT arm, count(DISTINCT agent) FROM answers GROUP BY arm ORDER BY arm") == [("control", 6), ("treatment", 6)]
    assert sql(root, "SELECT DISTINCT arm, would_visit FROM extractions ORDER BY arm") == [("control", False), ("treatment", True)]

    # The comparisons are scipy's tests over those datasets.
    scores = by_arm(root, "SELECT arm, score FROM extractions")
    likes = by_arm(root, "SELECT arm, answer_number FROM answers WHERE question_id = 'like'")
    found = {(r[0], r[1]): r[2:] for r in sql(root, "SELECT metric, arm, n, mean, shares, statistic, p_value, effect_size_kind, significant, note FROM comparisons")}
    # Within subjects, a number is compared person by person: scipy's paired t-test over each agent's two scores.
    paired = dict(sql(root, "SELECT agent, score FROM extractions WHERE arm = 'control'")), dict(sql(root, "SELECT agent, score FROM extractions WHERE arm = 'treatment'"))
    expected = stats.ttest_rel([paired[1][n] for n in PEOPLE], [paired[0][n] for n in PEOPLE])
    assert found[("score", "control")][:2] == (6, pytest.approx(np.mean(scores["control"])))
    assert found[("score", "treatment")][3] == pytest.approx(expected.statistic) and found[("score", "treatment")][4] == pytest.approx(expected.pvalue)
    assert found[("score", "treatment")][5:7] == ("cohen_dz", True)
    assert json.loads(found[("would_visit", "control")][2]) == {"no": 1.0} and json.loads(found[("would_visit", "treatment")][2]) == {"yes": 1.0}
    assert found[("would_visit", "treatment")][4] == pytest.approx(stats.chi2_contingency([[6, 0], [0, 6]]).pvalue)
    mann = stats.mannwhitneyu(likes["control"], likes["treatment"], alternative="two-sided")
    assert found[("like", "treatment")][4] == pytest.approx(mann.pvalue) and found[("like", "treatment")][5] == "rank_biserial"

    # The report shows them.
    from troupe.report import build_report

    report = build_report(root, "w1")
    section = next(s for s in report.sections if s.title == "Experiment")
    assert [row[:3] for row in section.tables[0].rows] == [[m, t, a] for m, t in (("score", "paired_t_test"), ("would_visit", "chi_square"), ("like", "mann_whitney")) for a in ("control", "treatment")]
    assert {c.name for c in section.charts} == {"experiment-score", "experiment-would-visit", "experiment-like"}

    # A rerun under another id comes from the task cache (no call) and labels its parts the same way.
    fake.reset()
    Responder().install(fake)
    again = run(fake, root, "w2", scenario, **{"pipeline.shard_size": "4"})
    assert fake.calls == 0 and again["tasks_cached"] == again["task_runs"] > 0
    assert sql(root, "SELECT run_id, arm, count(*) FROM extractions GROUP BY ALL ORDER BY ALL") == [
        ("w1", "control", 6), ("w1", "treatment", 6), ("w2", "control", 6), ("w2", "treatment", 6),
    ]


def test_a_between_experiment_puts_each_person_in_one_arm(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    Responder().install(fake)
    compare = [{"field": "score", "test": "mann_whitney"}, {"field": "score"}]  # one outcome, two tests
    scenario = write(tmp_path, scenario_data(assign="between", seed=4, compare=compare))
    root = tmp_path / "datasets"
    summary = run(fake, root, "b1", scenario)
    assert summary["status"] == "completed" and fake.calls == len(PEOPLE) * (STEPS + 2)
    drawn = assign(PEOPLE, ["control", "treatment"], 4)
    assert dict(sql(root, "SELECT agent, arm FROM extractions")) == drawn
    assert dict(sql(root, "SELECT DISTINCT agent, arm FROM answers")) == drawn
    rows = sql(root, "SELECT arm, n, p_value FROM comparisons WHERE test = 'mann_whitney' ORDER BY arm")
    scores = by_arm(root, "SELECT arm, score FROM extractions")
    assert [r[:2] for r in rows] == [("control", 3), ("treatment", 3)]
    assert rows[1][2] == pytest.approx(stats.mannwhitneyu(scores["control"], scores["treatment"], alternative="two-sided").pvalue)

    from troupe.report import build_report

    section = next(s for s in build_report(root, "b1").sections if s.title == "Experiment")
    assert [c.name for c in section.charts] == ["experiment-score-mann-whitney", "experiment-score-welch-t-test"]


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bakery_ad_experiment.yaml"


def test_the_example_experiment_is_valid() -> None:
    """examples/bakery_ad_experiment.yaml loads, and its reduction binds over the comparisons view."""
    from flows.preflight import sql_problems

    loaded = load_scenario(EXAMPLE)
    experiment = loaded.scenario.experiment
    assert experiment is not None and experiment.assign == "between" and [a.name for a in experiment.arms] == ["control", "treatment"]
    assert sql_problems(loaded.scenario, EXAMPLE) == []


def test_the_example_experiment_runs(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    """The example as written, with six listed people in place of its generated population."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    del data["population"]
    data["personas"] = scenario_data()["personas"]
    Responder(ad="first coffee free", count="visits_per_month").install(fake)
    root = tmp_path / "datasets"
    summary = run(fake, root, "ex", write(tmp_path, data, "example"))
    assert summary["status"] == "completed" and summary["rows"]["comparisons"] == 3 * 2
    drawn = assign(PEOPLE, ["control", "treatment"], data["experiment"]["seed"])
    assert dict(sql(root, "SELECT agent, arm FROM extractions")) == drawn
    assert dict(sql(root, "SELECT arm, bool_and(would_visit) FROM extractions GROUP BY arm")) == {"control": False, "treatment": True}
    effect = sql(root, "SELECT metric, test, arm, n FROM reduction_effect")
    assert effect == [
        (metric, test, arm, 3)
        for metric, test in (("visits_per_month", "mann_whitney"), ("visits_per_month", "welch_t_test"), ("would_visit", "chi_square"))
        for arm in ("control", "treatment")
    ]


def test_runs_without_the_arm_column_still_read(tmp_path: Path) -> None:
    """A run written before the arm column existed reads through the same views, with a null arm."""
    old = pa.table({"world": ["Square"], "agent": ["Ana"], "call_key": ["k"], "opinion": ["fine"]})
    new = pa.table({"world": ["Square A"], "agent": ["Ana"], "call_key": ["k2"], "arm": ["control"], "opinion": ["good"]})
    write_partition(tmp_path, "extractions", "old", old)
    write_partition(tmp_path, "extractions", "new", new)
    connection = connect(tmp_path)
    try:
        assert connection.sql("SELECT run_id, arm, opinion FROM extractions ORDER BY run_id").fetchall() == [
            ("new", "control", "good"), ("old", None, "fine"),
        ]
        assert connection.sql("SELECT count(*) FROM comparisons").fetchall() == [(0,)]  # an empty view before any experiment
    finally:
        connection.close()


def test_validate_names_the_experiment() -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["validate", str(Path(__file__).resolve().parent.parent / "examples" / "bakery_ad_experiment.yaml")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "an experiment (between) with arms control, treatment" in result.stdout

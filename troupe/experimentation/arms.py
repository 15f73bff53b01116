"""A scenario's experiment: its arms as worlds, who is in which arm, and the comparisons after the run.

The scenario form (``experiment:``, models in :mod:`troupe.scenario`) names two or more arms.
Every world the experiment applies to is copied once per arm: the copy of world ``Square`` for
the i-th arm is ``Square A``, ``Square B``, ... (``Interview A/Ana`` for a ``kind: isolated``
entry). The copy's name carries the arm's letter, never its name, because a world's name can reach
its agents (the world tells a speaker that nobody heard them) and "treatment" must not. The
datasets carry the arm's name in their ``arm`` column instead.

With ``assign: within`` everyone is in every arm; with ``assign: between`` each person is drawn
into one arm: the run's people are shuffled with ``random.Random(seed)`` and dealt to the arms in
turn, so arm sizes differ by at most one and the same people, arms and seed give the same draw.

After the run, :func:`comparisons_table` reads each compared outcome per arm from the run's views
and tests every arm against the control with :class:`~troupe.experimentation.StatisticalTester`
(scipy): the ``comparisons`` dataset. In a within design the same people are in every arm, so a
number is compared person by person by default (``paired_t_test``; ``wilcoxon``), each person's
value in an arm against their own in the control.
"""

from __future__ import annotations

import json
import random
import string
import warnings
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import BaseModel

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from ..scenario import Arm, Comparison, ExperimentBlock, Scenario

LETTERS = string.ascii_uppercase  # an experiment has at most 26 arms
# StatisticalTester's tests by name, kept here so planning a run imports no scipy (a test checks they agree)
NUMERIC_TESTS = ("t_test", "welch_t_test", "mann_whitney", "anova", "ks_test", "paired_t_test", "wilcoxon")
PAIRED_TESTS = ("paired_t_test", "wilcoxon")  # each person's value in an arm against their own in the control
_NUMERIC_FIELDS = ("int", "float", "bool")  # storage types a numeric test can read (a bool as 0/1)
_NUMERIC_QUESTIONS = ("likert", "numeric")
_CHOICE_QUESTIONS = ("multiple_choice", "yes_no")


def arm_world_name(world: str, index: int) -> str:
    """The name of the copy of world for the arm at index (``Square A``)."""
    return f"{world} {LETTERS[index]}"


def assign(people: Sequence[str], arms: Sequence[str], seed: int) -> dict[str, str]:
    """Each person's arm: people shuffled by a seeded RNG, then dealt to the arms in turn (balanced)."""
    order = list(people)
    random.Random(seed).shuffle(order)
    return {name: arms[i % len(arms)] for i, name in enumerate(order)}


def arm_members(experiment: ExperimentBlock, people: Sequence[str], everyone: Sequence[str]) -> list[tuple[Arm, list[str]]]:
    """The people of one world in each arm: all of them (within), or those drawn into it (between).

    The between draw is over ``everyone`` (the run's people), so a person is in the same arm in
    every world of the experiment.
    """
    if experiment.assign == "within":
        return [(arm, list(people)) for arm in experiment.arms]
    drawn = assign(everyone, [a.name for a in experiment.arms], experiment.seed)
    return [(arm, [p for p in people if drawn[p] == arm.name]) for arm in experiment.arms]


# ----- outcomes -----


class OutcomeError(ValueError):
    """A comparison names something the scenario does not have, or a test its values cannot take."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        super().__init__(f"{field}: {problem}; {fix}")
        self.field, self.problem, self.fix = field, problem, fix


class Outcome(BaseModel):
    """Where one compared outcome's values are and how they are tested."""

    metric: str
    source: Literal["extraction", "survey"]
    column: str  # of extractions, or of answers (answer, answer_number or category)
    kind: Literal["numeric", "categorical"]
    test: str
    alpha: float

    @property
    def paired(self) -> bool:
        return self.test in PAIRED_TESTS


def outcome(scenario: Scenario, comparison: Comparison) -> Outcome:
    """The outcome a comparison reads, its kind and its test (the default test for its type when none is given)."""
    experiment = scenario.experiment
    if comparison.field is not None:
        source, fields = "extraction", (scenario.extraction.fields if scenario.extraction else {})
        spec = fields.get(comparison.field)
        if spec is None:
            raise OutcomeError("field", f"no extraction field is named {comparison.field!r}", f"use one of: {', '.join(fields) or '(no extraction)'}")
        if spec.storage_type == "list[str]":
            raise OutcomeError("field", f"{comparison.field!r} is a list; its values are not one number or category", "compare a str, choice, bool, int or float field")
        numeric_ok, column = spec.storage_type in _NUMERIC_FIELDS, comparison.field
        numbers = spec.storage_type in ("int", "float")  # a yes/no is compared as shares unless a test says otherwise
        per_person = scenario.extraction is not None and scenario.extraction.per == "agent"
    else:
        source, survey = "survey", scenario.survey
        questions = {q["id"]: q for q in (survey.questions if survey else [])}
        question = questions.get(comparison.question or "")
        if survey is None or question is None:
            raise OutcomeError("question", f"no survey question has id {comparison.question!r}", f"use one of: {', '.join(questions) or '(no survey)'}")
        if experiment is None or survey.after is None or not experiment.applies_to(survey.after):
            raise OutcomeError("question", "the survey does not follow a world of the experiment, so its answers have no arm", "set survey.after to one of the experiment's worlds")
        kind = question["type"]
        if kind in _NUMERIC_QUESTIONS:
            numeric_ok, column = True, "answer_number"
        elif kind in _CHOICE_QUESTIONS:
            numeric_ok, column = False, "answer"
        elif kind == "free_text" and survey.categories:
            numeric_ok, column = False, "category"
        else:
            fix = "set survey.categories to sort its answers into categories" if kind == "free_text" else "compare a likert, numeric, multiple_choice or yes_no question"
            raise OutcomeError("question", f"{comparison.question!r} is a {kind} question, whose answers are not one number or category", fix)
        numbers, per_person = numeric_ok, True
    pairable = per_person and experiment is not None and experiment.assign == "within"
    test = comparison.test or (("paired_t_test" if pairable else "welch_t_test") if numbers else "chi_square")
    if test in NUMERIC_TESTS and not numeric_ok:
        raise OutcomeError("test", f"{test} needs numbers and {comparison.metric!r} has categories", "use test: chi_square")
    if test in PAIRED_TESTS and not pairable:
        why = "extraction per: world has no person to pair" if not per_person else "with assign: between each person is in one arm"
        raise OutcomeError("test", f"{test} pairs each person's values across arms, and {why}", "use welch_t_test or mann_whitney, or assign: within")
    if test == "chi_square" and column == "answer_number":
        column = "answer"  # a Likert or numeric answer taken as a category
    kind_of = "categorical" if test == "chi_square" else "numeric"
    return Outcome(metric=comparison.metric, source=source, column=column, kind=kind_of, test=test, alpha=comparison.alpha)  # type: ignore[arg-type]


# ----- the comparisons -----


def _values(connection: duckdb.DuckDBPyConnection, outcome: Outcome) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
    """The outcome's non-null values per arm, and whose each one is (the agent), from the run's views.

    Rows come in world order, so a person in two worlds of the experiment has their values in
    the same order in every arm (the arms' copies of the worlds sort alike).
    """
    column = '"' + outcome.column.replace('"', '""') + '"'
    if outcome.source == "extraction":
        rows = connection.execute(
            f"SELECT arm, agent, {column} FROM extractions WHERE arm IS NOT NULL AND {column} IS NOT NULL ORDER BY world, agent"
        ).fetchall()
    else:
        rows = connection.execute(
            f"SELECT arm, agent, {column} FROM answers WHERE arm IS NOT NULL AND {column} IS NOT NULL AND question_id = ? ORDER BY agent",
            [outcome.metric],
        ).fetchall()
    values: dict[str, list[Any]] = {}
    subjects: dict[str, list[str]] = {}
    for arm, agent, value in rows:
        values.setdefault(arm, []).append(value)
        subjects.setdefault(arm, []).append(agent)
    return values, subjects


def pairs(control: Sequence[Any], control_subjects: Sequence[str], treatment: Sequence[Any], subjects: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """The values of the people in both samples, aligned person by person (a person's n-th value with their n-th)."""

    def keyed(people: Sequence[str], values: Sequence[Any]) -> dict[tuple[str, int], Any]:
        seen: Counter[str] = Counter()
        found = {}
        for person, value in zip(people, values):
            found[(person, seen[person])] = value
            seen[person] += 1
        return found

    first, second = keyed(control_subjects, control), keyed(subjects, treatment)
    shared = sorted(first.keys() & second.keys())
    return [first[k] for k in shared], [second[k] for k in shared]


def _category(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _summary(outcome: Outcome, values: list[Any]) -> dict[str, Any]:
    """n, and the mean (numbers; a yes/no as its share of yes) or each category's share."""
    import numpy as np

    if not values:
        return {"n": 0, "mean": None, "shares": None}
    if outcome.kind == "numeric" or all(isinstance(v, bool) for v in values):
        mean = float(np.mean(np.asarray(values, dtype=float)))
    else:
        mean = None
    shares = None
    if outcome.kind == "categorical":
        counts = Counter(_category(v) for v in values)
        shares = json.dumps({k: counts[k] / len(values) for k in sorted(counts)}, ensure_ascii=False)
    return {"n": len(values), "mean": mean, "shares": shares}


def _test(
    outcome: Outcome, control: list[Any], treatment: list[Any], arm: str, control_arm: str, subjects: dict[str, list[str]] | None
) -> dict[str, Any]:
    """The test of one arm against the control, through StatisticalTester; a test scipy cannot run is a note."""
    import math

    from .statistics import StatisticalTester

    for name, sample in ((control_arm, control), (arm, treatment)):
        if not sample:
            return {"note": f"{name}: no values"}
    if outcome.paired:
        if subjects is None:
            raise ValueError("a paired test needs the subject of every value")
        control, treatment = pairs(control, subjects[control_arm], treatment, subjects[arm])
    prepare = _category if outcome.kind == "categorical" else float
    tester = StatisticalTester(
        {control_arm: {outcome.metric: [prepare(v) for v in control]}}, {arm: {outcome.metric: [prepare(v) for v in treatment]}}
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant samples: scipy warns and returns nan
            result = tester.run_test(outcome.test, outcome.alpha)[arm][outcome.metric]
    except (ValueError, ZeroDivisionError) as exc:
        return {"note": str(exc).split(": ", 1)[-1]}  # without StatisticalTester's "<arm>.<metric>: " prefix
    if math.isnan(result["p_value"]):
        return {"note": "the test is undefined: both arms' values are constant"}
    effect = None if math.isnan(result["effect_size"]) else result["effect_size"]
    return {
        "statistic": result["statistic"], "p_value": result["p_value"], "effect_size": effect,
        "effect_size_kind": result["effect_size_kind"], "significant": result["significant"],
    }


def comparison_rows(
    outcome: Outcome, values: dict[str, list[Any]], arms: Sequence[str], control: str, subjects: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """One row per arm, the control first: its summary, and for every other arm its test against the control.

    ``subjects`` names whose each value is (a paired test pairs the people in both arms by it).
    """
    rows = []
    for arm in [control, *(a for a in arms if a != control)]:
        row: dict[str, Any] = {
            "metric": outcome.metric, "source": outcome.source, "test": outcome.test, "arm": arm, "control": control,
            "alpha": outcome.alpha, **_summary(outcome, values.get(arm, [])),
        }
        if arm != control:
            row.update(_test(outcome, values.get(control, []), values.get(arm, []), arm, control, subjects))
        rows.append(row)
    return rows


def comparisons_table(connection: duckdb.DuckDBPyConnection, scenario: Scenario) -> pa.Table:
    """Every comparison of the scenario's experiment over one run's views (``connect(root, run_id=...)``)."""
    from ..datasets.io import table_from_rows
    from ..datasets.schemas import COMPARISONS

    experiment = scenario.experiment
    rows: list[dict[str, Any]] = []
    if experiment is not None:
        arms = [a.name for a in experiment.arms]
        for comparison in experiment.compare:
            found = outcome(scenario, comparison)
            values, subjects = _values(connection, found)
            rows.extend(comparison_rows(found, values, arms, experiment.control_arm, subjects))
    return table_from_rows(rows, COMPARISONS)


def label(table: pa.Table, arm: str) -> pa.Table:
    """table with its ``arm`` column set to arm (every row of a part belongs to one arm)."""
    from ..datasets.io import with_constant

    return with_constant(table, "arm", arm)

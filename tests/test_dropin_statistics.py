"""Experiments without an LLM: statistics on known distributions, blinding, in-place runs, empirical validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from troupe.errors import SpecError
from troupe.experimentation import ABRandomizer, InPlaceExperimentRunner, StatisticalTester
from troupe.validation import SimulationExperimentEmpiricalValidator, compare_distribution, read_survey_table


def _normal(mean: float, n: int = 300, seed: int = 1) -> list[float]:
    return list(np.random.default_rng(seed).normal(mean, 1.0, n))


NUMERIC_TESTS = ["t_test", "welch_t_test", "mann_whitney", "anova", "ks_test"]


@pytest.mark.parametrize("test_type", NUMERIC_TESTS)
def test_a_real_shift_is_significant_and_no_shift_is_not(test_type: str) -> None:
    control = {"control": {"score": _normal(0.0, seed=1)}}
    shifted = StatisticalTester(control, {"treated": {"score": _normal(0.8, seed=2)}}).run_test(test_type)["treated"]["score"]
    same = StatisticalTester(control, {"placebo": {"score": _normal(0.0, seed=3)}}).run_test(test_type)["placebo"]["score"]
    assert shifted["significant"] and shifted["p_value"] < 1e-6
    assert not same["significant"] and same["p_value"] > 0.05
    assert shifted["effect_size"] > same["effect_size"] >= -0.2
    assert shifted["control_sample_size"] == shifted["treatment_sample_size"] == 300


def test_cohens_d_recovers_the_true_standardised_difference() -> None:
    result = StatisticalTester({"c": {"m": _normal(0.0, 5000, 4)}}, {"t": {"m": _normal(0.5, 5000, 5)}}).run_test("t_test")
    assert result["t"]["m"]["effect_size_kind"] == "cohen_d"
    assert result["t"]["m"]["effect_size"] == pytest.approx(0.5, abs=0.05)
    assert result["t"]["m"]["mean_difference"] == pytest.approx(0.5, abs=0.05)


def test_welch_differs_from_student_when_variances_differ() -> None:
    rng = np.random.default_rng(6)
    control, treatment = list(rng.normal(0, 1, 20)), list(rng.normal(0.5, 5, 200))
    tester = StatisticalTester({"c": {"m": control}}, {"t": {"m": treatment}})
    student, welch = tester.run_test("t_test")["t"]["m"], tester.run_test("welch_t_test")["t"]["m"]
    assert student["degrees_of_freedom"] == 218
    assert welch["degrees_of_freedom"] < 218 and welch["p_value"] != pytest.approx(student["p_value"])


def test_chi_square_on_categories_with_cramers_v() -> None:
    control = ["yes"] * 50 + ["no"] * 50
    tester = StatisticalTester({"c": {"answer": control}}, {"t": {"answer": ["yes"] * 80 + ["no"] * 20}, "same": {"answer": list(control)}})
    results = tester.run_test("chi_square")
    assert results["t"]["answer"]["significant"] and results["t"]["answer"]["effect_size"] > 0.25
    assert results["same"]["answer"]["p_value"] == pytest.approx(1.0)
    assert results["same"]["answer"]["effect_size"] == pytest.approx(0.0, abs=1e-9)


def test_only_shared_metrics_are_tested_and_bad_input_is_named() -> None:
    results = StatisticalTester({"c": {"a": [1, 2, 3], "b": [1, 2, 3]}}, {"t": {"a": [2, 3, 4]}}).run_test("mann_whitney")
    assert set(results["t"]) == {"a"}
    with pytest.raises(ValueError, match="exactly one experiment"):
        StatisticalTester({"c1": {"a": [1]}, "c2": {"a": [1]}}, {"t": {"a": [1]}})
    with pytest.raises(ValueError, match="t.a: control: values must be numbers"):
        StatisticalTester({"c": {"a": ["x", "y"]}}, {"t": {"a": [1, 2]}}).run_test("t_test")
    with pytest.raises(ValueError, match="not supported"):
        StatisticalTester({"c": {"a": [1, 2]}}, {"t": {"a": [1, 2]}}).run_test("z_test")


def test_ab_randomizer_is_seeded_mixes_orders_and_unblinds() -> None:
    first, second = ABRandomizer(random_seed=7), ABRandomizer(random_seed=7)
    orders = [first.randomize(i, "control", "treatment") for i in range(40)]
    assert orders == [second.randomize(i, "control", "treatment") for i in range(40)]
    assert 10 < sum(o == ("treatment", "control") for o in orders) < 30  # both orders occur
    for i, (a, b) in enumerate(orders):
        assert first.derandomize(i, a, b) == ("control", "treatment")
        shown_first = "control" if a == "control" else "treatment"
        assert first.derandomize_name(i, "A") == shown_first
    assert ABRandomizer(random_seed=8).randomize(0, 1, 2) is not None
    blinded = ABRandomizer(passtrough_name=["neither"])
    blinded.randomize(0, "x", "y")
    assert blinded.derandomize_name(0, "neither") == "neither"
    with pytest.raises(ValueError, match="not a blind name"):
        blinded.derandomize_name(0, "C")
    with pytest.raises(KeyError, match="never randomized"):
        blinded.derandomize(5, "x", "y")


def test_in_place_runner_runs_each_arm_once_across_reruns(tmp_path: Path) -> None:
    path = tmp_path / "experiment.json"
    seen = []
    for run in range(3):  # three executions of the same notebook
        runner = InPlaceExperimentRunner(path)
        runner.add_experiment("control")
        runner.add_experiment("treatment")
        if runner.has_finished_all_experiments():
            break
        if runner.get_active_experiment() is None:
            runner.activate_next_experiment()
        arm = runner.get_active_experiment()
        seen.append(arm)
        mean = 0.0 if arm == "control" else 1.0
        runner.add_experiment_results({"score": _normal(mean, 100, run)[:50]})
        runner.add_experiment_results({"score": _normal(mean, 100, run)[50:]})  # lists extend
        runner.activate_next_experiment()
    assert seen == ["control", "treatment"]
    runner = InPlaceExperimentRunner(path)
    assert runner.has_finished_all_experiments() and len(runner.get_experiment_results("control")["score"]) == 100
    results = runner.run_statistical_tests("control")
    assert results["treatment"]["score"]["significant"]
    assert json.loads(path.read_text())["experiments"]["control"]["statistical_test_results_vs_others"]
    assert "<td>control</td><td>finished</td><td>score (100)</td>" in runner._repr_html_()


def test_in_place_runner_rejects_a_broken_state_file(tmp_path: Path) -> None:
    path = tmp_path / "experiment.json"
    path.write_text('{"experiments": {"control": {"finished": "maybe"}}}')
    with pytest.raises(SpecError, match=r"experiment.json: experiments.control.finished: .*delete it"):
        InPlaceExperimentRunner(path)


# ----- empirical validation -----


def test_matching_distributions_have_zero_distance_and_shifted_ones_do_not() -> None:
    survey = {"agree": 0.5, "neutral": 0.3, "disagree": 0.2}
    scale = ["disagree", "neutral", "agree"]
    same = compare_distribution("q", ["agree"] * 50 + ["neutral"] * 30 + ["disagree"] * 20, survey, ordinal=scale)
    assert same.total_variation == pytest.approx(0) and same.wasserstein == pytest.approx(0) and same.p_value == pytest.approx(1)
    shifted = compare_distribution("q", ["disagree"] * 50 + ["neutral"] * 30 + ["agree"] * 20, survey, ordinal=scale)
    # Known values: shares (0.5, 0.3, 0.2) against (0.2, 0.3, 0.5) on positions 0, 1, 2.
    assert shifted.total_variation == pytest.approx(0.3)
    assert shifted.wasserstein == pytest.approx(0.6)
    assert shifted.significant and shifted.p_value < 1e-6


def test_survey_tables_in_csv_and_parquet_with_counts(tmp_path: Path) -> None:
    frame = pl.DataFrame({"question": ["visit"] * 2 + ["price"] * 2, "category": ["yes", "no", "fair", "high"], "count": [60, 40, 70, 30]})
    frame.write_csv(tmp_path / "survey.csv")
    frame.write_parquet(tmp_path / "survey.parquet")
    simulated = {"visit": ["yes"] * 12 + ["no"] * 8, "price": ["high"] * 18 + ["fair"] * 2}
    for name in ("survey.csv", "survey.parquet"):
        report = SimulationExperimentEmpiricalValidator().validate(simulated, tmp_path / name)
        by_question = {q.question: q for q in report.questions}
        assert by_question["visit"].test == "chi-square homogeneity" and not by_question["visit"].significant
        assert by_question["price"].significant and by_question["price"].total_variation == pytest.approx(0.6)
        section = report.to_markdown()
        assert section.startswith("## Empirical validation") and "| price | 20 |" in section
        assert "<table>" in report._repr_html_()


def test_bad_survey_tables_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "no_share.csv").write_text("question,category\nq,a\n")
    (tmp_path / "negative.csv").write_text("question,category,share\nq,a,0.5\nq,b,-1\n")
    with pytest.raises(SpecError, match="no_share.csv: missing column.s. share or count"):
        read_survey_table(tmp_path / "no_share.csv")
    with pytest.raises(SpecError, match=r"negative.csv: row 3: share -1.0 is not a non-negative number"):
        read_survey_table(tmp_path / "negative.csv")
    with pytest.raises(SpecError, match="use .csv or .parquet"):
        (tmp_path / "s.xlsx").write_text("x")
        read_survey_table(tmp_path / "s.xlsx")
    with pytest.raises(SpecError, match="no rows for question.s. other"):
        SimulationExperimentEmpiricalValidator().validate({"other": ["a"]}, {"q": {"a": 1.0}})

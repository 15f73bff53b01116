"""Statistical tests between a control and treatments, as TinyTroupe's StatisticalTester runs them.

Every test is scipy's; only effect sizes scipy does not offer are derived here from its outputs
(Cohen's d from means and standard deviations, rank-biserial r from U, eta squared from the
group sums of squares). Results are plain dicts, keyed as TinyTroupe's are, so code written for
TinyTroupe reads them unchanged: ``results[treatment][metric]["p_value"]``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
from pydantic import BaseModel
from scipy import stats
from scipy.stats import contingency

TestType = Literal["t_test", "welch_t_test", "mann_whitney", "anova", "chi_square", "ks_test", "paired_t_test", "wilcoxon"]


class TestResult(BaseModel):
    """One test of one metric, control against one treatment."""

    __test__ = False  # not a pytest test class

    test_type: str
    statistic: float
    p_value: float
    significant: bool
    effect_size: float
    effect_size_kind: str
    control_sample_size: int
    treatment_sample_size: int
    control_mean: float | None = None
    treatment_mean: float | None = None
    mean_difference: float | None = None
    degrees_of_freedom: float | None = None


def _numeric(values: Sequence[Any], where: str) -> np.ndarray:
    try:
        array = np.asarray([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: values must be numbers for this test; use chi_square for categories") from None
    if array.size < 2:
        raise ValueError(f"{where}: needs at least 2 values, got {array.size}")
    return array


def cohen_d(control: Sequence[float], treatment: Sequence[float]) -> float:
    """(treatment mean - control mean) / pooled standard deviation (0 when both are constant)."""
    x, y = np.asarray(control, dtype=float), np.asarray(treatment, dtype=float)
    pooled = math.sqrt(((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / (x.size + y.size - 2))
    return 0.0 if pooled == 0 else float((y.mean() - x.mean()) / pooled)


def _means(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"control_mean": float(x.mean()), "treatment_mean": float(y.mean()), "mean_difference": float(y.mean() - x.mean())}


def _t(x: np.ndarray, y: np.ndarray, equal_var: bool) -> dict[str, Any]:
    result = stats.ttest_ind(x, y, equal_var=equal_var)
    return {
        "test_type": "Student t-test (equal variance)" if equal_var else "Welch t-test (unequal variance)",
        "statistic": float(result.statistic), "p_value": float(result.pvalue),
        "effect_size": cohen_d(x, y), "effect_size_kind": "cohen_d",
        "degrees_of_freedom": float(result.df), **_means(x, y),
    }


def _mann_whitney(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    result = stats.mannwhitneyu(x, y, alternative="two-sided")
    # Rank-biserial correlation from U (= pairs where control > treatment): > 0 when the treatment is higher.
    r = 1.0 - 2.0 * float(result.statistic) / (x.size * y.size)
    return {
        "test_type": "Mann-Whitney U", "statistic": float(result.statistic), "p_value": float(result.pvalue),
        "effect_size": r, "effect_size_kind": "rank_biserial", **_means(x, y),
    }


def _anova(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    result = stats.f_oneway(x, y)
    everything = np.concatenate([x, y])
    total = float(((everything - everything.mean()) ** 2).sum())
    between = sum(g.size * (g.mean() - everything.mean()) ** 2 for g in (x, y))
    return {
        "test_type": "one-way ANOVA", "statistic": float(result.statistic), "p_value": float(result.pvalue),
        "effect_size": 0.0 if total == 0 else float(between / total), "effect_size_kind": "eta_squared",
        "degrees_of_freedom": 1.0, **_means(x, y),
    }


def _ks(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    result = stats.ks_2samp(x, y)
    return {
        "test_type": "Kolmogorov-Smirnov (two-sample)", "statistic": float(result.statistic),
        "p_value": float(result.pvalue), "effect_size": float(result.statistic), "effect_size_kind": "ks_distance",
        **_means(x, y),
    }


def _differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """treatment - control, subject by subject (a paired test's samples are aligned: one value per subject each)."""
    if x.size != y.size:
        raise ValueError(f"a paired test needs one value per subject in both samples, in the same order; got {x.size} and {y.size}")
    return y - x


def _paired_t(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    difference = _differences(x, y)
    result = stats.ttest_rel(y, x)  # > 0 when the treatment is higher
    sd = float(difference.std(ddof=1))
    return {
        "test_type": "paired t-test", "statistic": float(result.statistic), "p_value": float(result.pvalue),
        "effect_size": 0.0 if sd == 0 else float(difference.mean() / sd), "effect_size_kind": "cohen_dz",
        "degrees_of_freedom": float(result.df), **_means(x, y),
    }


def _wilcoxon(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    difference = _differences(x, y)
    result = stats.wilcoxon(difference)  # zero differences dropped (zero_method="wilcox")
    # Matched-pairs rank-biserial correlation (T+ - T-) / (T+ + T-) from scipy's ranks: > 0 when the treatment is higher.
    moved = difference[difference != 0]
    ranks = stats.rankdata(np.abs(moved))
    total = float(ranks.sum())
    return {
        "test_type": "Wilcoxon signed-rank", "statistic": float(result.statistic), "p_value": float(result.pvalue),
        "effect_size": 0.0 if total == 0 else float((2 * ranks[moved > 0].sum() - total) / total),
        "effect_size_kind": "rank_biserial_paired", **_means(x, y),
    }


def chi_square_table(control: Sequence[Any], treatment: Sequence[Any]) -> np.ndarray:
    """The 2 x k table of category counts (rows: control, treatment) from two lists of answers."""
    groups = ["control"] * len(control) + ["treatment"] * len(treatment)
    answers = [str(v) for v in [*control, *treatment]]
    return contingency.crosstab(groups, answers).count


def _chi_square(control: Sequence[Any], treatment: Sequence[Any]) -> dict[str, Any]:
    table = chi_square_table(control, treatment)
    if table.shape[1] < 2:
        raise ValueError("chi_square: every answer is the same category; the test needs at least two")
    result = stats.chi2_contingency(table)
    return {
        "test_type": "chi-square test of independence", "statistic": float(result.statistic),
        "p_value": float(result.pvalue), "degrees_of_freedom": float(result.dof),
        "effect_size": float(contingency.association(table, method="cramer")), "effect_size_kind": "cramers_v",
    }


_NUMERIC: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, Any]]] = {
    "t_test": lambda x, y: _t(x, y, equal_var=True),
    "welch_t_test": lambda x, y: _t(x, y, equal_var=False),
    "mann_whitney": _mann_whitney,
    "anova": _anova,
    "ks_test": _ks,
    "paired_t_test": _paired_t,
    "wilcoxon": _wilcoxon,
}
PAIRED_TESTS: tuple[str, ...] = ("paired_t_test", "wilcoxon")  # the samples are aligned: value i of both is subject i
TESTS: tuple[str, ...] = (*_NUMERIC, "chi_square")


def compare(control: Sequence[Any], treatment: Sequence[Any], test_type: str = "welch_t_test", alpha: float = 0.05, *, where: str = "") -> TestResult:
    """One test of two samples."""
    where = where or test_type
    if test_type == "chi_square":
        fields = _chi_square(control, treatment)
    elif test_type in _NUMERIC:
        fields = _NUMERIC[test_type](_numeric(control, f"{where}: control"), _numeric(treatment, f"{where}: treatment"))
    else:
        raise ValueError(f"test_type: {test_type!r} is not supported; use one of {', '.join(TESTS)}")
    return TestResult(
        significant=bool(fields["p_value"] < alpha),
        control_sample_size=len(control),
        treatment_sample_size=len(treatment),
        **fields,
    )


class StatisticalTester:
    """Control against each treatment, per metric: ``StatisticalTester(control, treatments).run_test("mann_whitney")``.

    ``control_experiment_data`` is ``{"control": {"metric": [values]}}`` (exactly one experiment),
    ``treatments_experiment_data`` is ``{"treatment_1": {"metric": [values]}, ...}``; with
    ``results_key`` each experiment's metrics sit under that key (as InPlaceExperimentRunner stores them).
    The paired tests (``paired_t_test``, ``wilcoxon``) take the same subjects in both samples, in the
    same order.
    """

    def __init__(
        self,
        control_experiment_data: Mapping[str, Mapping[str, Any]],
        treatments_experiment_data: Mapping[str, Mapping[str, Any]],
        results_key: str | None = None,
    ) -> None:
        if results_key:
            control_experiment_data = {k: v[results_key] for k, v in control_experiment_data.items()}
            treatments_experiment_data = {k: v[results_key] for k, v in treatments_experiment_data.items()}
        if len(control_experiment_data) != 1:
            raise ValueError(
                f"control_experiment_data: expected exactly one experiment, got {len(control_experiment_data)}; "
                "pass {'control': {'metric': [values]}}"
            )
        if not treatments_experiment_data:
            raise ValueError("treatments_experiment_data: no treatments; pass {'treatment': {'metric': [values]}}")
        for experiment, metrics in [*control_experiment_data.items(), *treatments_experiment_data.items()]:
            for metric, values in metrics.items():
                if not isinstance(values, (list, tuple)):
                    raise TypeError(f"{experiment}.{metric}: values must be a list, got {type(values).__name__}")
        self.control_experiment_data = dict(control_experiment_data)
        self.treatments_experiment_data = dict(treatments_experiment_data)

    def run_test(self, test_type: str = "welch_t_test", alpha: float = 0.05, **kwargs: Any) -> dict[str, dict[str, dict[str, Any]]]:
        """``{treatment: {metric: result}}`` for every metric the control and that treatment share."""
        if test_type not in TESTS:
            raise ValueError(f"test_type: {test_type!r} is not supported; use one of {', '.join(TESTS)}")
        (control_name, control), = self.control_experiment_data.items()
        results: dict[str, dict[str, dict[str, Any]]] = {}
        for treatment_name, treatment in self.treatments_experiment_data.items():
            results[treatment_name] = {
                metric: compare(control[metric], treatment[metric], test_type, alpha, where=f"{treatment_name}.{metric}").model_dump()
                for metric in control
                if metric in treatment
            }
        return results

"""Empirical validation: does a simulated answer distribution look like a real survey's?

Per question, the simulated answers (one per agent) are compared with the real survey's category
shares or counts: a chi-square test (goodness of fit against shares; homogeneity when the survey
gives counts), the total-variation distance, the Jensen-Shannon distance, and for ordinal scales
the Wasserstein (earth mover's) distance over the scale's positions. Tests and distances are
scipy's. The survey table is CSV or Parquet with columns ``question``, ``category`` and ``share``
or ``count``.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from ..errors import SpecError

Distribution = Mapping[str, float]


class DistributionComparison(BaseModel):
    """One question: the two distributions, the test and the distances."""

    question: str
    categories: list[str]
    simulated_shares: list[float]
    empirical_shares: list[float]
    simulated_n: int
    test: str
    statistic: float
    p_value: float
    significant: bool
    total_variation: float
    jensen_shannon: float
    wasserstein: float | None = None


class EmpiricalValidationReport(BaseModel):
    alpha: float
    questions: list[DistributionComparison]

    def to_markdown(self) -> str:
        """A report section: one row per question."""
        lines = [
            "## Empirical validation",
            "",
            f"Simulated answers against the survey, per question (alpha = {self.alpha}).",
            "",
            "| question | n simulated | test | p-value | differs | total variation | Wasserstein |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for q in self.questions:
            wasserstein = "" if q.wasserstein is None else f"{q.wasserstein:.3f}"
            lines.append(
                f"| {q.question} | {q.simulated_n} | {q.test} | {q.p_value:.4g} | {'yes' if q.significant else 'no'} "
                f"| {q.total_variation:.3f} | {wasserstein} |"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from .._html import table

        return table(
            ["question", "n", "test", "p-value", "differs", "TV", "Wasserstein"],
            [
                [q.question, q.simulated_n, q.test, f"{q.p_value:.4g}", "yes" if q.significant else "no",
                 f"{q.total_variation:.3f}", "" if q.wasserstein is None else f"{q.wasserstein:.3f}"]
                for q in self.questions
            ],
        )


def read_survey_table(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, float]], bool]:
    """``({question: {category: value}}, values_are_counts)`` from a CSV or Parquet survey table."""
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file; give the path of a CSV or Parquet survey table")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema_length=None)
        elif suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        else:
            raise SpecError(f"{path}: unknown table format {suffix or '(none)'}; use .csv or .parquet")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SpecError(f"{path}: cannot read the table ({str(exc).splitlines()[0]}); check its format") from None
    columns = set(frame.columns)
    missing = [c for c in ("question", "category") if c not in columns]
    value = "count" if "count" in columns else "share" if "share" in columns else None
    if missing or value is None:
        need = [*missing, *([] if value else ["share or count"])]
        raise SpecError(f"{path}: missing column(s) {', '.join(need)}; the table needs question, category and share or count")
    table: dict[str, dict[str, float]] = {}
    for row, (question, category, amount) in enumerate(frame.select("question", "category", value).iter_rows(), start=2):
        try:
            number = float(amount)
        except (TypeError, ValueError):
            number = float("nan")
        if not np.isfinite(number) or number < 0:
            raise SpecError(f"{path}: row {row}: {value} {amount!r} is not a non-negative number; fix that cell")
        table.setdefault(str(question), {})[str(category)] = table.get(str(question), {}).get(str(category), 0.0) + number
    return table, value == "count"


def _shares(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    total = array.sum()
    return array / total if total > 0 else array


def compare_distribution(
    question: str,
    simulated: Sequence[Any] | Distribution,
    empirical: Distribution,
    *,
    empirical_counts: bool = False,
    ordinal: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> DistributionComparison:
    """Compare simulated answers (a list of answers, or category counts) with the survey's distribution."""
    from scipy import stats
    from scipy.spatial import distance

    sim_counts = Counter(str(a) for a in simulated) if not isinstance(simulated, Mapping) else {str(k): float(v) for k, v in simulated.items()}
    unknown = [c for c in sim_counts if ordinal is not None and c not in ordinal]
    if unknown:
        raise ValueError(f"{question}: simulated answers {unknown} are not on the ordinal scale {list(ordinal or [])}")
    categories = list(ordinal) if ordinal is not None else sorted(set(empirical) | set(sim_counts))
    observed = np.asarray([sim_counts.get(c, 0.0) for c in categories], dtype=float)
    real = np.asarray([float(empirical.get(c, 0.0)) for c in categories], dtype=float)
    n = int(observed.sum())
    if n == 0 or real.sum() == 0:
        raise ValueError(f"{question}: {'no simulated answers' if n == 0 else 'the survey has no answers'} to compare")
    p, q = _shares(observed), _shares(real)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if empirical_counts:
            keep = (observed + real) > 0
            result = stats.chi2_contingency(np.vstack([observed[keep], real[keep]]))
            test, statistic, p_value = "chi-square homogeneity", float(result.statistic), float(result.pvalue)
        else:
            result = stats.chisquare(observed, q * n)
            test, statistic, p_value = "chi-square goodness of fit", float(result.statistic), float(result.pvalue)
    positions = np.arange(len(categories), dtype=float)
    return DistributionComparison(
        question=question,
        categories=categories,
        simulated_shares=[float(x) for x in p],
        empirical_shares=[float(x) for x in q],
        simulated_n=n,
        test=test,
        statistic=statistic,
        p_value=p_value if np.isfinite(p_value) else 0.0,
        significant=bool(not np.isfinite(p_value) or p_value < alpha),
        total_variation=float(distance.cityblock(p, q) / 2),  # TV distance = half the L1 distance
        jensen_shannon=float(distance.jensenshannon(p, q, base=2)),
        wasserstein=float(stats.wasserstein_distance(positions, positions, p, q)) if ordinal is not None else None,
    )


class SimulationExperimentEmpiricalValidator:
    """Compare a simulation's answers with a real survey, question by question.

    TinyTroupe's class of this name compares per-agent datasets; this one compares answer
    distributions with a survey's published shares or counts (what surveys usually release), so
    its method is ``validate(simulated, survey)`` rather than TinyTroupe's dataset readers.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def validate(
        self,
        simulated: Mapping[str, Sequence[Any] | Distribution],
        empirical: str | os.PathLike[str] | Mapping[str, Distribution],
        *,
        empirical_counts: bool = False,
        ordinal: Mapping[str, Sequence[str]] | None = None,
    ) -> EmpiricalValidationReport:
        """One comparison per question present in both; a question only one side has is an error."""
        if isinstance(empirical, (str, os.PathLike)):
            table, empirical_counts = read_survey_table(empirical)
        else:
            table = {q: dict(d) for q, d in empirical.items()}
        missing = sorted(set(simulated) - set(table))
        if missing:
            raise SpecError(
                f"survey table: no rows for question(s) {', '.join(missing)}; add them or drop them from the simulated answers"
            )
        ordinal = ordinal or {}
        return EmpiricalValidationReport(
            alpha=self.alpha,
            questions=[
                compare_distribution(
                    question, answers, table[question], empirical_counts=empirical_counts,
                    ordinal=ordinal.get(question), alpha=self.alpha,
                )
                for question, answers in simulated.items()
            ],
        )


def validate_against_survey(
    simulated: Mapping[str, Sequence[Any] | Distribution],
    empirical: str | os.PathLike[str] | Mapping[str, Distribution],
    **kwargs: Any,
) -> EmpiricalValidationReport:
    """Function form of :meth:`SimulationExperimentEmpiricalValidator.validate` (alpha= sets the level)."""
    alpha = kwargs.pop("alpha", 0.05)
    return SimulationExperimentEmpiricalValidator(alpha).validate(simulated, empirical, **kwargs)

"""Ready-made reductions of survey answers and extractions: shares with intervals, distributions, means.

Each takes a polars DataFrame of answer rows (the ``answers`` dataset, or
``pl.DataFrame(r.model_dump() for r in survey.ask(...))``) and returns a polars DataFrame, so
the same call serves a notebook and a pipeline's reduction stage. Counting is polars; the
statistics come from scipy (Wilson score intervals for shares, Student's t for means), never
hand-written formulas. ``distribution_by`` joins the ``personas`` dataset with DuckDB so the
grouping can be any SQL expression over a persona (``age``, ``spec_json->>'$.residence'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

CONFIDENCE = 0.95


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion (scipy's binomtest), (nan, nan) without trials."""
    if trials == 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    interval = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def _picks(answers: "pl.DataFrame") -> "pl.DataFrame":
    """One row per picked option: checkbox and rank answers explode their list, others keep ``answer``."""
    import polars as pl

    listed = pl.col("answer_list").is_not_null()
    exploded = answers.filter(listed).with_columns(pl.col("answer_list").alias("answer")).explode("answer")
    return pl.concat([answers.filter(~listed), exploded.select(answers.columns)], how="vertical_relaxed")


def choice_shares(
    answers: "pl.DataFrame", *, by: Sequence[str] = (), question_id: str | None = None, confidence: float = CONFIDENCE
) -> "pl.DataFrame":
    """Share of respondents giving each answer, per question (and per ``by`` columns), with a Wilson interval.

    Columns: question_id, *by, answer, n (respondents giving it), respondents, share, ci_low, ci_high.
    For checkbox and rank questions an answer is one picked option, so shares may add up to more than 1.
    """
    import polars as pl

    if question_id is not None:
        answers = answers.filter(pl.col("question_id") == question_id)
    keys = ["question_id", *by]
    # One row per respondent and question (per pick for checkbox/rank, picks being distinct): count rows.
    respondents = answers.group_by(keys).agg(respondents=pl.len())
    counts = _picks(answers).group_by([*keys, "answer"]).agg(n=pl.len())
    table = counts.join(respondents, on=keys).with_columns(share=pl.col("n") / pl.col("respondents"))
    bounds = [wilson_interval(n, total, confidence) for n, total in zip(table["n"], table["respondents"])]
    table = table.with_columns(
        ci_low=pl.Series([b[0] for b in bounds], dtype=pl.Float64),
        ci_high=pl.Series([b[1] for b in bounds], dtype=pl.Float64),
    )
    return table.select([*keys, "answer", "n", "respondents", "share", "ci_low", "ci_high"]).sort(
        [*keys, "n", "answer"], descending=[False] * len(keys) + [True, False]
    )


def numeric_means(
    answers: "pl.DataFrame", *, by: Sequence[str] = (), question_id: str | None = None, confidence: float = CONFIDENCE
) -> "pl.DataFrame":
    """Mean of ``answer_number`` (Likert and numeric questions) per question and ``by``, with a t interval.

    Columns: question_id, *by, n, mean, sd, ci_low, ci_high (the interval is null below two answers).
    """
    import polars as pl
    from scipy import stats

    numbers = answers.filter(pl.col("answer_number").is_not_null())
    if question_id is not None:
        numbers = numbers.filter(pl.col("question_id") == question_id)
    keys = ["question_id", *by]
    table = numbers.group_by(keys).agg(
        n=pl.len(), mean=pl.col("answer_number").mean(), sd=pl.col("answer_number").std()
    ).sort(keys)
    lows, highs = [], []
    for n, mean, sd in zip(table["n"], table["mean"], table["sd"]):
        if n < 2 or sd is None:
            lows.append(None)
            highs.append(None)
            continue
        low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sd / n**0.5) if sd > 0 else (mean, mean)
        lows.append(float(low))
        highs.append(float(high))
    return table.with_columns(
        ci_low=pl.Series(lows, dtype=pl.Float64), ci_high=pl.Series(highs, dtype=pl.Float64)
    )


def distribution_by(
    answers: "pl.DataFrame", personas: "pl.DataFrame", attribute: str, *, question_id: str | None = None
) -> "pl.DataFrame":
    """How answers spread within each group of personas: attribute is a SQL expression over ``personas``.

    Columns: question_id, "group", answer, n, share (of the group's respondents). Rows join on
    persona_id (and run_id when both frames have it). Checkbox/rank picks count one row each.
    """
    import duckdb
    import polars as pl

    if question_id is not None:
        answers = answers.filter(pl.col("question_id") == question_id)
    join = ["persona_id", *(["run_id"] if "run_id" in answers.columns and "run_id" in personas.columns else [])]
    on = " AND ".join(f"a.{c} = p.{c}" for c in join)
    connection = duckdb.connect()
    try:
        connection.register("answer_rows", answers.to_arrow())
        connection.register("answer_picks", _picks(answers).to_arrow())
        connection.register("persona_rows", personas.unique(subset=join).to_arrow())
        connection.execute("SET enable_external_access = false")  # attribute is SQL: let it read only these frames
        sql = f"""
            WITH sizes AS (
                SELECT a.question_id, CAST(({attribute}) AS VARCHAR) AS "group", count(*) AS respondents
                FROM answer_rows a JOIN persona_rows p ON {on} GROUP BY ALL
            ), counts AS (
                SELECT a.question_id, CAST(({attribute}) AS VARCHAR) AS "group", a.answer, count(*) AS n
                FROM answer_picks a JOIN persona_rows p ON {on} GROUP BY ALL
            )
            SELECT c.question_id, c."group", c.answer, c.n, c.n / s.respondents AS share
            FROM counts c JOIN sizes s ON c.question_id = s.question_id AND c."group" IS NOT DISTINCT FROM s."group"
            ORDER BY 1, 2, n DESC, 3
        """
        return pl.from_arrow(connection.sql(sql).arrow())  # type: ignore[return-value]
    finally:
        connection.close()

"""A run's report sections, read from its DuckDB views.

Each section is drawn only when its data exists: a run without a survey has no answers section,
a run without a population spec has no marginals chart. What a section finds is decided by
dataset and column names, which docs/reports.md lists:

- ``runs`` and ``llm_calls``: the run's facts and its calls by purpose;
- ``personas`` (and its ``sampled`` column, or a ``population_profile`` dataset with
  ``dimension, category, target, achieved`` and optionally ``sampled``): the people and the population's marginals;
- ``answers``: the survey's answers, choice shares with 95% intervals, answers by attribute;
- ``extractions``: the extracted records, shares of their yes/no and categorical fields;
- ``comparisons``: an experiment's outcomes per arm and each arm's test against the control, with a chart per outcome;
- ``failures``: the items that failed alone, when any did;
- ``reduction_<name>``: each reduction's table, ranked by support when it has a label column
  (``title``, ``idea``, ``name``, ``category`` or ``world``) and a numeric support or count column
  (``support``, ``support_count``, ``supporters``, ``votes``, ``ideas``, ``utterances`` or ``lines``).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from ..run_data import RunData
from . import charts
from .model import Chart, Section, Table

ROW_LIMIT = 50  # rows per table in a report: the datasets hold the rest
CELL_LIMIT = 300  # characters per cell
CATEGORY_LIMIT = 12  # categories a bar chart shows before it stops being readable
ATTRIBUTE_LIMIT = 3  # persona attributes that answers are broken down by

CHOICE_TYPES = {"choice", "multiple_choice", "yes_no"}
MULTI_TYPES = {"checkbox"}
NUMERIC_TYPES = {"likert", "numeric", "linear_scale"}
LABEL_COLUMNS = ("title", "idea", "name", "category", "world")
# what a reduction's rows are ranked by: support for ideas, then counts (ideas per category, lines per conversation)
SUPPORT_COLUMNS = ("support", "support_count", "supporters", "votes", "ideas", "utterances", "lines")


def text(value: Any) -> str:
    """A cell as a reader wants it: no 'None', short floats, lists joined, long text cut."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (list, tuple)):
        return "; ".join(text(v) for v in value)
    value = str(value)
    return value if len(value) <= CELL_LIMIT else value[: CELL_LIMIT - 1] + "…"


def table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> Table:
    columns = list(columns if columns is not None else (rows[0] if rows else []))
    return Table(
        title=title, columns=columns, rows=[[text(row.get(c)) for c in columns] for row in rows[:ROW_LIMIT]], total=len(rows)
    )


def wilson(k: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of k successes in n (scipy's), which stays inside 0-1 for small n."""
    from scipy.stats import binomtest

    interval = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def shares_chart(name: str, title: str, counts: Counter[str], n: int) -> Chart | None:
    """Shares of n with intervals, largest first; None when there is nothing to compare."""
    if n == 0 or not 1 <= len(counts) <= CATEGORY_LIMIT:
        return None
    labels = [label for label, _ in counts.most_common()]
    intervals = [wilson(counts[label], n) for label in labels]
    return charts.shares_with_intervals(
        name, title, labels, [counts[label] / n for label in labels], [lo for lo, _ in intervals], [hi for _, hi in intervals], n
    )


def shares_table(title: str, counts: Counter[str], n: int) -> Table:
    rows = []
    for label, k in counts.most_common():
        lo, hi = wilson(k, n)
        rows.append({"answer": label, "count": k, "share": f"{k / n:.1%}", "95% interval": f"{lo:.1%} - {hi:.1%}"})
    return table(title, rows, ["answer", "count", "share", "95% interval"])


# ----- the run -----

_RUN_FACTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "scenario": lambda r: text(r["scenario"]),
    "status": lambda r: text(r["status"]) + (f": {r['error']}" if r.get("error") else ""),
    "model": lambda r: f"{r['model']} ({r['api_type']})",
    "started": lambda r: text(r["started"]),
    "finished": lambda r: text(r["finished"]),
    "wall time": lambda r: "" if r["seconds"] is None else f"{r['seconds']:.1f} s",
    "LLM calls": lambda r: str(r["calls"]),
    "cache hits": lambda r: str(r["cache_hits"]),
    "tokens": lambda r: f"{r['prompt_tokens']} prompt + {r['completion_tokens']} completion",
    "cost": lambda r: f"${r['cost_usd']:.4f}",
    "troupe": lambda r: text(r["troupe_version"]),
}
_RUN_COLUMNS = {"run_id", "scenario", "scenario_hash", "started", "finished", "status", "error", "model", "api_type", "calls",
                "cache_hits", "prompt_tokens", "completion_tokens", "cost_usd", "troupe_version", "seconds"}


def run_section(run: RunData) -> Section:
    facts = [("run id", run.run_id)]
    if run.has("runs"):
        row = run.rows("SELECT *, epoch(finished) - epoch(started) AS seconds FROM runs LIMIT 1")[0]
        facts += [(label, fact(row)) for label, fact in _RUN_FACTS.items()]
        facts += [(key, text(value)) for key, value in row.items() if key not in _RUN_COLUMNS]  # columns newer runs add
    else:
        facts.append(("status", "no runs row: the run did not finish writing"))
    tables = []
    if run.has("llm_calls"):
        tables.append(
            table(
                "LLM calls by purpose",
                run.rows(
                    "SELECT split_part(purpose, ':', 1) AS purpose, count(*) AS calls, "
                    "count(*) FILTER (WHERE cache_hit) AS cache_hits, sum(prompt_tokens) AS prompt_tokens, "
                    "sum(completion_tokens) AS completion_tokens, avg(latency_s) FILTER (WHERE NOT cache_hit) AS mean_latency_s, "
                    "sum(cost_usd) AS cost_usd FROM llm_calls GROUP BY 1 ORDER BY calls DESC, purpose"
                ),
            )
        )
    return Section(title="Run", facts=facts, tables=tables)


# ----- the population -----


def _profile(run: RunData) -> list[dict[str, Any]]:
    """(dimension, category, target, achieved) rows: recorded by the run, or counted from personas.sampled."""
    if run.has("population_profile", "dimension", "category", "achieved"):
        present = run.columns("population_profile")
        optional = ", ".join(c if c in present else f"NULL AS {c}" for c in ("target", "sampled"))
        return run.rows(f"SELECT dimension, category, {optional}, achieved FROM population_profile ORDER BY dimension, category")
    if run.has("personas", "sampled"):
        values: dict[str, list[Any]] = defaultdict(list)
        for (sampled,) in run.values("SELECT sampled FROM personas WHERE sampled IS NOT NULL"):
            for dimension, value in (json.loads(sampled) if isinstance(sampled, str) else sampled or {}).items():
                values[dimension].append(value)
        rows = []
        for dimension, found in sorted(values.items()):
            by = grouping(found) or Grouping(text, sorted({text(v) for v in found}))
            counts = Counter(by.of(v) for v in found)
            rows += [
                {"dimension": dimension, "category": c, "target": None, "sampled": None, "achieved": counts[c]} for c in by.order if counts[c]
            ]
        return rows
    return []


def population_section(run: RunData) -> Section | None:
    if not run.has("personas"):
        return None
    present = run.columns("personas")
    columns = [c for c in ("name", "age", "gender", "nationality", "residence", "occupation_title") if c in present]
    people = run.rows(f"SELECT {', '.join(columns)} FROM personas ORDER BY name")
    section = Section(title="Population", text=f"{len(people)} people.", tables=[table("People", people, columns)])
    profile = _profile(run)
    if not profile:
        return section
    recorded = [c for c in ("target", "sampled") if any(r[c] is not None for r in profile)]
    section.tables.append(table("Marginals", profile, ["dimension", "category", *recorded, "achieved"]))
    by_dimension: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in profile:
        by_dimension[row["dimension"]].append(row)
    for dimension, rows in by_dimension.items():
        if len(rows) > CATEGORY_LIMIT:
            continue  # a numeric attribute drawn per person: the table has it, a bar per value would not help
        has_target = all(r["target"] is not None for r in rows)
        title = f"{dimension}: target vs achieved" if has_target else f"{dimension}: achieved (no target recorded)"
        section.charts.append(
            charts.target_vs_achieved(
                f"population-{dimension}", title, [text(r["category"]) for r in rows],
                [float(r["target"]) for r in rows] if has_target else None, [float(r["achieved"]) for r in rows],
            )
        )
    return section


# ----- survey answers -----


def _attributes(run: RunData) -> tuple[str, list[str]]:
    """A SQL expression giving each persona's attributes as JSON text, and the attributes worth a breakdown."""
    if run.has("personas", "sampled"):
        rows = run.values("SELECT sampled FROM personas WHERE sampled IS NOT NULL")
        names = list(dict.fromkeys(k for (s,) in rows for k in (json.loads(s) if isinstance(s, str) else s or {})))
        return "p.sampled", names[:ATTRIBUTE_LIMIT]
    present = run.columns("personas")
    names = [c for c in ("gender", "nationality", "occupation_title") if c in present]
    if not names:
        return "NULL", []
    expression = "json_object(" + ", ".join(f"'{c}', p.{c}" for c in names) + ")::VARCHAR"
    return expression, names


def _varies(values: Iterable[Any]) -> bool:
    distinct = {v for v in values if v not in (None, "")}
    return 2 <= len(distinct) <= CATEGORY_LIMIT


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Grouping:
    """How people are grouped by one attribute: by its values when they are few, else by quartile bands of a number."""

    of: Callable[[Any], str]
    order: list[str]


def grouping(values: Iterable[Any]) -> Grouping | None:
    """The grouping of these attribute values, or None when no chart could show them (one value, or many texts)."""
    present = [v for v in values if v not in (None, "")]
    distinct = sorted({text(v) for v in present})
    if 2 <= len(distinct) <= CATEGORY_LIMIT:
        return Grouping(text, distinct)
    numbers = [_number(v) for v in present]
    if len(distinct) <= CATEGORY_LIMIT or any(n is None for n in numbers):
        return None
    edges = sorted({min(numbers), *statistics.quantiles(numbers, n=4), max(numbers)})  # type: ignore[type-var]
    labels = [f"{lo:g}-{hi:g}" for lo, hi in zip(edges, edges[1:])]

    def band(value: Any) -> str:
        number = _number(value)
        if number is None:
            return ""
        return next((label for label, hi in zip(labels, edges[1:]) if number <= hi), labels[-1])

    return Grouping(band, labels)


def answers_section(run: RunData) -> Section | None:
    if not run.has("answers", "question_id", "answer"):
        return None
    present = set(run.columns("answers"))
    optional = {c: (f"a.{c}" if c in present else f"NULL AS {c}") for c in ("agent", "question_type", "answer_number", "answer_list", "why", "category")}
    expression, attributes = _attributes(run) if "persona_id" in present and run.has("personas", "persona_id") else ("NULL", [])
    join = "LEFT JOIN personas p ON p.persona_id = a.persona_id" if expression != "NULL" else ""
    answers = run.rows(
        f"SELECT a.question_id, a.answer, {', '.join(optional.values())}, {expression} AS attributes "
        f"FROM answers a {join} ORDER BY a.question_id, a.agent"
    )
    for row in answers:
        row["attributes"] = json.loads(row["attributes"]) if isinstance(row["attributes"], str) else {}
    section = Section(title="Survey answers", text=f"{len(answers)} answers.")
    by_question: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in answers:
        by_question[row["question_id"]].append(row)
    summary = []
    for question, rows in by_question.items():
        kind = rows[0]["question_type"] or ""
        summary.append({"question": question, "type": kind, "answers": len(rows), "summary": _summary(kind, rows)})
        section.charts.extend(_question_charts(question, kind, rows, attributes))
        if kind in CHOICE_TYPES | MULTI_TYPES:
            section.tables.append(shares_table(f"{question}: shares", _counts(kind, rows), len(rows)))
    section.tables.insert(0, table("Questions", summary, ["question", "type", "answers", "summary"]))
    categorised = ["category"] if any(row["category"] for row in answers) else []
    section.tables.append(table("Answers", answers, ["agent", "question_id", "answer", *categorised, "why"]))
    return section


def _counts(kind: str, rows: list[dict[str, Any]]) -> Counter[str]:
    if kind in MULTI_TYPES:
        return Counter(text(option) for row in rows for option in dict.fromkeys(row["answer_list"] or []))
    return Counter(text(row["answer"]) for row in rows)


def _summary(kind: str, rows: list[dict[str, Any]]) -> str:
    numbers = [row["answer_number"] for row in rows if row["answer_number"] is not None]
    if kind in NUMERIC_TYPES and numbers:
        return f"mean {sum(numbers) / len(numbers):.3g} (min {min(numbers):g}, max {max(numbers):g})"
    counts = _counts(kind, rows)
    return ", ".join(f"{label} {k / len(rows):.0%}" for label, k in counts.most_common(5))


def _question_charts(question: str, kind: str, rows: list[dict[str, Any]], attributes: list[str]) -> list[Chart]:
    found: list[Chart] = []
    if kind in CHOICE_TYPES | MULTI_TYPES:
        chart = shares_chart(f"answers-{question}", f"{question}: choice shares", _counts(kind, rows), len(rows))
        if chart is not None:
            found.append(chart)
    elif any(row["category"] for row in rows):  # free text the survey sorted into categories
        chart = shares_chart(f"answers-{question}-categories", f"{question}: categories", Counter(text(row["category"]) for row in rows), len(rows))
        if chart is not None:
            found.append(chart)
    for attribute in attributes:
        by = grouping(row["attributes"].get(attribute) for row in rows)
        if by is None:
            continue
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            groups[by.of(row["attributes"].get(attribute))].append(row)
        names = [g for g in by.order if g in groups]
        if kind in NUMERIC_TYPES:
            means = [_mean(groups[g]) for g in names]
            series = {"mean answer": means}
            xlabel = "mean answer"
        elif kind in CHOICE_TYPES | MULTI_TYPES:
            options = [label for label, _ in _counts(kind, rows).most_common(CATEGORY_LIMIT)]
            per_group = {g: _counts(kind, groups[g]) for g in names}
            series = {o: [per_group[g][o] / len(groups[g]) for g in names] for o in options}
            xlabel = "share within the group"
        else:
            continue
        found.append(
            charts.grouped_bars(
                f"answers-{question}-by-{attribute}", f"{question} by {attribute}", names, series, xlabel, shares=kind not in NUMERIC_TYPES
            )
        )
    return found


def _mean(rows: list[dict[str, Any]]) -> float:
    numbers = [row["answer_number"] for row in rows if row["answer_number"] is not None]
    return sum(numbers) / len(numbers) if numbers else 0.0


# ----- extractions and reductions -----


def extractions_section(run: RunData) -> Section | None:
    if not run.has("extractions"):
        return None
    rows = run.rows("SELECT * EXCLUDE (run_id, call_key) FROM extractions ORDER BY world, agent")
    # world when there are several; arm only in an experiment's run
    # `per: world` records belong to no agent: they name their world instead of an empty agent
    per_world = all(not r.get("agent") for r in rows)
    columns = [c for c in rows[0] if not (c == "world" and not per_world and len({r["world"] for r in rows}) == 1)
               and not (c == "agent" and per_world) and not (c == "arm" and not any(r["arm"] for r in rows))]
    section = Section(title="Extractions", text=f"{len(rows)} records.", tables=[table("Extracted records", rows, columns)])
    for column in columns:
        if column in ("world", "agent", "arm"):
            continue
        values = [r[column] for r in rows if r[column] is not None]
        categorical = all(isinstance(v, bool) for v in values) or (
            all(isinstance(v, str) for v in values) and len(set(values)) < len(values) and _varies(values)
        )
        if values and categorical:
            chart = shares_chart(f"extraction-{column}", f"{column}: shares", Counter(text(v) for v in values), len(values))
            if chart is not None:
                section.charts.append(chart)
    return section


COMPARISON_COLUMNS = ["metric", "test", "arm", "n", "mean / shares", "statistic", "p_value", "effect_size", "significant", "note"]


def comparisons_section(run: RunData) -> Section | None:
    """An experiment's outcomes per arm and each arm's test against the control (the ``comparisons`` dataset)."""
    if not run.has("comparisons", "metric", "arm", "n"):
        return None
    rows = run.rows("SELECT * EXCLUDE (run_id) FROM comparisons")
    for row in rows:
        shares = json.loads(row["shares"]) if row.get("shares") else {}
        summary = ", ".join(f"{k} {v:.0%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]))
        row["mean / shares"] = summary or row.get("mean")
        if row.get("effect_size") is not None:
            row["effect_size"] = f"{row['effect_size']:.3g} ({row['effect_size_kind']})"
    controls = sorted({text(r["control"]) for r in rows})
    section = Section(
        title="Experiment",
        text=f"Each arm against {', '.join(controls)}; tests are scipy's, at each comparison's alpha ({', '.join(sorted({text(r['alpha']) for r in rows}))}).",
        tables=[table("Comparisons", rows, COMPARISON_COLUMNS)],
    )
    by_metric: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)  # an outcome may be tested twice
    for row in rows:
        by_metric[(row["metric"], row["test"])].append(row)
    for (metric, test), found in by_metric.items():
        name = f"experiment-{metric}" + (f"-{test}" if sum(m == metric for m, _ in by_metric) > 1 else "")
        arms = [text(r["arm"]) for r in found]
        shares = [json.loads(r["shares"]) if r.get("shares") else None for r in found]
        if all(s is not None for s in shares):
            categories = sorted({k for s in shares for k in s})[:CATEGORY_LIMIT]  # type: ignore[union-attr]
            series = {c: [s.get(c, 0.0) for s in shares] for c in categories}  # type: ignore[union-attr]
            chart = charts.grouped_bars(name, f"{metric} by arm", arms, series, "share within the arm", shares=True)
        elif all(r.get("mean") is not None for r in found):
            chart = charts.grouped_bars(name, f"{metric} by arm ({test})", arms, {"mean": [float(r["mean"]) for r in found]}, "mean")
        else:
            continue
        section.charts.append(chart)
    return section


def reduction_sections(run: RunData) -> list[Section]:
    sections = []
    for view in run.views():
        if not view.startswith("reduction_") or not run.has(view):
            continue
        name = view.removeprefix("reduction_")
        rows = run.rows(f'SELECT * EXCLUDE (run_id) FROM "{view}"')
        section = Section(title=f"Reduction: {name}", tables=[table(name, rows)])
        label = next((c for c in LABEL_COLUMNS if c in rows[0]), None)
        support = next((c for c in SUPPORT_COLUMNS if c in rows[0]), None)
        if label and support and all(isinstance(r[support], (int, float)) for r in rows):
            top = sorted(rows, key=lambda r: -r[support])[: CATEGORY_LIMIT * 2]
            section.charts.append(
                charts.ranked_bars(f"reduction-{name}", f"{name}: by {support}", [text(r[label]) for r in top], [r[support] for r in top], support)
            )
        sections.append(section)
    return sections


def failures_section(run: RunData) -> Section | None:
    """The items that failed alone (the run completed without them), when there are any."""
    if not run.has("failures"):
        return None
    rows = run.rows("SELECT * EXCLUDE (run_id) FROM failures")
    kinds = Counter(text(r.get("stage")) for r in rows)
    summary = ", ".join(f"{stage or 'unknown stage'} {n}" for stage, n in kinds.most_common())
    return Section(title="Failures", text=f"{len(rows)} item{'' if len(rows) == 1 else 's'} failed: {summary}.", tables=[table("Failed items", rows)])


def sections(run: RunData) -> list[Section]:
    """Every section the run has data for, in reading order."""
    found = [
        run_section(run), failures_section(run), population_section(run), answers_section(run), extractions_section(run), comparisons_section(run),
        *reduction_sections(run),
    ]
    return [section for section in found if section is not None]

"""The Parquet datasets' schemas, defined once. docs/datasets.md documents every column.

``run_id`` is not part of these schemas: it is the hive partition (``<dataset>/run_id=<id>/``), and
the writer (``troupe.datasets.io.with_run_id``) adds it as the last column of every file too, so a
reader without hive partitioning gets it; hive readers see one ``run_id`` column, the folder's.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

RUNS = pa.schema(
    [
        ("scenario", pa.string()),
        ("scenario_hash", pa.string()),
        ("started", TIMESTAMP),
        ("finished", TIMESTAMP),
        ("status", pa.string()),
        ("error", pa.string()),
        ("model", pa.string()),
        ("api_type", pa.string()),
        ("calls", pa.int64()),
        ("cache_hits", pa.int64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("troupe_version", pa.string()),
        ("task_runs", pa.int64()),
        ("failures", pa.int64()),
        ("run_key", pa.string()),  # troupe.run_key: equal keys write equal data; a rerun with it reuses the run
    ]
)

PERSONAS = pa.schema(
    [
        ("persona_id", pa.string()),
        ("name", pa.string()),
        ("age", pa.string()),
        ("gender", pa.string()),
        ("nationality", pa.string()),
        ("residence", pa.string()),
        ("education", pa.string()),
        ("occupation_title", pa.string()),
        ("occupation_organization", pa.string()),
        ("spec_json", pa.string()),
        ("sampled", pa.string()),  # a population's sampled attributes as JSON object text; null for listed personas
    ]
)

EVENTS = pa.schema(
    [
        ("world", pa.string()),
        ("seq", pa.int64()),
        ("step", pa.int64()),
        ("sim_time", pa.timestamp("us")),  # the simulated clock: naive, as the scenario gives it
        ("agent", pa.string()),
        ("direction", pa.string()),
        ("type", pa.string()),
        ("source", pa.string()),
        ("target", pa.string()),
        ("content", pa.string()),
        ("call_key", pa.string()),
        ("arm", pa.string()),  # the experiment arm of the world (scenario experiment:); null outside one
    ]
)

EXTRACTIONS_BASE = pa.schema(
    [
        ("world", pa.string()),
        ("agent", pa.string()),
        ("call_key", pa.string()),
        ("arm", pa.string()),  # the experiment arm of the world; null outside one
    ]
)

LLM_CALLS = pa.schema(
    [
        ("seq", pa.int64()),
        ("key", pa.string()),
        ("model", pa.string()),
        ("purpose", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("latency_s", pa.float64()),
        ("cost_usd", pa.float64()),
        ("cache_hit", pa.bool_()),
        ("finish_reason", pa.string()),
        ("attempts", pa.int64()),
        ("messages", pa.string()),  # [datasets] store_prompts: the request's messages as JSON text; null otherwise
        ("completion", pa.string()),  # [datasets] store_prompts: the reply's text; null otherwise
    ]
)

FAILURES = pa.schema(
    [
        ("stage", pa.string()),
        ("world", pa.string()),
        ("agent", pa.string()),
        ("step", pa.int64()),
        ("error_type", pa.string()),
        ("message", pa.string()),
        ("attempts", pa.int64()),
    ]
)

ANSWERS = pa.schema(
    [
        ("agent", pa.string()),
        ("persona_id", pa.string()),
        ("question_id", pa.string()),
        ("question_type", pa.string()),
        ("answer", pa.string()),
        ("answer_number", pa.float64()),
        ("answer_list", pa.list_(pa.string())),
        ("why", pa.string()),
        ("category", pa.string()),  # a free-text answer's category when the survey normalises (null otherwise)
        ("arm", pa.string()),  # the experiment arm of the world the answer follows; null outside one
    ]
)

POPULATION_PROFILE = pa.schema(
    [
        ("dimension", pa.string()),
        ("category", pa.string()),
        ("target", pa.float64()),
        ("sampled", pa.int64()),
        ("achieved", pa.int64()),
    ]
)

COMPARISONS = pa.schema(
    [
        ("metric", pa.string()),  # the extraction field or survey question compared
        ("source", pa.string()),  # extraction or survey
        ("test", pa.string()),  # StatisticalTester's test name
        ("arm", pa.string()),
        ("control", pa.string()),  # the arm every other arm is tested against
        ("n", pa.int64()),
        ("mean", pa.float64()),  # numbers (a yes/no: its share of yes); null for categories
        ("shares", pa.string()),  # categories: {"category": share} as JSON object text; null for numbers
        ("statistic", pa.float64()),  # this arm against the control; null on the control's row
        ("p_value", pa.float64()),
        ("effect_size", pa.float64()),
        ("effect_size_kind", pa.string()),  # cohen_d, rank_biserial, eta_squared, ks_distance, cramers_v
        ("alpha", pa.float64()),
        ("significant", pa.bool_()),
        ("note", pa.string()),  # why the test could not run (too few values, constant samples); null otherwise
    ]
)

FIELD_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "list[str]": pa.list_(pa.string()),
}

DATASETS: dict[str, pa.Schema] = {
    "runs": RUNS,
    "personas": PERSONAS,
    "events": EVENTS,
    "extractions": EXTRACTIONS_BASE,
    "llm_calls": LLM_CALLS,
    "failures": FAILURES,
    "answers": ANSWERS,
    "population_profile": POPULATION_PROFILE,
    "comparisons": COMPARISONS,
}


def extractions_schema(fields: dict[str, str]) -> pa.Schema:
    """The extractions schema for one run: the base columns, then one column per extracted field."""
    return pa.schema([*EXTRACTIONS_BASE, *((name, FIELD_TYPES[kind]) for name, kind in fields.items())])

"""The survey task: a survey asked of one shard of respondents, written as parts of ``answers``, ``llm_calls``, ``failures``.

Respondents are either personas (a JSON list of persona dicts: the survey is asked of every
persona, before any world) or a shard of finished worlds (ShardState JSON: their agents answer
with their memories of the world). A respondent whose answers stay invalid fails alone with
``[pipeline] on_item_error = skip``, as a ``failures`` row with stage ``survey``.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from prefect import task
from pydantic import BaseModel, Field

from troupe.datasets.io import read_parts, table_from_rows
from troupe.datasets.rows import calls_table, failures_table
from troupe.datasets.schemas import ANSWERS
from troupe.llm import CallRecord
from troupe.simulation import ShardState, survey_shard
from troupe.survey import Survey, SurveyResult, answers_table, ask_shard

from .options import Runtime, task_config, task_gateway
from .parts import write_failed_calls, write_tables


def survey_tables(result: SurveyResult, calls: list[CallRecord] | None = None) -> dict[str, pa.Table]:
    return {
        "answers": answers_table(result.rows),
        "llm_calls": calls_table(result.calls if calls is None else calls),
        "failures": failures_table(result.failures),
    }


class NormalizedAnswers(BaseModel):
    """Every answer of the run again, with its category; and the calls that named and assigned the categories."""

    rows: list[dict[str, Any]]
    calls: list[CallRecord] = Field(default_factory=list)


def normalized_tables(result: NormalizedAnswers, calls: list[CallRecord] | None = None) -> dict[str, pa.Table]:
    return {"answers": table_from_rows(result.rows, ANSWERS), "llm_calls": calls_table(result.calls if calls is None else calls)}


@task(name="survey-categories", task_run_name="survey categories")
def normalize_answers_task(parts: list[str], k: int, settings: dict[str, Any], name: str, code: str, runtime: dict[str, Any]) -> str:
    """The run's answers (its ``answers`` parts, named by content) with a category per free-text answer; NormalizedAnswers JSON.

    One pass over all of the run's answers, so each question gets one set of categories; the
    categories come from troupe.extraction.normalizer (texts de-duplicated and sorted first, so a
    rerun asks the same prompts and the call cache answers them).
    """
    import polars as pl

    from troupe.extraction.normalizer import normalize_answers

    config = task_config(settings, runtime)
    rt = Runtime.model_validate(runtime)
    gateway = task_gateway(config)
    table = read_parts(rt.datasets_root, rt.run_id, "answers", parts)
    answers = pl.from_arrow(table if table is not None else ANSWERS.empty_table()).drop("category")
    normalized = normalize_answers(answers, k, gateway).select(ANSWERS.names)
    result = NormalizedAnswers(rows=normalized.to_dicts(), calls=list(gateway.ledger.records))
    write_tables(rt.datasets_root, rt.run_id, name, normalized_tables(result))
    return result.model_dump_json()


@task(name="survey-shard", task_run_name="survey shard {shard}")
def survey_shard_task(
    respondents: str, survey: str, settings: dict[str, Any], shard: int, name: str, failed_name: str, code: str,
    runtime: dict[str, Any], from_worlds: bool = False,
) -> str:
    """The shard's answers (persona dicts, or ShardState JSON when from_worlds); returns SurveyResult JSON and writes its parts."""
    config = task_config(settings, runtime)
    rt = Runtime.model_validate(runtime)
    gateway = task_gateway(config)
    questions = Survey.model_validate_json(survey)
    try:
        if from_worlds:
            result = survey_shard(ShardState.model_validate_json(respondents), questions, config, gateway)
        else:
            result = ask_shard(questions, json.loads(respondents), config, gateway)
    except BaseException:
        write_failed_calls(rt.datasets_root, rt.run_id, failed_name, gateway.ledger.records)
        raise
    write_tables(rt.datasets_root, rt.run_id, name, survey_tables(result))
    return result.model_dump_json()

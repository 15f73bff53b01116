"""Population tasks: a spec derived from a free-form demography, a shard of people written, the whole population made diverse.

The people's attributes are sampled in code by the flow (pure and seeded); these tasks only make
the LLM calls around them, through troupe.factory. Each returns its result as JSON text (the rows
and the calls it made) and writes its calls as a part of ``llm_calls``; the flow writes the
``personas`` parts once the population is final. Like every troupe task, a task's cache key is
its inputs (people, generation settings, the settings that shape results, the code), so an
unchanged population replays from the task cache without a call.
"""

from __future__ import annotations

import json
from typing import Any

from prefect import task
from pydantic import BaseModel, Field, TypeAdapter

from troupe.datasets.rows import calls_table
from troupe.factory import GeneratedPersona, GenerationSettings, adiversify, agenerate_shard, aspec_from_demography
from troupe.llm import CallRecord, LLMGateway, loop
from troupe.population import SampledPerson

from .options import Runtime, task_config, task_gateway
from .parts import write_tables

_PEOPLE = TypeAdapter(list[SampledPerson])
_ROWS = TypeAdapter(list[GeneratedPersona])


class SpecResult(BaseModel):
    spec: dict[str, Any]
    calls: list[CallRecord] = Field(default_factory=list)


class GenerationResult(BaseModel):
    rows: list[GeneratedPersona]
    calls: list[CallRecord] = Field(default_factory=list)


def _calls_of(gateway: LLMGateway, runtime: dict[str, Any], name: str) -> list[CallRecord]:
    """The gateway's calls, also written as the task's ``llm_calls`` part."""
    rt = Runtime.model_validate(runtime)
    calls = list(gateway.ledger.records)
    write_tables(rt.datasets_root, rt.run_id, name, {"llm_calls": calls_table(calls)})  # even none: the flow books every part
    return calls


@task(name="population-spec", task_run_name="population spec from a demography")
def population_spec_task(
    demography: str, context: str | None, settings: dict[str, Any], name: str, code: str, runtime: dict[str, Any]
) -> str:
    """A population spec derived from a free-form demography (JSON text) by one cached structured call; SpecResult JSON."""
    gateway = task_gateway(task_config(settings, runtime))
    try:
        spec = loop.run_sync(aspec_from_demography(json.loads(demography), gateway, context=context))
    finally:
        calls = _calls_of(gateway, runtime, name)
    return SpecResult(spec=spec.model_dump(mode="json"), calls=calls).model_dump_json()


@task(name="population-shard", task_run_name="population shard {shard}")
def generate_shard_task(
    people: str, generation: str, settings: dict[str, Any], shard: int, name: str, code: str, runtime: dict[str, Any]
) -> str:
    """A shard of sampled people (JSON list of SampledPerson) written as personas; GenerationResult JSON."""
    gateway = task_gateway(task_config(settings, runtime))
    try:
        rows = loop.run_sync(agenerate_shard(_PEOPLE.validate_json(people), gateway, GenerationSettings.model_validate_json(generation)))
    finally:
        calls = _calls_of(gateway, runtime, name)
    return GenerationResult(rows=rows, calls=calls).model_dump_json()


@task(name="population-diversify", task_run_name="population names and near-duplicates")
def diversify_task(
    rows: str, existing: str, generation: str, settings: dict[str, Any], name: str, code: str, runtime: dict[str, Any]
) -> str:
    """Every shard's people together: repeated names and near-duplicates across shards rewritten; GenerationResult JSON.

    ``existing`` are people the population must not repeat (the scenario's listed personas); they are never rewritten.
    """
    gateway = task_gateway(task_config(settings, runtime))
    try:
        final = loop.run_sync(
            adiversify(_ROWS.validate_json(rows), gateway, GenerationSettings.model_validate_json(generation), _ROWS.validate_json(existing))
        )
    finally:
        calls = _calls_of(gateway, runtime, name)
    return GenerationResult(rows=final, calls=calls).model_dump_json()

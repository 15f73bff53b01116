"""troupe's records as dataset rows: personas, events, extractions, LLM calls, runs."""

from __future__ import annotations

import json
from typing import Any, Iterable

import polars as pl
import pyarrow as pa

from ..cache import cache_key
from ..llm import CallRecord
from .io import table_from_rows
from .schemas import EVENTS, LLM_CALLS, PERSONAS, RUNS, extractions_schema


_EVENT_INPUT = {
    "step": pl.Int64, "time": pl.String, "agent": pl.String, "direction": pl.String, "type": pl.String,
    "source": pl.String, "target": pl.String, "content": pl.String, "call_key": pl.String,
}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def personas_table(personas: Iterable[dict[str, Any]]) -> pa.Table:
    rows = []
    for persona in personas:
        occupation = persona.get("occupation")
        occupation = occupation if isinstance(occupation, dict) else {"title": occupation}
        rows.append(
            {
                "persona_id": cache_key(persona)[:16],
                "name": persona.get("name"),
                "age": _text(persona.get("age")),
                **{key: _text(persona.get(key)) for key in ("gender", "nationality", "residence", "education")},
                "occupation_title": _text(occupation.get("title")),
                "occupation_organization": _text(occupation.get("organization")),
                "spec_json": json.dumps(persona, ensure_ascii=False, sort_keys=True),
            }
        )
    return table_from_rows(rows, PERSONAS)


def events_table(worlds: Iterable[dict[str, Any]]) -> pa.Table:
    """Every event of every world (worlds as WorldState JSON), in the order they happened."""
    frames = [
        pl.DataFrame(world["events"], schema=_EVENT_INPUT).with_columns(
            world=pl.lit(world["name"]), seq=pl.int_range(pl.len(), dtype=pl.Int64)
        )
        for world in worlds
        if world["events"]
    ]
    if not frames:
        return EVENTS.empty_table()
    events = pl.concat(frames).with_columns(sim_time=pl.col("time").str.to_datetime(time_unit="us"))
    return events.select(EVENTS.names).to_arrow().cast(EVENTS)


def extractions_table(records: Iterable[dict[str, Any]], fields: dict[str, str]) -> pa.Table:
    rows = [{"world": r["world"], "agent": r["agent"], "call_key": r["call_key"], **r["values"]} for r in records]
    return table_from_rows(rows, extractions_schema(fields))


def calls_table(calls: Iterable[CallRecord]) -> pa.Table:
    return table_from_rows(({"seq": i, **c.model_dump()} for i, c in enumerate(calls)), LLM_CALLS)


def runs_table(row: dict[str, Any]) -> pa.Table:
    return table_from_rows([row], RUNS)

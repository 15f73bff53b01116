"""troupe's records as dataset rows: personas, events, extractions, LLM calls, runs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable

import pyarrow as pa

from ..cache import cache_key
from ..llm import CallRecord
from .io import table_from_rows
from .schemas import EVENTS, LLM_CALLS, PERSONAS, RUNS, extractions_schema


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
    rows = [
        {
            "world": world["name"],
            "seq": seq,
            "sim_time": datetime.fromisoformat(event["time"]) if event.get("time") else None,
            **{k: event.get(k) for k in ("step", "agent", "direction", "type", "source", "target", "content", "call_key")},
        }
        for world in worlds
        for seq, event in enumerate(world["events"])
    ]
    return table_from_rows(rows, EVENTS)


def extractions_table(records: Iterable[dict[str, Any]], fields: dict[str, str]) -> pa.Table:
    rows = [{"world": r["world"], "agent": r["agent"], "call_key": r["call_key"], **r["values"]} for r in records]
    return table_from_rows(rows, extractions_schema(fields))


def calls_table(calls: Iterable[CallRecord]) -> pa.Table:
    return table_from_rows(({"seq": i, **c.model_dump()} for i, c in enumerate(calls)), LLM_CALLS)


def runs_table(row: dict[str, Any]) -> pa.Table:
    return table_from_rows([row], RUNS)

"""troupe's models as dataset rows: personas, events, extractions, LLM calls, failures, runs.

Rows are built from the typed state (Persona, Event, ExtractedRecord, CallRecord, ItemFailure)
column by column, in the order the models come, so the same inputs give the same file.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import pyarrow as pa

from ..cache import cache_key
from ..llm import CallRecord
from .io import table_from_rows
from .schemas import EVENTS, FAILURES, LLM_CALLS, PERSONAS, POPULATION_PROFILE, RUNS, extractions_schema

if TYPE_CHECKING:
    from ..agent.persona import Persona
    from ..agent.state import Event, ItemFailure
    from ..extraction import ExtractedRecord
    from ..profiling import PopulationProfile


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def personas_table(personas: Iterable["Persona"], sampled: Sequence[str | None] | None = None) -> pa.Table:
    """Persona rows; ``sampled`` gives each persona's sampled attributes (JSON text) when a population made them."""
    rows = []
    for i, model in enumerate(personas):
        persona = model.to_dict()
        occupation = persona.get("occupation")
        occupation = occupation if isinstance(occupation, dict) else {"title": occupation}
        rows.append(
            {
                "persona_id": cache_key(persona)[:16],
                "name": model.name,
                "age": _text(persona.get("age")),
                **{key: _text(persona.get(key)) for key in ("gender", "nationality", "residence", "education")},
                "occupation_title": _text(occupation.get("title")),
                "occupation_organization": _text(occupation.get("organization")),
                "spec_json": json.dumps(persona, ensure_ascii=False, sort_keys=True),
                "sampled": sampled[i] if sampled is not None else None,
            }
        )
    return table_from_rows(rows, PERSONAS)


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if value is not None and value.tzinfo is not None else value


def events_table(chunks: Iterable[tuple[str, int, Sequence["Event"]]]) -> pa.Table:
    """Events of worlds, as (world name, seq of the first event, events), in the order given."""
    columns: dict[str, list[Any]] = {name: [] for name in EVENTS.names}
    for world, start, events in chunks:
        for i, e in enumerate(events):
            for name, value in (
                ("world", world), ("seq", start + i), ("step", e.step), ("sim_time", _naive(e.time)), ("agent", e.agent),
                ("direction", e.direction), ("type", e.type), ("source", e.source), ("target", e.target),
                ("content", e.content), ("call_key", e.call_key),
            ):
                columns[name].append(value)
    columns["arm"] = [None] * len(columns["world"])  # an experiment's flow sets it per part (troupe.experimentation.arms.label)
    return table_from_rows(columns, EVENTS)


def extractions_table(records: Iterable["ExtractedRecord"], fields: dict[str, str]) -> pa.Table:
    rows = [{"world": r.world, "agent": r.agent, "call_key": r.call_key, **r.values} for r in records]
    return table_from_rows(rows, extractions_schema(fields))


def calls_table(calls: Iterable[CallRecord]) -> pa.Table:
    """Calls in the order they were made; seq is the call's place within the task that made it."""
    return table_from_rows(({"seq": i, **c.model_dump()} for i, c in enumerate(calls)), LLM_CALLS)


def failures_table(failures: Iterable["ItemFailure"]) -> pa.Table:
    return table_from_rows((f.model_dump() for f in failures), FAILURES)


def population_profile_table(profile: "PopulationProfile") -> pa.Table:
    """A population's target, sampled and achieved count per dimension and category (what reports chart)."""
    rows = [
        {"dimension": d.name, "category": c.category, "target": c.target, "sampled": c.sampled, "achieved": c.achieved}
        for d in profile.dimensions
        for c in d.categories
    ]
    return table_from_rows(rows, POPULATION_PROFILE)


def runs_table(row: dict[str, Any]) -> pa.Table:
    return table_from_rows([row], RUNS)

"""The population stage: people sampled in code from the scenario's ``population:`` spec, written by the LLM in shards.

1. A free-form demography becomes a spec (one cached call); the spec is written next to the run,
   ``<datasets root>/populations/<run id>/<name>.spec.yaml``, for the user to read, edit and reuse.
2. The people's attributes are sampled in the flow (pure, seeded: no call, no task).
3. One task per shard of ``[pipeline] shard_size`` people writes them (at most ``[pipeline]
   window`` in flight); one task after all shards rewrites names and near-duplicates that clash
   across shards (and with the scenario's listed personas, which it never changes).
4. The flow writes the ``personas`` parts (with the ``sampled`` column) and the run's
   ``population_profile`` (target, sampled and achieved per category); the whole profile, near-
   duplicate rate included, is also saved as ``profile.json`` beside the spec.

The run goes on with the generated people after the listed ones, so worlds with no ``agents:``
list, ``kind: isolated`` entries and surveys reach everyone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from prefect import Task
from prefect.futures import PrefectFuture

from tasks.options import configured, runtime_of
from tasks.parts import part_name, write_tables
from tasks.population import GenerationResult, SpecResult, diversify_task, generate_shard_task, population_spec_task
from troupe import progress
from troupe.agent.persona import Persona
from troupe.atomic import write_atomic
from troupe.cache import cache_key
from troupe.datasets.rows import calls_table, personas_table, population_profile_table
from troupe.factory import GeneratedPersona, GenerationSettings, write_spec
from troupe.population import PopulationError, PopulationSpec, parse_spec, sample_population
from troupe.profiling import PROFILE_FILE, population_dir, profile
from troupe.run_key import code_digest, keyed_config

from .stages import Book, Run, _cached, _windowed, task_calls

class _Keys:
    """What every task of the stage shares: the keyed settings, where things go, the code digest."""

    def __init__(self, run: Run) -> None:
        self.settings, self.runtime, self.code = keyed_config(run.config), runtime_of(run.config, run.run_id), code_digest()

    def part(self, stage: str, index: int, **inputs: Any) -> str:
        return part_name(stage, index, cache_key({**inputs, "settings": self.settings, "code": self.code}))


def _book_calls(run: Run, book: Book, future: PrefectFuture[Any], name: str, calls: list[Any]) -> None:
    """Count a finished task; a cached one gets its calls part written from its result (as replayed calls)."""
    book.task_runs += 1
    cached = _cached(future)
    calls = task_calls(run, calls, cached)
    if cached:
        book.tasks_cached += 1
        write_tables(run.root, run.run_id, name, {"llm_calls": calls_table(calls)})
    book.add({"llm_calls": name})


def _spec(run: Run, book: Book, keys: _Keys) -> PopulationSpec:
    loaded, block = run.loaded, run.loaded.scenario.population
    assert block is not None
    if loaded.population_spec is not None:
        return parse_spec(loaded.population_spec, f"{loaded.path}: population.spec")
    demography = json.dumps(loaded.demography, ensure_ascii=False, sort_keys=True)
    name = keys.part("population-spec", 0, demography=demography, context=block.context)
    future = configured(population_spec_task, run.config).submit(demography, block.context, keys.settings, name, keys.code, keys.runtime)
    result = SpecResult.model_validate_json(future.result())
    _book_calls(run, book, future, name, result.calls)
    spec = parse_spec(result.spec, "the derived population spec")
    origin = str(Path(loaded.path).parent / block.spec) if isinstance(block.spec, str) else f"{loaded.path}: population.spec"
    slug = re.sub(r"[^0-9A-Za-z_.-]+", "_", spec.name).strip("_") or "population"
    write_spec(spec, population_dir(run.root, run.run_id) / f"{slug}.spec.yaml", derived_from=origin)
    return spec


def _generate(run: Run, book: Book, keys: _Keys, spec: PopulationSpec, generation: str) -> list[GeneratedPersona]:
    block = run.loaded.scenario.population
    assert block is not None
    people = sample_population(spec, block.size, block.seed)
    size = run.config.pipeline.shard_size
    task: Task[..., Any] = configured(generate_shard_task, run.config)
    progress.emit("stage", "population", total=len(people))

    def submit() -> Iterator[tuple[PrefectFuture[Any], Any]]:
        for index, start in enumerate(range(0, len(people), size)):
            text = json.dumps([p.model_dump(mode="json") for p in people[start : start + size]], sort_keys=True)
            name = keys.part("population", index, people=text, generation=generation)
            yield task.submit(text, generation, keys.settings, index, name, keys.code, keys.runtime), (index, name)

    shards: dict[int, list[GeneratedPersona]] = {}
    for future, (index, name) in _windowed(submit(), run.config.pipeline.window):
        result = GenerationResult.model_validate_json(future.result())
        _book_calls(run, book, future, name, result.calls)
        shards[index] = result.rows
        progress.emit("advance", "population", advance=len(result.rows))
    rows = [row for index in sorted(shards) for row in shards[index]]
    # Across shards (and against the listed personas): names and near-duplicates; most populations rewrite none.
    existing = [GeneratedPersona(index=-1 - i, persona=p) for i, p in enumerate(run.loaded.personas)]
    text = json.dumps([r.model_dump(mode="json") for r in rows], sort_keys=True)
    others = json.dumps([e.model_dump(mode="json") for e in existing], sort_keys=True)
    name = keys.part("population-diversify", 0, rows=text, existing=others, generation=generation)
    future = configured(diversify_task, run.config).submit(text, others, generation, keys.settings, name, keys.code, keys.runtime)
    result = GenerationResult.model_validate_json(future.result())
    _book_calls(run, book, future, name, result.calls)
    return result.rows


def population_stage(run: Run, book: Book) -> Run:
    """Generate the scenario's population (if it has one) and return the run with those people added."""
    block = run.loaded.scenario.population
    if block is None:
        return run
    keys = _Keys(run)
    spec = _spec(run, book, keys)
    generation = GenerationSettings.for_spec(spec, block.size, context=block.context).model_dump_json()
    rows = _generate(run, book, keys, spec, generation)
    models = [Persona.from_dict(r.persona, source=f"population person {r.index + 1}") for r in rows]
    taken = {p["name"] for p in run.loaded.personas}
    clash = next((m.name for m in models if m.name in taken), None)
    if clash is not None:  # adiversify rewrites such names; this only guards what it could not fix
        raise PopulationError(f"population: {clash!r} is also a listed persona's name; rename the listed persona")
    size = run.config.pipeline.shard_size
    for index, start in enumerate(range(0, len(rows), size)):
        batch = rows[start : start + size]
        name = keys.part("population-personas", index, rows=[r.model_dump(mode="json") for r in batch])
        write_tables(run.root, run.run_id, name, {"personas": personas_table(models[start : start + size], [r.sampled_json() for r in batch])})
        book.add({"personas": name})
    report = profile(rows, spec)
    name = keys.part("population-profile", 0, profile=report.model_dump(mode="json"))
    write_tables(run.root, run.run_id, name, {"population_profile": population_profile_table(report)})
    book.add({"population_profile": name})
    write_atomic(population_dir(run.root, run.run_id) / PROFILE_FILE, report.model_dump_json(indent=2))
    return run.model_copy(update={"loaded": run.loaded.with_personas(models)})

"""The stages every flow is built from: personas, worlds (simulation and extraction), reduction, publishing.

A run is cut into shards (``[pipeline] shard_size`` people, whole worlds). Each shard goes through
its steps one task run at a time, then straight on to its extraction; at most ``[pipeline]
window`` shard tasks are in flight, so memory holds the state of window shards, never the whole
population, and the flow keeps only the names of the part files the tasks wrote. When the shards
are done the parts are published as the run's partitions, then the ``runs`` row is written.

A task whose result comes from Prefect's cache did not run: the flow writes any part this run lacks
from the cached result. A cached result that lists failed items is run again (with the cache
refreshed): its good items cost nothing (the call cache), its failed ones are retried.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import Task
from prefect.futures import PrefectFuture, as_completed
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

import troupe
from tasks.extraction import extract_shard_task
from flows import reuse
from tasks.options import configured, runtime_of
from tasks.parts import extraction_tables, missing, part_name, persona_tables, replayed, step_tables, write_tables
from tasks.personas import personas_shard
from tasks.experiment import compare_arms
from tasks.reduction import reduce_run
from tasks.simulation import simulate_shard
from tasks.survey import NormalizedAnswers, normalize_answers_task, normalized_tables, survey_shard_task, survey_tables
from troupe import progress
from troupe.agent.persona import Persona
from troupe.cache import cache_key
from troupe.config import Config, load_config
from troupe.datasets.io import part_path, publish_parts, read_parquet_file, read_parts, run_in_progress, write_part, write_run_row
from troupe.experimentation.arms import label
from troupe.datasets.rows import runs_table
from troupe.environment import WorldState
from troupe.errors import SpecError
from troupe.llm import CallRecord
from troupe.run_key import code_digest, keyed_config
from troupe.scenario import Arm, LoadedScenario, WorldSpec, load_scenario
from troupe.simulation import ExtractionResult, ShardState, StepPlan, StepResult, WorldPlan, extend, new_world, plan_worlds, shard, step_plan
from troupe.survey import SurveyResult
from troupe.transcript import Transcript

RUN_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_PLANS = TypeAdapter(list[StepPlan])


class Run(BaseModel):
    """What a flow run works on: the scenario, its configuration, where its data goes."""

    run_id: str
    loaded: LoadedScenario
    config: Config
    started: datetime
    key: str = Field(description="the run key (flows.reuse) of the scenario as loaded, before a population joins it")

    @property
    def root(self) -> str:
        return self.config.datasets.root


class Book(BaseModel):
    """What the flow keeps while a run goes: part names per dataset and counts, never rows."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    parts: dict[str, list[str]] = Field(default_factory=dict)
    failed_parts: list[str] = Field(default_factory=list)
    task_runs: int = 0
    tasks_cached: int = 0
    failures: int = 0

    def add(self, names: dict[str, str]) -> None:
        for dataset, name in names.items():
            self.parts.setdefault(dataset, []).append(name)


def prepare(
    scenario_path: str,
    run_id: str | None = None,
    datasets_root: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Run:
    """Load and check everything before any LLM call: the scenario, its personas, the configuration, the run id.

    Precedence: packaged config.ini < ./config.ini < environment < the scenario's config < overrides.
    """
    if run_id is not None and not RUN_ID.match(run_id):
        raise SpecError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-' only (no path separators)")
    loaded = load_scenario(scenario_path)
    config = load_config().with_overrides(loaded.scenario.config).with_overrides(overrides or {})
    if datasets_root:
        config = config.with_overrides({"datasets.root": datasets_root})
    started = datetime.now(timezone.utc)
    run_id = run_id or f"{started:%Y%m%d-%H%M%S}-{loaded.digest[:6]}"
    return Run(run_id=run_id, loaded=loaded, config=config, started=started, key=reuse.key_of(loaded, config))


@contextlib.contextmanager
def running(run: Run) -> Iterator[Book]:
    """The run's book, with its staging folder held for the run (removed after a finished run)."""
    with run_in_progress(run.root, run.run_id):
        yield Book()


def _cached(future: PrefectFuture[Any]) -> bool:
    return future.state.name == "Cached"


def task_calls(run: Run, calls: list[CallRecord], cached: bool) -> list[CallRecord]:
    """A finished task's calls as the run books them, shown to progress displays when this process did not see them made.

    A task answered from Prefect's cache made no call: its calls are replayed as cache hits. The
    gateway reports each call where it is made: here on the thread runner, but on a Dask or Ray
    runner in a worker process, whose reports do not reach this one.
    """
    if cached:
        calls = replayed(calls)
    if cached or run.config.pipeline.runner != "threads":
        for call in calls:
            progress.emit_call(call)
    return calls


# ----- personas -----


def personas_stage(run: Run, book: Book) -> int:
    """The personas, shard by shard, as parts of the ``personas`` dataset."""
    specs = run.loaded.personas
    size = run.config.pipeline.shard_size
    progress.emit("stage", "personas", total=len(specs))
    task = configured(personas_shard, run.config)
    runtime, code = runtime_of(run.config, run.run_id), code_digest()
    models = run.loaded.persona_models()

    def submit() -> Iterator[tuple[PrefectFuture[Any], Any]]:
        for index, start in enumerate(range(0, len(specs), size)):
            batch = specs[start : start + size]
            text = json.dumps(batch, ensure_ascii=False, sort_keys=True)
            part_id = cache_key({"personas": text, "code": code})
            yield task.submit(text, index, part_id, code, runtime), (index, batch, part_id)

    for future, (index, batch, part_id) in _windowed(submit(), run.config.pipeline.window):
        count = future.result()
        book.task_runs += 1
        name = part_name("personas", index, part_id)
        if _cached(future):
            book.tasks_cached += 1
            if missing(run.root, run.run_id, name, ["personas"]):
                write_tables(run.root, run.run_id, name, persona_tables([models[p["name"]] for p in batch]))
        book.add({"personas": name})
        progress.emit("advance", "personas", advance=count)
    return len(specs)


def _windowed(jobs: Iterator[tuple[PrefectFuture[Any], Any]], window: int) -> Iterator[tuple[PrefectFuture[Any], Any]]:
    """Futures from jobs, at most window in flight, yielded as they finish."""
    in_flight: dict[PrefectFuture[Any], Any] = {}
    for future, tag in jobs:
        in_flight[future] = tag
        if len(in_flight) >= window:
            done = next(as_completed(list(in_flight)))
            yield done, in_flight.pop(done)
    while in_flight:
        done = next(as_completed(list(in_flight)))
        yield done, in_flight.pop(done)


# ----- worlds: simulation, then extraction, shard by shard -----


class _Shard:
    """One shard's way through its steps and its extraction; holds its worlds' state while in flight."""

    def __init__(self, stage: "_WorldsStage", index: int, plans: list[WorldPlan]) -> None:
        self.stage, self.index, self.plans = stage, index, plans
        self.arm = stage.arms.get(plans[0].arm or "")  # a shard holds one experiment arm's worlds, or none's
        self.states: list[WorldState] = []
        self.step = 0  # the step in flight; -1 once the shard is extracting
        self.retried = False  # the task in flight reruns a cached result that listed failed items
        # Of the task in flight: its part name, which worlds it runs, and their log lengths before it.
        self.part = ""
        self.active: list[int] = []
        self.before: list[int] = []

    def start(self) -> PrefectFuture[Any] | None:
        """Build the shard's worlds (no LLM call) and submit its first task."""
        config, personas = self.stage.run.config, self.stage.personas
        self.states = [new_world(p, self.stage.specs[p.spec], personas, config) for p in self.plans]
        return self._next()

    def _active(self) -> list[int]:
        return [i for i, p in enumerate(self.plans) if self.step <= self.stage.specs[p.spec].steps]

    def _next(self) -> PrefectFuture[Any] | None:
        self.step += 1
        if self.step <= max(self.stage.specs[p.spec].steps for p in self.plans):
            return self._submit_step(refresh=False)
        if self.stage.extraction is not None:
            self.step = -1
            return self._submit_extraction(refresh=False)
        return self._survey_or_done()

    def _survey_or_done(self) -> PrefectFuture[Any] | None:
        """After the steps (and the extraction): the survey of the worlds it follows, if this shard has any; else done."""
        surveyed = [i for i, p in enumerate(self.plans) if self.stage.specs[p.spec].name == self.stage.survey_after]
        if not surveyed:
            self.states = []
            return None
        self.step = -2
        self.active = surveyed
        return self._submit_survey(refresh=False)

    def _submit_survey(self, refresh: bool) -> PrefectFuture[Any]:
        stage = self.stage
        state = ShardState(worlds=[self.states[i] for i in self.active]).model_dump_json()
        self.part, future = submit_survey(stage.run, stage.book, stage.survey_task, state, stage.survey_json, self.index, refresh, True)
        return future

    def _submit_step(self, refresh: bool) -> PrefectFuture[Any]:
        stage = self.stage
        active = self._active()
        specs = [stage.specs[self.plans[i].spec] for i in active]
        state = ShardState(worlds=[self.states[i] for i in active]).model_dump_json()
        plans = _PLANS.dump_json([step_plan(spec, self.step, self.arm) for spec in specs]).decode()
        part_id = cache_key({"state": cache_key(state), "plans": plans, "settings": stage.settings, "code": stage.code})
        runtime = {**stage.runtime, "totals": [spec.steps for spec in specs]}
        self.part = part_name("simulate", self.index, part_id, self.step)
        self.before = [len(self.states[i].events) for i in active]
        self.active = active
        stage.book.failed_parts.append(part_name("simulate", self.index, part_id, self.step, failed=True))
        task = stage.step_task.with_options(refresh_cache=True) if refresh else stage.step_task
        return task.submit(state, plans, stage.settings, self.index, self.step, part_id, stage.code, runtime)

    def _submit_extraction(self, refresh: bool) -> PrefectFuture[Any]:
        stage = self.stage
        state = ShardState(worlds=self.states).model_dump_json()
        part_id = cache_key({"state": cache_key(state), "spec": stage.extraction_json, "settings": stage.settings, "code": stage.code})
        self.part = part_name("extract", self.index, part_id)
        stage.book.failed_parts.append(part_name("extract", self.index, part_id, failed=True))
        task = stage.extract_task.with_options(refresh_cache=True) if refresh else stage.extract_task
        return task.submit(state, stage.extraction_json, stage.settings, self.index, part_id, stage.code, stage.runtime)

    def _label(self, dataset: str) -> None:
        """In an experiment arm's shard: book the task's part of dataset with its ``arm`` column set."""
        if self.arm is not None:
            label_part(self.stage.run, self.stage.book, dataset, self.part, self.arm.name)

    def finished(self, future: PrefectFuture[Any]) -> PrefectFuture[Any] | None:
        """Take a finished task's result; return the shard's next task (or None when the shard is done)."""
        stage, book = self.stage, self.stage.book
        text = future.result()
        cached = _cached(future)
        book.task_runs += 1
        book.tasks_cached += cached
        if self.step == -2:
            if survey_done(stage.run, book, text, cached, self.part, self.retried):
                self._label("answers")
                self.states = []
                return None
            self.retried = True
            return self._submit_survey(refresh=True)
        if self.step > 0:
            result = StepResult.model_validate_json(text)
            if cached and result.failures and not self.retried:
                self.retried = True  # a cached result with failed items: run them again
                return self._submit_step(refresh=True)
            self.retried = False
            calls = task_calls(stage.run, result.calls, cached)
            if cached:
                stage.write_missing(self.part, lambda: step_tables(result, self.before, calls))
                if stage.run.config.simulation.transcript:
                    for world, total in zip(result.worlds, (stage.specs[self.plans[i].spec].steps for i in self.active)):
                        Transcript(True).replay(world.name, self.step, total, world.events)
            for i, added in zip(self.active, result.worlds):
                self.states[i] = extend(self.states[i], added)
            book.add({d: self.part for d in ("events", "llm_calls", "failures")})
            self._label("events")
            book.failures += len(result.failures)
            progress.emit("advance", "simulate", advance=len(self.active))
            return self._next()
        result = ExtractionResult.model_validate_json(text)
        if cached and result.failures and not self.retried:
            self.retried = True
            return self._submit_extraction(refresh=True)
        calls = task_calls(stage.run, result.calls, cached)
        if cached:
            stage.write_missing(self.part, lambda: extraction_tables(result, stage.fields, calls))
        book.add({d: self.part for d in ("extractions", "llm_calls", "failures")})
        self._label("extractions")
        book.failures += len(result.failures)
        progress.emit("advance", "extract", advance=len(self.states))
        self.retried = False
        return self._survey_or_done()


class _WorldsStage:
    def __init__(self, run: Run, book: Book, extract: bool, survey: bool = False) -> None:
        self.run, self.book = run, book
        block = run.loaded.scenario.survey if survey else None
        self.survey_after = block.after if block is not None else None
        self.survey_json = block.survey().model_dump_json() if block is not None else ""
        self.survey_task: Task[..., Any] = configured(survey_shard_task, run.config)
        self.specs: list[WorldSpec] = list(run.loaded.scenario.worlds)
        experiment = run.loaded.scenario.experiment
        self.arms: dict[str, Arm] = {a.name: a for a in experiment.arms} if experiment else {}
        self.extraction = run.loaded.scenario.extraction if extract else None
        self.extraction_json = self.extraction.model_dump(mode="json") if self.extraction else None
        self.fields = {n: f.storage_type for n, f in self.extraction.fields.items()} if self.extraction else {}
        self.personas: dict[str, Persona] = run.loaded.persona_models()
        self.settings, self.runtime, self.code = keyed_config(run.config), runtime_of(run.config, run.run_id), code_digest()
        self.step_task: Task[..., Any] = configured(simulate_shard, run.config)
        self.extract_task: Task[..., Any] = configured(extract_shard_task, run.config)

    def write_missing(self, name: str, tables: Any) -> None:
        built = None
        for dataset in self.book_datasets(name):
            if not part_path(self.run.root, self.run.run_id, dataset, name).is_file():
                built = built or tables()
                write_tables(self.run.root, self.run.run_id, name, {dataset: built[dataset]})

    def book_datasets(self, name: str) -> tuple[str, ...]:
        return ("events", "llm_calls", "failures") if name.startswith("part-simulate") else ("extractions", "llm_calls", "failures")

    def run_all(self) -> int:
        plans = plan_worlds(self.run.loaded)
        progress.emit("stage", "simulate", total=sum(self.specs[p.spec].steps for p in plans))
        if self.extraction is not None:
            progress.emit("stage", "extract", total=len(plans))
        if self.survey_after is not None:
            surveyed = [p for p in plans if self.specs[p.spec].name == self.survey_after]
            progress.emit("stage", "survey", total=sum(len(p.agents) for p in surveyed))
        shards = (_Shard(self, i, group) for i, group in enumerate(shard(plans, self.run.config.pipeline.shard_size)))
        in_flight: dict[PrefectFuture[Any], _Shard] = {}
        window = self.run.config.pipeline.window
        while True:
            while len(in_flight) < window:
                job = next(shards, None)
                if job is None:
                    break
                future = job.start()
                if future is not None:
                    in_flight[future] = job
            if not in_flight:
                return len(plans)
            done = next(as_completed(list(in_flight)))
            job = in_flight.pop(done)
            following = job.finished(done)
            if following is not None:
                in_flight[following] = job


def worlds_stage(run: Run, book: Book, *, extract: bool = True, survey: bool = False) -> int:
    """Every world, shard by shard: its steps, then (extract) its extraction, then (survey) the survey that
    follows it (``survey: after: <world>``). Returns the number of worlds.

    A flow that publishes only extractions still runs the steps: they come from the task cache
    when an earlier run made them.
    """
    return _WorldsStage(run, book, extract=extract, survey=survey).run_all()


# ----- surveys -----


def submit_survey(
    run: Run, book: Book, task: Task[..., Any], respondents: str, survey_json: str, index: int, refresh: bool, from_worlds: bool
) -> tuple[str, PrefectFuture[Any]]:
    """Submit one shard's survey task; returns its part name and future."""
    settings, runtime, code = keyed_config(run.config), runtime_of(run.config, run.run_id), code_digest()
    part_id = cache_key({"respondents": cache_key(respondents), "survey": survey_json, "settings": settings, "code": code})
    name, failed = part_name("survey", index, part_id), part_name("survey", index, part_id, failed=True)
    book.failed_parts.append(failed)
    task = task.with_options(refresh_cache=True) if refresh else task
    return name, task.submit(respondents, survey_json, settings, index, name, failed, code, runtime, from_worlds)


def survey_done(run: Run, book: Book, text: str, cached: bool, name: str, retried: bool) -> bool:
    """Book a finished survey task's parts; False for a cached result that lists failed respondents (run it again)."""
    result = SurveyResult.model_validate_json(text)
    if cached and result.failures and not retried:
        return False
    calls = task_calls(run, result.calls, cached)
    if cached:
        for dataset, table in survey_tables(result, calls).items():
            if not part_path(run.root, run.run_id, dataset, name).is_file():
                write_tables(run.root, run.run_id, name, {dataset: table})
    book.add({d: name for d in ("answers", "llm_calls", "failures")})
    book.failures += len(result.failures)
    progress.emit("advance", "survey", advance=len({row.agent for row in result.rows}) + len(result.failures))
    return True


def categories_stage(run: Run, book: Book) -> int:
    """With ``survey: categories: k``: every free-text answer of the run put in one of at most k categories per question.

    Runs once the survey's shards are done: one task reads the run's answer parts and writes them
    again, whole, with the ``category`` column; they replace the shards' parts in ``answers``.
    Returns the number of answers.
    """
    block = run.loaded.scenario.survey
    parts = sorted(set(book.parts.get("answers", [])))
    if block is None or block.categories is None or not parts:
        return 0
    settings, runtime, code = keyed_config(run.config), runtime_of(run.config, run.run_id), code_digest()
    name = part_name("categories", 0, cache_key({"parts": parts, "k": block.categories, "settings": settings, "code": code}))
    progress.emit("stage", "categories", total=1)
    future = configured(normalize_answers_task, run.config).submit(parts, block.categories, settings, name, code, runtime)
    result = NormalizedAnswers.model_validate_json(future.result())
    book.task_runs += 1
    cached = _cached(future)
    calls = task_calls(run, result.calls, cached)
    if cached:
        book.tasks_cached += 1
        for dataset, table in normalized_tables(result, calls).items():
            if not part_path(run.root, run.run_id, dataset, name).is_file():
                write_tables(run.root, run.run_id, name, {dataset: table})
    book.parts["answers"] = [name]
    book.add({"llm_calls": name})
    progress.emit("advance", "categories", advance=1)
    return len(result.rows)


def survey_stage(run: Run, book: Book) -> int:
    """The scenario's survey asked of every persona (a survey without ``after:``), shard by shard, as ``answers``.

    Returns the number of respondents. A survey that follows a world runs in :func:`worlds_stage`.
    """
    block = run.loaded.scenario.survey
    if block is None or block.after is not None:
        return 0
    personas = run.loaded.personas
    size = run.config.pipeline.shard_size
    survey_json = block.survey().model_dump_json()
    task: Task[..., Any] = configured(survey_shard_task, run.config)
    progress.emit("stage", "survey", total=len(personas))
    batches = [json.dumps(personas[start : start + size], ensure_ascii=False, sort_keys=True) for start in range(0, len(personas), size)]

    def submit(index: int, refresh: bool = False) -> tuple[PrefectFuture[Any], Any]:
        name, future = submit_survey(run, book, task, batches[index], survey_json, index, refresh, False)
        return future, (index, name)

    for future, (index, name) in _windowed((submit(i) for i in range(len(batches))), run.config.pipeline.window):
        book.task_runs += 1
        book.tasks_cached += _cached(future)
        if not survey_done(run, book, future.result(), _cached(future), name, False):
            again, _ = submit(index, refresh=True)  # a cached result listing failed respondents: ask them again
            book.task_runs += 1
            survey_done(run, book, again.result(), False, name, True)
    return len(personas)


# ----- reduction, publishing, the runs row -----


def reduction_stage(run: Run) -> dict[str, int]:
    reductions = run.loaded.scenario.reductions
    if not reductions:
        return {}
    progress.emit("stage", "reduce", total=len(reductions))
    futures = {r.name: reduce_run.submit(run.root, run.run_id, r.name, r.sql) for r in reductions}
    counts = {name: future.result() for name, future in futures.items()}
    progress.emit("advance", "reduce", advance=len(counts))
    return counts


def _rows(run: Run, dataset: str, names: list[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(part_path(run.root, run.run_id, dataset, n)).num_rows for n in names)


def publish(run: Run, book: Book, datasets: list[str]) -> dict[str, int]:
    """Make the run's parts of each dataset its partition; returns rows per dataset.

    With an experiment that compares outcomes, the comparisons are computed from the published
    extractions and answers and published as ``comparisons``.
    """
    rows = {}
    for dataset in datasets:
        names = sorted(set(book.parts.get(dataset, [])))
        publish_parts(run.root, dataset, run.run_id, names)
        rows[dataset] = _rows(run, dataset, names)
    experiment = run.loaded.scenario.experiment
    if experiment is not None and experiment.compare and {"extractions", "answers"} & set(datasets):
        rows["comparisons"] = comparisons_stage(run)
    return rows


def comparisons_stage(run: Run) -> int:
    """The experiment's outcomes per arm, each arm tested against the control: the ``comparisons`` dataset."""
    compare = run.loaded.scenario.experiment.compare if run.loaded.scenario.experiment else []
    progress.emit("stage", "compare", total=len(compare))
    count = compare_arms.submit(run.root, run.run_id, run.loaded.scenario.model_dump_json()).result()
    progress.emit("advance", "compare", advance=len(compare))
    return count


def label_part(run: Run, book: Book, dataset: str, name: str, arm: str) -> None:
    """Book part name of dataset as a copy with its ``arm`` column set (written once: the name says the arm).

    A shard never mixes arms, so every row of a task's part is in one arm; the task writes it
    without knowing the arm, and the flow labels it here before it is published.
    """
    labelled = name.removesuffix(".parquet") + f"-arm-{arm}.parquet"
    if not part_path(run.root, run.run_id, dataset, labelled).is_file():
        write_part(run.root, run.run_id, dataset, labelled, label(read_parquet_file(part_path(run.root, run.run_id, dataset, name)), arm))
    names = book.parts[dataset]
    names[len(names) - 1 - names[::-1].index(name)] = labelled


def publish_accounting(run: Run, book: Book) -> None:
    """After a failure or cancel: the calls paid so far (finished tasks and the calls failing tasks made)."""
    failed = [n for n in book.failed_parts if part_path(run.root, run.run_id, "llm_calls", n).is_file()]
    book.parts.setdefault("llm_calls", []).extend(failed)
    publish_parts(run.root, "llm_calls", run.run_id, sorted(set(book.parts["llm_calls"])))


def _totals(run: Run, book: Book) -> dict[str, Any]:
    names = sorted(set(book.parts.get("llm_calls", [])))
    table = read_parts(run.root, run.run_id, "llm_calls", names, ["cache_hit", "prompt_tokens", "completion_tokens", "cost_usd"])
    if table is None or table.num_rows == 0:
        return {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    frame = table.to_pydict()
    paid = [not hit for hit in frame["cache_hit"]]
    return {
        "calls": sum(paid),
        "cache_hits": len(paid) - sum(paid),
        "prompt_tokens": sum(t for t, p in zip(frame["prompt_tokens"], paid) if p),
        "completion_tokens": sum(t for t, p in zip(frame["completion_tokens"], paid) if p),
        # fsum: exact whatever order the calls finished in, so two runs of the same calls agree to the bit
        "cost_usd": math.fsum(c for c, p in zip(frame["cost_usd"], paid) if p),
    }


def status_of(book: Book) -> str:
    return "completed_with_failures" if book.failures else "completed"


def write_run(run: Run, book: Book, status: str, error: str = "") -> dict[str, Any]:
    """The run's row in ``runs``, written last: a run is listed once its data is in place."""
    row = {
        "scenario": run.loaded.scenario.name,
        "scenario_hash": run.loaded.digest,
        "started": run.started,
        "finished": datetime.now(timezone.utc),
        "status": status,
        "error": error,
        "model": run.config.llm.model,
        "api_type": run.config.llm.api_type,
        **_totals(run, book),
        "troupe_version": troupe.__version__,
        "task_runs": book.task_runs,
        "failures": book.failures,
        "run_key": run.key,
    }
    write_run_row(run.root, run.run_id, runs_table(row), status)
    return {
        "run_id": run.run_id, **row, "started": row["started"].isoformat(), "finished": row["finished"].isoformat(),
        "tasks_cached": book.tasks_cached,
    }


def error_line(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def dataset_paths(run: Run) -> dict[str, str]:
    """Where this run's partitions are, by dataset."""
    return {p.parent.name: str(p) for p in sorted(Path(run.root).glob(f"*/run_id={run.run_id}"))}

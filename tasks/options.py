"""How every troupe task is cached, persisted and retried.

* Cache key: the task's inputs and source (``INPUTS + TASK_SOURCE``) minus ``runtime``, which
  holds where things are stored, not what is computed. The inputs include only the settings that
  shape a result (``troupe.run_key.keyed_config``) and a digest of troupe's code and prompts
  (``troupe.run_key.code_digest``). Change a stimulus, a persona, the model or the code and the task runs
  again; move the dataset root, change the run id or the concurrency, and it does not.
* Results: persisted as JSON (Prefect's default serializer is cloudpickle) under
  ``<cache dir>/results``, beside the call cache.
* Retries: a task is retried only for transient LLM faults that outlived the gateway's own
  retries; bad input, auth errors and refusals fail at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from prefect import Task
from prefect.cache_policies import INPUTS, TASK_SOURCE
from pydantic import BaseModel

from troupe.config import Config
from troupe.llm import LLMGateway, LLMUnavailable
from troupe.run_key import KEYED_SECTIONS, UNKEYED

T = TypeVar("T", bound=Task)

class Runtime(BaseModel):
    """Where a task stores things and what it prints: excluded from cache keys."""

    cache_dir: str
    cache_backend: str = "files"
    cache_enabled: bool = True
    datasets_root: str
    transcript: bool = False
    run_id: str = ""
    totals: list[int] = []  # each world's number of steps, for the transcript's "step n of m"
    unkeyed: dict[str, dict[str, Any]] = {}


def runtime_of(config: Config, run_id: str = "") -> dict[str, Any]:
    return Runtime(
        transcript=config.simulation.transcript,
        # Absolute, so a task on another worker's process writes where the flow publishes from.
        cache_dir=str(config.cache_path.resolve()),
        cache_backend=config.cache.backend,
        cache_enabled=config.cache.enabled,
        datasets_root=str(Path(config.datasets.root).resolve()),
        run_id=run_id,
        unkeyed={s: {k: getattr(getattr(config, s), k) for k in keys} for s, keys in UNKEYED.items()},
    ).model_dump()


def task_config(settings: dict[str, Any], runtime: dict[str, Any]) -> Config:
    """Rebuild the whole configuration inside a task from its keyed part and its runtime."""
    rt = Runtime.model_validate(runtime)
    sections = {s: {**settings[s], **rt.unkeyed.get(s, {})} for s in KEYED_SECTIONS}
    return Config.model_validate(
        {
            **settings,
            **sections,
            "simulation": {**sections["simulation"], "transcript": rt.transcript},
            "cache": {"enabled": rt.cache_enabled, "backend": rt.cache_backend, "dir": rt.cache_dir},
            "datasets": {**settings.get("datasets", {}), "root": rt.datasets_root},
        }
    )


def task_gateway(config: Config) -> LLMGateway:
    if config.cache.backend == "prefect":
        import tasks.call_cache  # noqa: F401 - registers the backend

    return LLMGateway(config)


def _transient(task: Task, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except LLMUnavailable:
        return True
    except Exception:
        return False
    return False


def configured(task: T, config: Config) -> T:
    """task with troupe's result storage, JSON serializer, cache policy and retries."""
    results = config.cache_path / "results"
    return task.with_options(
        result_storage=results.resolve(),
        result_serializer="json",
        persist_result=True,
        cache_policy=INPUTS + TASK_SOURCE - "runtime",
        refresh_cache=not config.cache.enabled,
        retries=2,
        retry_delay_seconds=[2, 10],
        retry_condition_fn=_transient,
    )

"""The task runner a run's shard tasks execute on: threads in this process, or a Dask or Ray cluster.

``[pipeline] runner`` picks it; ``run_flow`` runs any flow with it through
``flow.with_options(task_runner=...)``, so the flows themselves name no runner and a plain-Python
caller gets the same behaviour as ``troupe run``.

The endpoint's limits (``[llm] max_concurrency``, ``rpm``, ``tpm``) are enforced by a limiter in
each process (troupe/llm/limiter.py). On a cluster every worker process has its own, so the limits
are split evenly between the ``cluster_workers`` processes (:func:`worker_limits`): their sum is
the configured limit, with no shared state, no extra round trip per call and no Prefect inside the
library. A shared limit (Prefect's global concurrency limits) would keep an idle worker's share
usable by the others, but costs an API round trip per LLM call and puts Prefect under the gateway.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import tasks  # noqa: F401,I001 - first, so Prefect's logging is quiet before Prefect loads
from prefect.task_runners import ThreadPoolTaskRunner

from troupe.config import Config
from troupe.errors import ConfigError

from .interrupts import cancelling_calls

_EXTRA = {"dask": ("prefect_dask", "dask"), "ray": ("prefect_ray", "ray")}


def worker_processes(config: Config) -> int:
    """Processes that each hold their own endpoint limiter: 1 for threads, else ``cluster_workers``."""
    return 1 if config.pipeline.runner == "threads" else config.pipeline.cluster_workers


def worker_limits(config: Config) -> dict[str, str]:
    """Overrides giving each worker process its share of the endpoint's limits (none for threads)."""
    workers = worker_processes(config)
    if workers == 1:
        return {}
    llm = config.llm
    share = {"llm.max_concurrency": str(max(1, llm.max_concurrency // workers))}
    for key, total in (("rpm", llm.rpm), ("tpm", llm.tpm)):
        if total > 0:  # 0 = unlimited, in every worker too
            share[f"llm.{key}"] = str(max(1, total // workers))
    return share


class InterruptibleThreadPoolTaskRunner(ThreadPoolTaskRunner):
    """Prefect's thread pool, but an interrupted flow cancels the LLM calls in flight.

    Prefect cancels the tasks of an interrupted flow (``cancel_all``) and then waits for the
    running ones; a task waiting on LLM calls would pay for all of them first. Here the calls are
    cancelled while Prefect waits, so the threads return within moments.
    """

    _closing_normally = False

    def cancel_all(self) -> None:
        if self._closing_normally:
            super().cancel_all()
            return
        with cancelling_calls():
            super().cancel_all()

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self._closing_normally = exc_type is None or issubclass(exc_type, Exception)
        super().__exit__(exc_type, exc_value, traceback)


def task_runner(config: Config) -> Any:
    """The Prefect task runner for ``[pipeline] runner``; a missing extra is a one-line error."""
    pipeline = config.pipeline
    if pipeline.runner == "threads":
        return InterruptibleThreadPoolTaskRunner(max_workers=pipeline.max_workers)
    module, extra = _EXTRA[pipeline.runner]
    try:
        __import__(module)
    except ImportError:
        raise ConfigError(
            f"[pipeline] runner = {pipeline.runner} needs the {extra} extra: pip install -e '.[{extra}]' "
            f"(or set [pipeline] runner = threads)"
        ) from None
    if pipeline.runner == "dask":
        from prefect_dask import DaskTaskRunner

        logging.getLogger("distributed").setLevel(logging.WARNING)  # a line per worker event otherwise

        if pipeline.cluster_address:
            return DaskTaskRunner(address=pipeline.cluster_address)
        threads = math.ceil(pipeline.max_workers / pipeline.cluster_workers)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": pipeline.cluster_workers,
                "threads_per_worker": threads,
                "processes": True,
                "dashboard_address": None,
            },
        )
    from .ray_runner import ray_task_runner

    return ray_task_runner(pipeline.cluster_address, pipeline.cluster_workers)


def run_flow(
    flow: Any,
    config: Config,
    scenario_path: str,
    run_id: str | None = None,
    datasets_root: str | None = None,
    overrides: dict[str, str] | None = None,
    **options: Any,
) -> Any:
    """Run one of troupe's flows on the task runner config names, each worker with its share of the limits.

    The arguments after config are the flow's own; options go to the flow call (e.g. return_state).
    """
    runner = task_runner(config)
    return flow.with_options(task_runner=runner)(
        scenario_path, run_id, datasets_root, flow_overrides(config, overrides or {}), **options
    )


def flow_overrides(config: Config, overrides: dict[str, str]) -> dict[str, str]:
    """A flow's ``overrides`` argument with the per-worker limits added (explicit ones first)."""
    return {**overrides, **worker_limits(config)}


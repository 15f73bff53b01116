"""``[pipeline] runner = ray``: prefect-ray's task runner, with troupe's interrupt handling kept.

Imported only for that runner (flows/runner.py), so prefect-ray stays an optional extra.

``ray.init`` takes over the driver's SIGTERM twice: a Python handler that kills Ray's processes and
raises ``SystemExit(1)``, and, in Ray's C++ core worker, Abseil's failure-signal handler, which on
SIGTERM arms a 3-second alarm that aborts the process (exit -6, a core dump) if it is still alive
then (ray-project/ray#37288). Either way the run would not end as ``cancelled`` with exit code 143,
so the runner puts back the handler that was in place before ``ray.init`` (Prefect's or troupe's,
flows/interrupts.py): a SIGTERM then unwinds the flow like Ctrl-C does, and the runner's exit
(``ray.shutdown``) stops the local Ray instance's processes.
"""

from __future__ import annotations

import logging
import signal
import threading

from prefect_ray import RayTaskRunner
from typing_extensions import Self


def _not_token_auth_enabled(record: logging.LogRecord) -> bool:
    """Drop Ray's notice that token authentication is on (the safe default), keep the warning that it is off."""
    return not record.getMessage().startswith("Token authentication is enabled")


class SignalKeepingRayTaskRunner(RayTaskRunner):
    """prefect-ray's runner, but SIGTERM keeps the handler the process had before Ray started."""

    def __enter__(self) -> Self:
        if threading.current_thread() is not threading.main_thread():  # ray.init leaves signals alone there
            return super().__enter__()
        before = signal.getsignal(signal.SIGTERM)
        try:
            return super().__enter__()
        finally:
            if before is not None:  # None: a handler not set from Python, which cannot be put back
                # signal.signal installs its handler with sigaction, so Abseil's goes as well
                signal.signal(signal.SIGTERM, before)


def ray_task_runner(address: str, workers: int) -> SignalKeepingRayTaskRunner:
    """A runner on the Ray cluster at address, or on a local Ray instance of ``workers`` CPUs.

    Each Ray task takes one CPU, so a local instance runs at most ``workers`` shards at once, each
    in a worker process of its own: ``workers`` processes hold an endpoint limiter at any time,
    which is what ``flows.runner.worker_limits`` divides the limits by.
    """
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_not_token_auth_enabled)
    quiet = {"logging_level": logging.WARNING}  # not "Started a local Ray instance" and the like
    if address:
        return SignalKeepingRayTaskRunner(address=address, init_kwargs=quiet)
    return SignalKeepingRayTaskRunner(init_kwargs={**quiet, "num_cpus": workers, "include_dashboard": False})

"""Ctrl-C and SIGTERM stop a run within seconds and leave behind no process that the run started.

A run's work is not in the main thread: Prefect's task threads wait on LLM calls that run on
troupe's background event loop (troupe/llm/loop.py). Python delivers SIGINT as KeyboardInterrupt
in the main thread only, and Prefect then waits for every running task to finish before the flow
returns, which is how a Ctrl-C used to pay for every call anyway. So:

* :func:`handling_signals` (the CLI, around a run) turns SIGTERM into Prefect's
  ``TerminationSignal`` in the main thread, as Prefect's engine does inside a flow, so the flow
  records the run as ``cancelled`` and ``atexit`` hooks (Prefect's temporary server, the embedded
  model server) still run; Python's default SIGTERM would end the process without them. It also
  arms a watchdog: if the process is still alive ``grace_s`` after the signal, it kills the
  processes the run started (never the persistent Prefect server) and exits with 130 or 143.
* :func:`cancelling_calls` (the task runner, when the flow is interrupted) cancels every call in
  flight on the LLM loop, and keeps cancelling new ones until the task threads have stopped.
  A finished call is already in the call cache; a cancelled one is not, and is paid on rerun.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


_received: list[int] = []  # the signal handling_signals caught in this process, if any
_arrived = threading.Event()  # set with _received


def received(wait_s: float = 0.0) -> int | None:
    """The signal that interrupted the run, if one did.

    An interrupt raised inside a library call can reach the caller wrapped in an ordinary
    exception (pydantic wraps what a serializer raises, TerminationSignal included): code that
    tells a failed run from an interrupted one asks this rather than the exception's type. When
    Prefect's own handler raised the signal, it is recorded by a listener thread that may not have
    run yet; wait_s gives it that long.
    """
    if not _received and wait_s > 0:
        _arrived.wait(wait_s)
    return _received[0] if _received else None


def exit_code(exc: BaseException) -> int | None:
    """The exit code for an interrupt (130 Ctrl-C, 143 SIGTERM), None for any other exception."""
    from prefect.exceptions import TerminationSignal

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_CODES[signal.SIGINT]
    if isinstance(exc, TerminationSignal):
        return EXIT_CODES.get(signal.Signals(exc.signal), 128 + exc.signal)
    signum = received()
    return None if signum is None else EXIT_CODES.get(signal.Signals(signum), 128 + signum)


def _cancel_loop_tasks(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


@contextmanager
def cancelling_calls(period_s: float = 0.05) -> Iterator[None]:
    """While the block runs, cancel every coroutine on troupe's LLM loop, every period_s."""
    from troupe.llm.loop import background_loop

    loop = background_loop()
    done = threading.Event()

    def cancel() -> None:
        while not done.is_set():
            if loop.is_closed():
                return
            loop.call_soon_threadsafe(_cancel_loop_tasks, loop)
            done.wait(period_s)

    canceller = threading.Thread(target=cancel, name="troupe-cancel-calls", daemon=True)
    canceller.start()
    try:
        yield
    finally:
        done.set()


def _descendants(root: int) -> list[int]:
    """Processes below root, children before their own children (read from /proc; Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in parents.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def kill_started_processes(keep: set[int]) -> None:
    """SIGKILL every process this one started, except those in keep and what they started."""
    spared: set[int] = set()
    for pid in keep:
        spared |= {pid, *_descendants(pid)}
    for pid in _descendants(os.getpid()):
        if pid not in spared:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def handling_signals(grace_s: float = 10.0, keep: Callable[[], set[int]] = set) -> Iterator[None]:
    """Around a run in the main thread: SIGTERM raises TerminationSignal; any interrupt arms the watchdog.

    Inside a flow Prefect's engine installs its own SIGTERM handler, so the signal is also noticed
    through Python's wakeup file descriptor (written for every signal, whichever handler runs):
    that arms the watchdog and records it for :func:`received` in every case.

    keep returns the processes that must outlive the run (a persistent Prefect server it started).
    """
    from prefect.exceptions import TerminationSignal

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    lock = threading.Lock()

    def watchdog(signum: int) -> None:
        time.sleep(grace_s)
        sys.stderr.write(f"error: the run did not stop within {grace_s:g} s of the signal; stopping it now\n")
        sys.stderr.flush()
        kill_started_processes(keep())
        os._exit(EXIT_CODES.get(signal.Signals(signum), 128 + signum))

    def arm(signum: int) -> None:
        with lock:
            if _received:
                return
            _received.append(signum)
            _arrived.set()
        threading.Thread(target=watchdog, args=(signum,), name="troupe-watchdog", daemon=True).start()

    def on_sigint(signum: int, frame: Any) -> None:
        arm(signum)
        raise KeyboardInterrupt

    def on_sigterm(signum: int, frame: Any) -> None:
        arm(signum)
        raise TerminationSignal(signum)

    def listen(fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as wakeups:
            while data := wakeups.read(64):
                for signum in data:
                    if signum in EXIT_CODES:
                        arm(signum)

    _received.clear()
    _arrived.clear()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = {sig: signal.getsignal(sig) for sig in EXIT_CODES}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=listen, args=(read_fd,), name="troupe-signals", daemon=True).start()
    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # the listener reads end-of-file and returns

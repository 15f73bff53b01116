"""The fake OpenAI server in a process of its own, for benchmarks.

In the test process the server's threads share the GIL with the client under measurement, which
adds the server's own CPU time to the client's figures. Benchmarks run it here instead: a forked
child process serves, and the parent reads its counters over a pipe.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from tests.fake_openai import FakeOpenAI, Responder


def _serve(conn: Connection, options: dict[str, Any], responder: Responder | None) -> None:
    fake = FakeOpenAI(**options).start()
    fake.responder = responder
    conn.send(fake.url)
    while True:
        command = conn.recv()
        if command == "stop":
            fake.stop()
            return
        if command == "reset":
            fake.reset()
            fake.responder = responder
        conn.send({"calls": fake.calls, "peak_concurrency": fake.peak_concurrency})


class FakeOpenAIProcess:
    """``with FakeOpenAIProcess(latency_s=0.3, slots=64) as fake:`` then ``fake.url``, ``fake.stats()``."""

    def __init__(self, *, responder: Responder | None = None, **options: Any) -> None:
        self._parent, child = mp.get_context("fork").Pipe()
        self._lock = threading.Lock()
        self._process = mp.get_context("fork").Process(target=_serve, args=(child, options, responder), daemon=True)
        self._process.start()
        self.url: str = self._parent.recv()

    def _ask(self, command: str) -> dict[str, int]:
        with self._lock:
            self._parent.send(command)
            return self._parent.recv()

    def stats(self) -> dict[str, int]:
        return self._ask("stats")

    def reset(self) -> dict[str, int]:
        return self._ask("reset")

    def __enter__(self) -> "FakeOpenAIProcess":
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._parent.send("stop")
        self._process.join(timeout=10)

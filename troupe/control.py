"""Simulation control for notebooks, as ``tinytroupe.control``: ``begin(path)``, ``checkpoint()``, ``end()``.

Between ``begin`` and ``end`` every LLM call of the controlled gateway (the process's default
gateway unless another is given) is recorded in one JSON file at ``path``. Re-executing the
notebook from the top replays the recorded calls from that file, so the unchanged first steps
make no call at all, and the first step whose inputs changed goes to the model, as does
everything after it (its inputs changed too). Records are keyed by content (the call cache's
key: model, messages, schema, parameters), never by position, so inserting a cell or reordering
independent agents does not invalidate the rest.

The file works whether or not the call cache is enabled, and is self-contained: ship it beside a
notebook and the notebook replays anywhere. ``end()`` keeps only the calls this execution used,
so abandoned branches do not accumulate.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:
    from .cache import CallCache
    from .llm import LLMGateway

logger = logging.getLogger("troupe.control")

DEFAULT_CACHE_PATH = "troupe-simulation.cache.json"
_FORMAT = "troupe-simulation-trace/1"


class _TraceCache:
    """A call cache that answers from the simulation's trace first, then from the gateway's own cache."""

    def __init__(self, simulation: "Simulation", inner: "CallCache") -> None:
        self.simulation = simulation
        self.inner = inner

    def get(self, key: str) -> dict[str, Any] | None:
        hit = self.simulation._lookup(key)
        if hit is not None:
            return hit
        value = self.inner.get(key)
        if value is not None:
            self.simulation._record(key, value)
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.inner.put(key, value)
        self.simulation._record(key, value)

    def delete(self, key: str) -> None:
        self.inner.delete(key)
        self.simulation._forget(key)


class Simulation:
    """One controlled simulation: its trace file, the gateways it records, and its hit counts."""

    STATUS_STOPPED = "stopped"
    STATUS_STARTED = "started"

    def __init__(self, id: str = "default") -> None:
        self.id = id
        self.status = self.STATUS_STOPPED
        self.cache_path: Path | None = None
        self.auto_checkpoint = False
        self.cache_hits = 0
        self.cache_misses = 0
        self._trace: dict[str, dict[str, Any]] = {}
        self._used: list[str] = []
        self._unsaved = False
        self._lock = threading.Lock()
        self._wrapped: list[tuple["LLMGateway", "CallCache"]] = []

    # ----- lifecycle -----

    def begin(self, cache_path: str | os.PathLike[str] | None = None, auto_checkpoint: bool = False, gateway: "LLMGateway | None" = None) -> None:
        if self.status == self.STATUS_STARTED:
            raise RuntimeError(f"simulation {self.id!r} is already started; call control.end() first")
        self.cache_path = Path(cache_path or DEFAULT_CACHE_PATH)
        self.auto_checkpoint = auto_checkpoint
        self.cache_hits = self.cache_misses = 0
        self._trace = self._load(self.cache_path)
        self._used = []
        self._unsaved = False
        self.status = self.STATUS_STARTED
        self.control(gateway)

    def control(self, gateway: "LLMGateway | None" = None) -> "LLMGateway":
        """Record (and replay) this gateway's calls too; the default gateway when none is given."""
        if gateway is None:
            from .llm import default_gateway

            gateway = default_gateway()
        if not any(g is gateway for g, _ in self._wrapped):
            self._wrapped.append((gateway, gateway.cache))
            gateway.cache = _TraceCache(self, gateway.cache)  # type: ignore[assignment]
        return gateway

    def checkpoint(self) -> None:
        """Write the trace file now (atomically); nothing to do when nothing changed."""
        if self.cache_path is not None and self._unsaved:
            self._save(self.cache_path, self._trace)

    def end(self) -> None:
        """Stop recording: keep only the calls this execution used, save, restore the gateways' caches."""
        if self.status != self.STATUS_STARTED:
            raise RuntimeError(f"simulation {self.id!r} is not started; call control.begin(path) first")
        with self._lock:
            used = set(self._used)
            if set(self._trace) != used:
                self._trace = {k: v for k, v in self._trace.items() if k in used}
                self._unsaved = True
        self.checkpoint()
        for gateway, inner in self._wrapped:
            gateway.cache = inner
        self._wrapped = []
        self.status = self.STATUS_STOPPED

    # ----- the trace -----

    def _lookup(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._trace.get(key)
            if value is None:
                self.cache_misses += 1
                return None
            self.cache_hits += 1
            self._used.append(key)
            return value

    def _record(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._trace[key] = value
            self._used.append(key)
            self._unsaved = True
        if self.auto_checkpoint:
            self.checkpoint()

    def _forget(self, key: str) -> None:
        with self._lock:
            if self._trace.pop(key, None) is not None:
                self._unsaved = True

    @property
    def recorded_calls(self) -> int:
        return len(self._trace)

    @staticmethod
    def _load(path: Path) -> dict[str, dict[str, Any]]:
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SpecError(f"{path}: not a readable simulation trace ({exc}); delete it to record afresh") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("calls"), dict):
            raise SpecError(
                f"{path}: format: expected {_FORMAT!r} (TinyTroupe's cache files cannot be replayed); "
                "delete it or choose another path to record afresh"
            )
        return dict(data["calls"])

    def _save(self, path: Path, trace: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            text = json.dumps({"format": _FORMAT, "calls": trace}, ensure_ascii=False, sort_keys=True)
            self._unsaved = False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".trace-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
        logger.debug("simulation %s: %d calls saved to %s", self.id, len(trace), path)


_simulations: dict[str, Simulation] = {}
_current: str | None = None


def _simulation(id: str = "default") -> Simulation:
    return _simulations.setdefault(id, Simulation(id))


def begin(cache_path: str | os.PathLike[str] | None = None, id: str = "default", auto_checkpoint: bool = False, gateway: "LLMGateway | None" = None) -> Simulation:
    """Start recording (and replaying) the simulation's calls in the file at cache_path."""
    global _current
    if _current is not None:
        raise RuntimeError(f"simulation {_current!r} is already started; call control.end() before beginning another")
    simulation = _simulation(id)
    simulation.begin(cache_path, auto_checkpoint, gateway)
    _current = id
    return simulation


def checkpoint(id: str = "default") -> None:
    _simulation(id).checkpoint()


def end(id: str = "default") -> None:
    global _current
    _simulation(id).end()
    if _current == id:
        _current = None


def reset() -> None:
    """Forget every simulation (ending a started one first, so gateways get their caches back)."""
    global _current
    for simulation in _simulations.values():
        if simulation.status == Simulation.STATUS_STARTED:
            simulation.end()
    _simulations.clear()
    _current = None


def current_simulation() -> Simulation | None:
    return _simulations.get(_current) if _current is not None else None


def cache_hits(id: str = "default") -> int:
    return _simulation(id).cache_hits


def cache_misses(id: str = "default") -> int:
    return _simulation(id).cache_misses

"""The call-cache interface: what the gateway needs from any store.

The gateway only ever asks three things of a cache, so a store backed by something else (the
Prefect result store that tasks/ plugs in, a shared volume, an object store) is a small class.
Keys are content hashes, never positions: the same request always maps to the same key, whatever
ran before it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from ..errors import ConfigError


@runtime_checkable
class CallCache(Protocol):
    """A content-addressed store of raw LLM responses (JSON-able dicts)."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None on a miss (also for an unreadable entry)."""

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store value under key; concurrent writers of one key must not corrupt it."""

    def delete(self, key: str) -> None:
        """Forget key (used when a cached reply turns out unusable); a missing key is fine."""


class NullCache:
    """A cache that stores nothing, for ``[cache] enabled = false``."""

    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        return None

    def delete(self, key: str) -> None:
        return None


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(value: Any) -> str:
    """sha256 of the canonical JSON of value."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


CacheFactory = Callable[[Path], CallCache]

# Backends by [cache] backend name. troupe registers its own; tasks/call_cache.py registers
# "prefect" when imported, so the library never imports Prefect itself.
_BACKENDS: dict[str, CacheFactory] = {}


def register_backend(name: str, factory: CacheFactory) -> None:
    """Make a cache backend selectable as ``[cache] backend = name``."""
    _BACKENDS[name] = factory


def open_cache(enabled: bool, backend: str, directory: str | os.PathLike[str]) -> CallCache:
    """The cache the configuration asks for."""
    if not enabled:
        return NullCache()
    factory = _BACKENDS.get(backend)
    if factory is None:
        hint = "import tasks.call_cache first (the flows do), or " if backend == "prefect" else ""
        raise ConfigError(f"[cache] backend: {backend!r} is not available; {hint}use one of: {', '.join(_BACKENDS)}")
    return factory(Path(directory))

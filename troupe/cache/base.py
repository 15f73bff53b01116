"""The call-cache interface: what the gateway needs from any store.

The gateway only ever asks three things of a cache, so a store backed by something else (the
Prefect result store that tasks/ plugs in, a shared volume, an object store) is a small class.
Keys are content hashes, never positions: the same request always maps to the same key, whatever
ran before it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, runtime_checkable


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

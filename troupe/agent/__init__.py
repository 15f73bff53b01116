"""Agents: personas (TinyTroupe's format), their state, memory, and TinyPerson itself."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # TinyPerson loads lazily: troupe.transcript imports troupe.agent.state, and person imports transcript.
    if name == "TinyPerson":
        from .person import TinyPerson

        return TinyPerson
    raise AttributeError(f"module 'troupe.agent' has no attribute {name!r}")

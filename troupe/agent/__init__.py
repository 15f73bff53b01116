"""Agents: personas (TinyTroupe's format), their state, memory, and TinyPerson itself.

Names load on first use (``troupe._lazy``): troupe.transcript imports troupe.agent.state, and
person imports transcript. ``TinyToolUse`` is here because TinyTroupe code imports it from its
``agent`` package (``from tinytroupe.agent import TinyPerson, TinyToolUse``); it lives in
troupe.tools with the tools it holds.
"""

from __future__ import annotations

from troupe._lazy import lazy_getattr

_LAZY = {"TinyPerson": "troupe.agent.person", "TinyToolUse": "troupe.tools"}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(globals(), _LAZY)

"""Prefect flows that chain troupe's tasks and read and write Parquet datasets.

The flows load on first use, so ``flows.cli`` (the ``troupe`` command) starts fast for commands
that never run a flow (``troupe sql``, ``troupe runs``).
"""

from __future__ import annotations

import importlib
from typing import Any

_FLOWS = ("extraction_flow", "population_flow", "reduction_flow", "scenario_flow", "simulation_flow")
__all__ = list(_FLOWS)


def __getattr__(name: str) -> Any:
    if name in _FLOWS:
        import tasks  # noqa: F401 - first, so Prefect's logging defaults are quiet before Prefect loads

        return getattr(importlib.import_module("flows.scenario"), name)
    raise AttributeError(f"module 'flows' has no attribute {name!r}")

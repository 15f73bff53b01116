"""Experiments as in ``tinytroupe.experimentation``: blinding, in-place experiment runs, statistics.

Names load on first use, so ``import troupe.experimentation`` does not pull in scipy or the agents.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ABRandomizer": "troupe.experimentation.randomization",
    "InPlaceExperimentRunner": "troupe.experimentation.runner",
    "StatisticalTester": "troupe.experimentation.statistics",
    "TestResult": "troupe.experimentation.statistics",
    "Proposition": "troupe.validation.proposition",
    "check_proposition": "troupe.validation.proposition",
    "compute_score": "troupe.validation.proposition",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'troupe.experimentation' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

"""Experiments as in ``tinytroupe.experimentation``: blinding, in-place experiment runs, statistics.

Names load on first use, so ``import troupe.experimentation`` does not pull in scipy or the agents.
"""

from __future__ import annotations

from troupe._lazy import lazy_getattr

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

__getattr__ = lazy_getattr(globals(), _LAZY)

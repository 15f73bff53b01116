"""Validation as in ``tinytroupe.validation``: propositions, person validation, quality checks, empirical validation.

Names load on first use, so importing this package costs nothing until one is used.
"""

from __future__ import annotations

from troupe._lazy import lazy_getattr

_LAZY = {
    "Proposition": "troupe.validation.proposition",
    "check_proposition": "troupe.validation.proposition",
    "compute_score": "troupe.validation.proposition",
    "TinyPersonValidator": "troupe.validation.person_validator",
    "persona_adherence": "troupe.validation.propositions",
    "hard_persona_adherence": "troupe.validation.propositions",
    "self_consistency": "troupe.validation.propositions",
    "fluency": "troupe.validation.propositions",
    "task_completion": "troupe.validation.propositions",
    "quiet_recently": "troupe.validation.propositions",
    "divergence": "troupe.validation.propositions",
    "convergence": "troupe.validation.propositions",
    "ValidationResult": "troupe.validation.person_validator",
    "QualityAttempt": "troupe.validation.quality",
    "SimulationExperimentEmpiricalValidator": "troupe.validation.empirical",
    "EmpiricalValidationReport": "troupe.validation.empirical",
    "compare_distribution": "troupe.validation.empirical",
    "read_survey_table": "troupe.validation.empirical",
    "validate_against_survey": "troupe.validation.empirical",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(globals(), _LAZY)

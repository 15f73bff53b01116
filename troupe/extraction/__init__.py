"""Results extraction: turn what agents said and did into typed records, with TinyTroupe's API.

- ``ExtractionSpec`` / ``FieldSpec`` (fields.py): what a scenario extracts, and the reply model.
- ``aextract`` (core.py): one structured call per agent (or world), the record trimmed to the objective.
- ``ResultsExtractor`` (extractor.py), ``ResultsReducer`` (reducer.py), ``Normalizer``
  (normalizer.py): TinyTroupe's classes, with its method names and arguments.
- ``ArtifactExporter`` and ``ResultsReporter`` live in ``troupe.artifacts`` and
  ``troupe.reporting``; they are re-exported here because TinyTroupe users import them from here.

The specs load eagerly (scenario validation needs them, and they cost only pydantic); everything
else loads on first use of its name, so ``import troupe.scenario`` stays fast.
"""

from __future__ import annotations

from troupe._lazy import lazy_getattr

from .fields import TEXT_MAX, ExtractionSpec, FieldSpec, FieldType, fields_model

_LAZY = {
    "ExtractedRecord": "troupe.extraction.core",
    "aextract": "troupe.extraction.core",
    "aextract_values": "troupe.extraction.core",
    "ResultsExtractor": "troupe.extraction.extractor",
    "ResultsReducer": "troupe.extraction.reducer",
    "Normalizer": "troupe.extraction.normalizer",
    "anormalize": "troupe.extraction.normalizer",
    "ArtifactExporter": "troupe.artifacts",
    "ResultsReporter": "troupe.reporting",
}

__all__ = sorted([*_LAZY, "TEXT_MAX", "ExtractionSpec", "FieldSpec", "FieldType", "fields_model"])

__getattr__ = lazy_getattr(globals(), _LAZY)

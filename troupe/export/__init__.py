"""A run's conversations as training data: OpenAI chat JSONL, ShareGPT JSON or Parquet.

``export_run(root, run_id, fmt, out, per)`` writes a run's conversations (per agent or per
world) in one of the formats; ``run_conversations`` returns them as models. Names load on first
use, so the CLI can import ``troupe.export.options`` without pydantic, polars or duckdb.
"""

from __future__ import annotations

from troupe._lazy import lazy_getattr

_LAZY = {
    "Conversation": "troupe.export.conversations",
    "Message": "troupe.export.conversations",
    "ChatExample": "troupe.export.formats",
    "ExportSummary": "troupe.export.run",
    "export_run": "troupe.export.run",
    "run_conversations": "troupe.export.run",
    "run_calls": "troupe.export.run",
    "Format": "troupe.export.options",
    "Per": "troupe.export.options",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(globals(), _LAZY)

"""The garbage collector's settings for a process that runs a flow from the command line.

With CPython's defaults (700, 10, 10) the collector took 2.5 s of P1's 12 s of CPU
(docs/performance.md, "Pipelines"): ~1,500 young and a dozen full collections, each full one
walking the ~190,000 objects that importing Prefect, pydantic, openai and polars leaves behind.
A run allocates mostly short-lived objects (requests, replies, rows), so young collections can be
rarer, and the import-time objects, which live as long as the process, can leave the collector's
scans altogether (``gc.freeze``). Only the ``troupe`` command does this: a notebook or a program
that calls the flows keeps its own collector settings.
"""

from __future__ import annotations

import gc

# Allocations between young collections (CPython: 700); the older generations keep their ratios.
YOUNG_THRESHOLD = 50_000


def for_a_run() -> None:
    """Fewer young collections for the rest of the process."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze_imports() -> None:
    """Move every object alive now (modules, classes, schemas) out of the collector's scans."""
    gc.freeze()

"""The garbage collector's settings for the ``troupe`` command's process.

With CPython's defaults (700, 10, 10) the collector took 2.5 s of P1's 12 s of CPU
(docs/performance.md, "Pipelines"): ~1,500 young and a dozen full collections, each full one
walking the ~190,000 objects that importing Prefect, pydantic, openai and polars leaves behind.
A run allocates mostly short-lived objects (requests, replies, rows), so young collections can be
rarer, and the import-time objects, which live as long as the process, can leave the collector's
scans altogether (``gc.freeze``).

Only the command's own process does this (``flows.cli.main`` calls :func:`for_the_command`): a
notebook, a test or a program that calls the flows or the CLI's app in-process keeps its
collector as it is, since objects frozen there would never be collected.
"""

from __future__ import annotations

import gc

# Allocations between young collections (CPython: 700); the older generations keep their ratios.
YOUNG_THRESHOLD = 50_000

_command = False


def for_the_command() -> None:
    """Fewer young collections for the rest of this process, which is the ``troupe`` command."""
    global _command
    _command = True
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze_imports() -> None:
    """In the command's process, move every object alive now (modules, classes, schemas) out of the collector's scans."""
    if _command:
        gc.freeze()

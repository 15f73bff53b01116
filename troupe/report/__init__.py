"""Reports of a run: what ran, what it cost, what came out, with charts; as one HTML file or Markdown.

``build_report(root, run_id)`` reads the run's views into a :class:`Report` (sections of facts,
tables and PNG charts drawn with matplotlib); ``write_report(root, run_id, out)`` renders it to
``out``: a self-contained ``.html`` (charts embedded as base64) or a ``.md`` with its charts as
PNGs beside it. Nothing is written if anything fails.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from .model import Chart, Report, Section, Table

__all__ = ["Chart", "Report", "Section", "Table", "build_report", "check_out", "write_report"]

SUFFIXES = (".html", ".md")


def build_report(root: str | os.PathLike[str], run_id: str) -> Report:
    """The run's report (SpecError when the dataset root holds nothing of run_id)."""
    from ..run_data import open_run
    from .data import sections

    with open_run(root, run_id) as run:
        found = sections(run)
    scenario = next((value for label, value in found[0].facts if label == "scenario"), "")
    title = f"Run {run_id}" + (f": {scenario}" if scenario else "")
    return Report(run_id=run_id, title=title, sections=found)


def write_report(root: str | os.PathLike[str], run_id: str, out: str | os.PathLike[str]) -> list[Path]:
    """Build the run's report and write it to out (.html or .md); returns the files written."""
    from .render import write

    return write(build_report(root, run_id), check_out(out))


def check_out(out: str | os.PathLike[str], option: str = "--out") -> Path:
    """out as a Path if it can be a report's file (checked before a run starts, for --report); ConfigError if not."""
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{option} {out}: a report is .html or .md; name the file e.g. {out.stem}.html")
    if out.is_dir():
        raise ConfigError(f"{option} {out}: is a directory; give a file name such as {out / 'report.html'}")
    return out

"""Reports as files: HTML with its charts embedded, or Markdown with PNGs beside it.

The templates live in ``troupe/report/templates/`` (they ship in the wheel with the package).
HTML is autoescaped; Markdown cells have their pipes and newlines escaped, so text written by a
model cannot break a table.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path

import jinja2

from ..atomic import write_atomic
from .model import Report

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _markdown_cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    env.filters["md"] = _markdown_cell
    return env


def html(report: Report) -> str:
    return _environment(True).get_template("report.html.j2").render(report=report)


def markdown(report: Report, images: dict[str, str]) -> str:
    """The Markdown text; images maps each chart's name to the PNG's path relative to the report."""
    return _environment(False).get_template("report.md.j2").render(report=report, images=images)


def write(report: Report, out: Path) -> list[Path]:
    """Write the report to out (.html or .md); returns every file written (the Markdown's PNGs too)."""
    if out.suffix.lower() == ".html":
        return [write_atomic(out, html(report))]
    images = {chart.name: f"{out.stem}-{chart.name}.png" for chart in report.charts}
    written = [write_atomic(out.parent / images[chart.name], chart.png) for chart in report.charts]
    return [*written, write_atomic(out, markdown(report, images))]

"""What a report holds, independent of how it is drawn: facts, tables and charts in sections.

The data layer fills these models from the run's views; the templates render them as HTML or
Markdown. Charts carry their PNG bytes, so a report is complete before any file is written.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# What a chart shows, named in the HTML (figure data-kind) so a reader or a test can find a chart by what it is.
ChartKind = Literal["shares-with-intervals", "by-attribute", "target-vs-achieved", "ranked"]


class Table(BaseModel):
    title: str
    columns: list[str]
    rows: list[list[str]]
    total: int = 0  # rows before the report cut them to its limit

    @property
    def cut(self) -> int:
        return max(0, self.total - len(self.rows))


class Chart(BaseModel):
    name: str  # file-safe, unique within the report (the Markdown report's PNG is <stem>-<name>.png)
    title: str
    kind: ChartKind
    png: bytes = Field(repr=False)


class Section(BaseModel):
    title: str
    text: str = ""
    facts: list[tuple[str, str]] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    charts: list[Chart] = Field(default_factory=list)


class Report(BaseModel):
    run_id: str
    title: str
    sections: list[Section]

    @property
    def charts(self) -> list[Chart]:
        return [chart for section in self.sections for chart in section.charts]

"""The report's charts, drawn with matplotlib into PNG bytes.

matplotlib loads only when a chart is drawn (it costs ~0.5 s), and only its object API is used
(``Figure`` with the Agg canvas, no ``pyplot``): no global figure state, no GUI backend, safe in
a worker thread or a Prefect task.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Sequence

from .model import Chart, ChartKind

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#7f7f7f"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "chart"


def _figure(bars: int, wide: bool = False) -> tuple["Figure", "Axes"]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9 if wide else 7, max(2.2, 0.45 * bars + 1.2)), dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def _png(figure: "Figure", name: str, title: str, kind: ChartKind) -> Chart:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return Chart(name=slug(name), title=title, kind=kind, png=buffer.getvalue())


def _short(label: str, limit: int = 40) -> str:
    label = str(label)
    return label if len(label) <= limit else label[: limit - 1] + "…"


def shares_with_intervals(
    name: str, title: str, labels: Sequence[str], shares: Sequence[float], lows: Sequence[float], highs: Sequence[float], n: int
) -> Chart:
    """Horizontal bars of shares (0-1) with their 95% intervals as error bars."""
    from matplotlib.ticker import PercentFormatter

    figure, axes = _figure(len(labels))
    positions = range(len(labels))
    errors = [[s - lo for s, lo in zip(shares, lows)], [hi - s for s, hi in zip(shares, highs)]]
    axes.barh(positions, shares, xerr=errors, color=BLUE, ecolor="black", capsize=4)
    axes.set_yticks(list(positions), [_short(label) for label in labels])
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel(f"share of {n} (error bars: 95% Wilson interval)")
    axes.set_title(title)
    return _png(figure, name, title, "shares-with-intervals")


def grouped_bars(
    name: str, title: str, groups: Sequence[str], series: dict[str, Sequence[float]], xlabel: str, shares: bool = False
) -> Chart:
    """One cluster of horizontal bars per group (an attribute's value), one bar per series (an answer); shares in %."""
    from matplotlib.ticker import PercentFormatter

    figure, axes = _figure(len(groups) * max(1, len(series)) // 2 + len(groups), wide=True)
    height = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        axes.barh([g + i * height for g in range(len(groups))], values, height=height, label=_short(label, 30))
    axes.set_yticks([g + height * (len(series) - 1) / 2 for g in range(len(groups))], [_short(g) for g in groups])
    axes.invert_yaxis()
    if shares:
        axes.set_xlim(0, 1)
        axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.legend(loc="best", fontsize="small")
    return _png(figure, name, title, "by-attribute")


def target_vs_achieved(name: str, title: str, categories: Sequence[str], target: Sequence[float] | None, achieved: Sequence[float]) -> Chart:
    """A population dimension: achieved count per category, beside its target when the run recorded one."""
    from matplotlib.ticker import MaxNLocator

    figure, axes = _figure(len(categories) * (2 if target is not None else 1))
    positions = list(range(len(categories)))
    if target is not None:
        axes.barh([p - 0.2 for p in positions], target, height=0.4, color=GREY, label="target")
        axes.barh([p + 0.2 for p in positions], achieved, height=0.4, color=BLUE, label="achieved")
        axes.legend(loc="best", fontsize="small")
    else:
        axes.barh(positions, achieved, color=BLUE)
    axes.set_yticks(positions, [_short(c) for c in categories])
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("people")
    axes.set_title(title)
    return _png(figure, name, title, "target-vs-achieved")


def ranked_bars(name: str, title: str, labels: Sequence[str], values: Sequence[float], xlabel: str) -> Chart:
    """Items (ideas) ranked by a number (their support), largest first."""
    from matplotlib.ticker import MaxNLocator

    ranked = sorted(zip(labels, values), key=lambda item: -item[1])
    figure, axes = _figure(len(ranked))
    axes.barh(range(len(ranked)), [v for _, v in ranked], color=ORANGE)
    axes.set_yticks(range(len(ranked)), [_short(label) for label, _ in ranked])
    axes.invert_yaxis()
    if all(float(v).is_integer() for v in values):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    return _png(figure, name, title, "ranked")

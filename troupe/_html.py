"""Small HTML fragments for notebook display (``_repr_html_``): escaped, no scripts, no styles to load."""

from __future__ import annotations

from html import escape
from typing import Any, Iterable, Sequence


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def definition_list(items: Iterable[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in items) + "</dl>"


def section(title: str, *parts: str) -> str:
    """A titled block; parts are HTML already escaped by the helpers above."""
    return f"<div><strong>{escape(title)}</strong>{''.join(parts)}</div>"


def events(rows: Iterable[Any], limit: int = 20) -> str:
    """The last ``limit`` events as a table (step, who, type, target, content)."""
    rows = list(rows)[-limit:]
    return table(
        ["step", "agent", "kind", "type", "source/target", "content"],
        [[e.step, e.agent, e.direction, e.type, e.target if e.direction == "action" else e.source, e.content] for e in rows],
    )

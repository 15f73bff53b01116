"""The persona as the prompt shows it: a compact outline, not a JSON dump.

TinyTroupe pastes the whole persona JSON into every prompt. An outline of ``key: value`` lines,
with long lists cut to their first items, carries the same facts in a fraction of the tokens,
which matters most for small local models.
"""

from __future__ import annotations

from typing import Any


def persona_outline(persona: dict[str, Any], max_items: int = 0) -> str:
    """One line per leaf field (nested keys dotted), lists joined with '; ' and cut to max_items (0 = all)."""
    lines: list[str] = []
    _walk(persona, "", max_items, lines)
    return "\n".join(lines)


def _walk(value: Any, path: str, max_items: int, lines: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if path == "" and key == "name":
                continue
            _walk(item, f"{path}.{key}" if path else str(key), max_items, lines)
    elif isinstance(value, list):
        items = value[:max_items] if max_items > 0 else value
        texts = [_inline(item) for item in items if item not in (None, "", [], {})]
        if texts:
            more = f" (+{len(value) - len(items)} more)" if len(items) < len(value) else ""
            lines.append(f"{path}: {'; '.join(texts)}{more}")
    elif value not in (None, ""):
        lines.append(f"{path}: {value}")


def _inline(item: Any) -> str:
    if isinstance(item, dict):
        return ", ".join(f"{k}: {v}" for k, v in item.items() if v not in (None, ""))
    return str(item)

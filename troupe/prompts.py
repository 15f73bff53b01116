"""Prompt templates: every text an LLM reads is a file in prompts/, rendered with jinja2.

Templates are data with a name, versioned and reviewable; code only chooses a template and passes
plain values. ``StrictUndefined`` turns a missing value into an error instead of a silent blank.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jinja2

from .resources import data_path


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_STIMULUS_VERBS = {
    "CONVERSATION": "said",
    "VISUAL": "showed you",
    "THOUGHT": "made you think",
    "INTERNAL_GOAL_FORMULATION": "gave you the goal",
    "SOCIAL": "told you about",
    "CONTEXT": "changed the situation",
}

_OWN_STIMULI = {"THOUGHT": "You thought", "INTERNAL_GOAL_FORMULATION": "You set yourself the goal"}


def _episode(event: Any, viewer: str) -> str:
    """One event as a line of memory, told from viewer's side ("" tells it from outside)."""
    content = f'"{event.content}"' if event.content else ""
    actor = "You" if viewer and event.agent == viewer else event.agent
    if event.direction == "action":
        target = f" to {event.target}" if event.target else ""
        return f"[{event.step}] {actor} {event.type}{target}: {content}".rstrip(": ")
    if viewer and event.agent == viewer and event.source == viewer:
        return f"[{event.step}] {_OWN_STIMULI.get(event.type, 'You noted')}: {content}".rstrip(": ")
    source = event.source or "Someone"
    verb = _STIMULUS_VERBS.get(event.type, event.type.lower())
    to = "" if viewer and event.agent == viewer else f" (to {event.agent})"
    return f"[{event.step}] {source} {verb}{to}: {content}".rstrip(": ")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_path("prompts"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters["compact"] = _compact
    env.filters["episode"] = _episode
    return env


def render(template: str, **values: Any) -> str:
    """Render prompts/<template>.j2 with values."""
    return environment().get_template(f"{template}.j2").render(**values).strip()

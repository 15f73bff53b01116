"""The part of a long record an extraction needs: what the objective is about, within a token budget.

An extraction prompt used to carry the whole record, so its cost grew with every step. Three cuts,
in order, keep it bounded without losing what the objective asks about:

1. Lines that carry nothing are dropped: DONE actions, and (in a world's record) each listener's
   copy of something an agent said, since the speaker's own action line already says it.
2. When the rest fits the budget, it is all kept.
3. Otherwise the opening events (how things began) and the most recent ones are kept, and the
   budget left is filled with the events that share the most words with the objective and the
   fields, in their original order; the prompt says how many were left out.

Tokens are estimated at four characters each, the same rule the fake server and the limiter use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import prompts

if TYPE_CHECKING:
    from ..agent.state import Event

HEAD = 3  # opening events always kept
TAIL_SHARE = 0.4  # share of the budget given to the most recent events
_WORD = re.compile(r"[a-z0-9]{4,}")


@dataclass(frozen=True)
class Trimmed:
    events: list["Event"]
    omitted: int


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def words(text: str) -> set[str]:
    """The content words of text (four letters or more, lower-cased): enough to tell what a line is about."""
    return set(_WORD.findall(text.lower()))


def _carries_nothing(event: "Event", spoken: set[tuple[int, str, str]], world_view: bool) -> bool:
    if event.direction == "action" and event.type == "DONE":
        return True
    return world_view and event.direction == "stimulus" and (event.step, event.source, event.content) in spoken


def trim(events: Sequence["Event"], subject: str, focus: str, budget_tokens: int) -> Trimmed:
    """The events worth showing for an objective (focus: its text, field names and options), in order."""
    world_view = not subject
    spoken = {(e.step, e.agent, e.content) for e in events if e.direction == "action" and e.content}
    useful = [e for e in events if not _carries_nothing(e, spoken, world_view)]
    render = prompts.environment().filters["episode"]
    costs = [estimate_tokens(render(e, subject)) + 1 for e in useful]
    if sum(costs) <= budget_tokens:
        return Trimmed(useful, 0)
    keep: set[int] = set(range(min(HEAD, len(useful))))
    tail = 0
    for index in reversed(range(len(useful))):  # the most recent events, up to their share of the budget
        if index in keep or tail + costs[index] > budget_tokens * TAIL_SHARE:
            break
        keep.add(index)
        tail += costs[index]
    spent = sum(costs[i] for i in keep)
    wanted = words(focus)
    ranked = sorted(
        (i for i in range(len(useful)) if i not in keep),
        key=lambda i: (len(words(useful[i].content) & wanted), i),  # most relevant first, later ones on ties
        reverse=True,
    )
    for index in ranked:
        if spent + costs[index] <= budget_tokens:
            keep.add(index)
            spent += costs[index]
    return Trimmed([useful[i] for i in sorted(keep)], len(useful) - len(keep))


def focus_text(objective: str, situation: str, field_texts: Iterable[str]) -> str:
    """What an extraction is about, as one text to match events against."""
    return " ".join([objective, situation, *field_texts])

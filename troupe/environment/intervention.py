"""Interventions: change a simulation when a condition holds.

A precondition is a step window (``at_step``/``from_step``), a text that must appear in the recent
events (``mentions``), a Python function of the targets, a text the LLM judges against the recent
events, or several of these (all must hold; the cheap ones are checked first, so the LLM is asked
only when the rest hold). The effect is a Python function of the targets. An intervention fires
once unless ``repeat=True``; which ones fired is part of the world's state, and each firing is an
``INTERVENTION`` event in the world's log (so it reaches the ``events`` dataset).
"""

from __future__ import annotations

import asyncio
from itertools import takewhile
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel, Field

from .. import prompts
from ..agent.state import Event

if TYPE_CHECKING:
    from .world import TinyWorld

_RECENT_EVENTS = 20
INTERVENTION = "INTERVENTION"


class PreconditionCheck(BaseModel):
    reasoning: str = Field(max_length=300)
    holds: bool


class Intervention:
    """``Intervention(world).set_textual_precondition("...").set_effect(fn)``."""

    def __init__(self, targets: Any = None, *, name: str | None = None, repeat: bool = False) -> None:
        self.targets = targets
        self.name = name or f"intervention-{id(self):x}"
        self.repeat = repeat
        self.at_step: int | None = None
        self.from_step: int | None = None
        self.mentions: str | None = None
        self.functional_precondition: Callable[[Any], bool] | None = None
        self.textual_precondition: str | None = None
        self.effect: Callable[[Any], None] | None = None
        self._judged = ""  # the LLM's reasoning when it last found the textual precondition to hold

    def set_step_precondition(self, at_step: int | None = None, from_step: int | None = None) -> "Intervention":
        """Hold only at step ``at_step``, or at ``from_step`` and after (the world's step being run)."""
        self.at_step, self.from_step = at_step, from_step
        return self

    def set_mentions_precondition(self, text: str) -> "Intervention":
        """Hold when ``text`` (case-insensitive) is in an event of the previous step or of this step so far."""
        self.mentions = text
        return self

    def set_functional_precondition(self, precondition: Callable[[Any], bool]) -> "Intervention":
        self.functional_precondition = precondition
        return self

    def set_textual_precondition(self, text: str) -> "Intervention":
        self.textual_precondition = text
        return self

    def set_effect(self, effect: Callable[[Any], None]) -> "Intervention":
        self.effect = effect
        return self

    def _targets(self, world: "TinyWorld") -> Any:
        return world if self.targets is None else self.targets

    def _deterministic_hold(self, world: "TinyWorld") -> bool:
        step = world.step
        if self.at_step is not None and step != self.at_step:
            return False
        if self.from_step is not None and step < self.from_step:
            return False
        if self.mentions:
            needle = self.mentions.casefold()
            recent = takewhile(lambda e: e.step >= step - 1, reversed(world.state.events))  # the log is in step order
            # Interventions' own events do not count: their text names the condition itself.
            if not any(needle in e.content.casefold() for e in recent if e.type != INTERVENTION):
                return False
        return True

    async def aholds(self, world: "TinyWorld") -> bool:
        """Whether every precondition set holds now (no precondition: always)."""
        self._judged = ""
        if not self._deterministic_hold(world):
            return False
        if self.functional_precondition is not None:
            if not await asyncio.to_thread(self.functional_precondition, self._targets(world)):
                return False
        if self.textual_precondition:
            gateway = world.gateway
            messages = [
                {
                    "role": "user",
                    "content": prompts.render(
                        "intervention_check",
                        events=world.state.events[-_RECENT_EVENTS:],
                        condition=self.textual_precondition,
                    ),
                }
            ]
            reply = await gateway.astructured(messages, PreconditionCheck, purpose=f"intervention:{self.name}")
            self._judged = reply.value.reasoning
            return reply.value.holds
        return True

    def conditions(self) -> str:
        """The preconditions in words."""
        parts = []
        if self.at_step is not None:
            parts.append(f"at step {self.at_step}")
        if self.from_step is not None:
            parts.append(f"from step {self.from_step}")
        if self.mentions:
            parts.append(f"mentions {self.mentions!r}")
        if self.functional_precondition is not None:
            parts.append("a Python precondition")
        if self.textual_precondition:
            parts.append(f"condition: {self.textual_precondition}")
        return "; ".join(parts) or "no precondition"

    def apply(self, world: "TinyWorld") -> None:
        """Record the firing in the world's log (its name, conditions and the LLM's judgement), then the effect.

        The event's agent is the world: an intervention acts on the world, and no agent's memory
        holds it (the agents get only what the effect gives them).
        """
        content = self.conditions() + (f" (judged: {self._judged})" if self._judged else "")
        world.record(
            Event(step=world.step, time=world.current_datetime, agent=world.name, direction="stimulus", type=INTERVENTION, source=self.name, content=content)
        )
        if self.effect is not None:
            self.effect(self._targets(world))

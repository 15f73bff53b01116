"""Interventions: change a simulation when a condition holds.

A precondition is a Python function of the targets, a text the LLM judges against the recent
events, or both (both must hold). The effect is a Python function of the targets. An intervention
fires once unless ``repeat=True``; which ones fired is part of the world's state.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel, Field

from .. import prompts

if TYPE_CHECKING:
    from .world import TinyWorld

_RECENT_EVENTS = 20


class PreconditionCheck(BaseModel):
    reasoning: str = Field(max_length=300)
    holds: bool


class Intervention:
    """``Intervention(world).set_textual_precondition("...").set_effect(fn)``."""

    def __init__(self, targets: Any = None, *, name: str | None = None, repeat: bool = False) -> None:
        self.targets = targets
        self.name = name or f"intervention-{id(self):x}"
        self.repeat = repeat
        self.functional_precondition: Callable[[Any], bool] | None = None
        self.textual_precondition: str | None = None
        self.effect: Callable[[Any], None] | None = None

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

    async def aholds(self, world: "TinyWorld") -> bool:
        """Whether every precondition set holds now (no precondition: always)."""
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
            return reply.value.holds
        return True

    def apply(self, world: "TinyWorld") -> None:
        if self.effect is not None:
            self.effect(self._targets(world))

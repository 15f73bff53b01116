"""The typed reply an agent's turn produces: a bounded action sequence and its cognitive state.

The schema is built per set of action types (tools add their own) and per bound on actions, and
every free-text field has a maxLength: grammar-constrained local models then always close their
JSON, and a verbose model cannot run a turn past max_tokens.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, create_model

from .state import CognitiveState

BASE_ACTIONS: dict[str, str] = {
    "TALK": "say something out loud; target = the person you speak to, or empty for everyone present",
    "THINK": "think privately; nobody hears it",
    "REACH_OUT": "ask to get in touch with someone; target = their name",
    "DONE": "you have nothing more to do now; always your last action",
}

CONTENT_MAX = 280
TARGET_MAX = 40
STATE_MAX = 120


class CognitiveReply(BaseModel):
    goals: str = Field(max_length=STATE_MAX)
    context: str = Field(max_length=STATE_MAX)
    attention: str = Field(max_length=STATE_MAX)
    emotions: str = Field(max_length=STATE_MAX)

    def to_state(self) -> CognitiveState:
        return CognitiveState(**self.model_dump())


class ActionReply(BaseModel):
    """One action; ``type`` is narrowed to the allowed names by :func:`turn_schema`."""

    type: str
    content: str
    target: str


class TurnReply(BaseModel):
    actions: list[ActionReply]
    cognitive_state: CognitiveReply


MAX_TARGET_CHOICES = 24


@lru_cache(maxsize=256)
def turn_schema(action_types: tuple[str, ...], max_actions: int, targets: tuple[str, ...] | None = None) -> type[TurnReply]:
    """The reply model for one turn with these action types and at most max_actions actions.

    With targets, ``target`` must be one of them (always including ""): a grammar-constrained
    model then names a real person instead of writing prose into the field.
    """
    target_type: object = str if targets is None else Literal[tuple(dict.fromkeys(("", *targets)))]  # type: ignore[misc]
    action = create_model(
        "Action",
        __base__=ActionReply,
        type=(Literal[action_types], ...),  # type: ignore[valid-type]
        content=(str, Field(max_length=CONTENT_MAX)),
        target=(target_type, Field(max_length=TARGET_MAX) if targets is None else ...),
    )
    return create_model(  # type: ignore[return-value]
        "AgentTurn",
        __base__=TurnReply,
        actions=(list[action], Field(min_length=1, max_length=max_actions)),  # type: ignore[valid-type]
    )


def turn_token_bound(max_actions: int) -> int:
    """Tokens a reply at every maxLength can take (about 3 characters a token, plus JSON syntax).

    A turn's max_tokens is at least this, so a grammar-constrained reply is never cut off.
    """
    per_action = (CONTENT_MAX + TARGET_MAX + 40) // 3
    return max_actions * per_action + (4 * STATE_MAX + 80) // 3 + 32

"""An agent's state as plain data: what it is, what happened to it, what it remembers.

Everything here round-trips through JSON, so an agent (and a world of agents) can be saved,
diffed, restored, and cached as a Prefect task result. Nothing here talks to an LLM.

The persona is a typed :class:`Persona` (validated once, when the state is built or read), and
the agent's faculties (tools) are part of the state by name, so they survive a task boundary.
In a world, an agent's episodes are the world's events about it: ``WorldState`` stores each
event once and rebuilds the agents' episodic view when a world is restored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from .persona import Persona

Direction = Literal["stimulus", "action"]


class Event(BaseModel):
    """One stimulus an agent received or one action it took: a row of the ``events`` dataset."""

    model_config = ConfigDict(frozen=True)

    step: int = 0
    time: datetime | None = None
    agent: str
    direction: Direction
    type: str
    source: str = ""
    target: str = ""
    content: str = ""
    call_key: str = ""


class CognitiveState(BaseModel):
    """What the agent is after and paying attention to; rendered into every prompt."""

    goals: str = ""
    context: str = ""
    attention: str = ""
    emotions: str = "Calm."


class Fact(BaseModel):
    """A semantic memory: a consolidated fact and its embedding (None until embedded)."""

    text: str
    embedding: list[float] | None = None
    step: int = 0


class AgentState(BaseModel):
    """Everything that makes an agent what it is at one moment."""

    persona: Persona
    cognitive: CognitiveState = Field(default_factory=CognitiveState)
    episodes: list[Event] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    consolidated_upto: int = 0
    accessible: list[str] = Field(default_factory=list)
    turns: int = 0
    faculties: list[str] = Field(default_factory=list, description="registered faculty names (troupe.agent.person.register_faculty)")

    @field_serializer("persona")
    def _persona_as_given(self, persona: Persona) -> dict[str, Any]:
        # Exactly the fields that were set: a persona's JSON is its identity (cache keys, persona_id).
        return persona.to_dict()

    @property
    def name(self) -> str:
        return self.persona.name


class ItemFailure(BaseModel):
    """One item (an agent's turn, an extraction, a persona) that failed alone: a row of ``failures``."""

    stage: str
    world: str = ""
    agent: str = ""
    step: int = 0
    error_type: str
    message: str
    attempts: int = 0

    @classmethod
    def from_error(cls, exc: BaseException, stage: str, max_attempts: int, **where: Any) -> "ItemFailure":
        """The failure row for exc; attempts = the requests the item cost, as far as the error tells.

        An error may carry ``attempts``; otherwise a transient fault used every attempt, a reply
        that failed validation was asked for twice (once more to repair it), anything else once.
        """
        attempts = getattr(exc, "attempts", None)
        if not isinstance(attempts, int):
            kind = type(exc).__name__
            attempts = max_attempts if kind == "LLMUnavailable" else 2 if kind == "LLMStructuredOutputError" else 1
        lines = str(exc).splitlines()
        return cls(stage=stage, error_type=type(exc).__name__, message=lines[0] if lines else "", attempts=attempts, **where)

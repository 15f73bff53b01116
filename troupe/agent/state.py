"""An agent's state as plain data: what it is, what happened to it, what it remembers.

Everything here round-trips through JSON, so an agent (and a world of agents) can be saved,
diffed, restored, and cached as a Prefect task result. Nothing here talks to an LLM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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

    persona: dict[str, Any]
    cognitive: CognitiveState = Field(default_factory=CognitiveState)
    episodes: list[Event] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    consolidated_upto: int = 0
    accessible: list[str] = Field(default_factory=list)
    turns: int = 0

    @property
    def name(self) -> str:
        return str(self.persona.get("name", ""))

"""``Survey``: typed questions put to agents, as EDSL reads (``Survey([...]).ask(agents)``).

A survey is plain data (a pydantic model), so a scenario's ``survey:`` block validates into one
and a pipeline task can hash it; asking is delegated to :mod:`troupe.survey.asking`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .asking import OnInvalid, Respondent, aask_shard
from .questions import Question

if TYPE_CHECKING:
    from ..llm import LLMGateway
    from .rows import AnswerRow


class Survey(BaseModel):
    """Questions, asked together (one call per agent) or one call per question."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    questions: list[Question] = Field(min_length=1)
    together: bool = Field(default=True, description="one call per agent for all questions (else one per question)")
    on_invalid: OnInvalid = Field(default="raise", description="raise, or skip an agent whose answers stay invalid")

    def __init__(self, questions: Sequence[Any] | None = None, /, **data: Any) -> None:
        if questions is not None:
            data["questions"] = questions
        super().__init__(**data)

    @model_validator(mode="after")
    def _unique_ids(self) -> "Survey":
        ids = [q.id for q in self.questions]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"question ids must be unique; repeated: {', '.join(repeated)}")
        return self

    def ask(self, agents: Sequence[Respondent], *, gateway: "LLMGateway | None" = None) -> list["AnswerRow"]:
        """Every agent's answers (agents in order, then questions in order)."""
        from ..llm import loop

        return loop.run_sync(self.aask(agents, gateway=gateway))

    async def aask(self, agents: Sequence[Respondent], *, gateway: "LLMGateway | None" = None) -> list["AnswerRow"]:
        return await aask_shard(self, agents, gateway or _gateway_of(agents))


def _gateway_of(agents: Sequence[Respondent]) -> "LLMGateway":
    """The first agent's gateway (a TinyPerson has one), else the process's default gateway."""
    from ..llm import default_gateway

    for agent in agents:
        gateway = getattr(agent, "gateway", None)
        if gateway is not None:
            return gateway
    return default_gateway()

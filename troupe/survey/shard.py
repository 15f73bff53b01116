"""A survey over one shard of respondents, as plain data in and out: what a pipeline task calls.

Mirrors ``troupe.simulation.extract_shard``: the respondents are asked concurrently, the calls
the shard made are returned for the ``llm_calls`` dataset, and with ``[pipeline] on_item_error =
skip`` a respondent whose answers stay invalid (or whose calls keep failing) fails alone, as an
``ItemFailure`` row with stage ``survey``, instead of failing the shard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ..agent.state import ItemFailure
from ..environment.world import ITEM_ERRORS
from ..llm import CallRecord, loop
from .asking import Respondent, SurveyError, aask_agent, agent_state
from .rows import AnswerRow

if TYPE_CHECKING:
    from ..config import Config
    from ..llm import LLMGateway
    from .survey import Survey


class SurveyResult(BaseModel):
    rows: list[AnswerRow]
    calls: list[CallRecord] = Field(default_factory=list)
    failures: list[ItemFailure] = Field(default_factory=list)


def ask_shard(
    survey: "Survey", agents: Sequence[Respondent], config: "Config", gateway: "LLMGateway", *, world: str = "",
    worlds: Sequence[str] | None = None,
) -> SurveyResult:
    """Every respondent's rows (respondents in order), the calls made, and the respondents that failed.

    ``worlds`` names each respondent's world (for its failure row) when they come from several.
    """
    skip = config.pipeline.on_item_error == "skip"
    failures: list[ItemFailure] = []
    start = len(gateway.ledger.records)

    async def one(agent: Respondent, where: str) -> list[AnswerRow]:
        try:
            return await aask_agent(survey, agent, gateway)
        except (SurveyError, *ITEM_ERRORS) as exc:
            if not skip:
                raise
            name = agent_state(agent).name
            failures.append(ItemFailure.from_error(exc, "survey", config.llm.max_attempts, world=where, agent=name))
            return []

    async def everyone() -> list[list[AnswerRow]]:
        wheres = worlds if worlds is not None else [world] * len(agents)
        return list(await asyncio.gather(*(one(agent, where) for agent, where in zip(agents, wheres))))

    rows = [row for rows in loop.run_sync(everyone()) for row in rows]
    return SurveyResult(rows=rows, calls=gateway.ledger.records[start:], failures=failures)

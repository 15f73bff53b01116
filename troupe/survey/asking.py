"""Putting a survey's questions to agents: prompts, the structured call, rows of valid answers.

An agent is answered from its own state: the persona outline, and when it has lived through a
simulation, its episode window and consolidated facts (no extra LLM call for recall). Questions
go out together in one call per agent by default (the persona and memory are paid for once) or
one call per question. A reply that fails validation is repaired once by the gateway and then
asked again as a new sample (a different cache key and seed), at most ``[llm] max_resamples``
times; only then does it fail, and an invalid answer is never turned into a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from .. import prompts
from ..agent.memory import episode_window
from ..agent.render import persona_outline
from ..agent.state import AgentState
from ..cache import cache_key
from ..errors import TroupeError
from ..llm import LLMStructuredOutputError, LLMTruncated
from .questions import reply_model
from .rows import AnswerRow

if TYPE_CHECKING:
    from ..llm import LLMGateway
    from .questions import _Question
    from .survey import Survey

logger = logging.getLogger("troupe.survey")

FACTS_SHOWN = 5
Respondent = Any  # a TinyPerson, an AgentState, an agent's JSON (TinyPerson.to_json) or a persona dict


class SurveyError(TroupeError):
    """No valid answer came back, even after the gateway's repair round and resamples."""


def persona_dict(state: AgentState) -> dict[str, Any]:
    """The persona's JSON, exactly as it was given: what the prompt outlines and the id hashes."""
    return state.persona.to_dict()


def persona_id(persona: dict[str, Any]) -> str:
    """The persona's id, as the personas dataset computes it (the first 16 hex digits of its content hash)."""
    return cache_key(persona)[:16]


def agent_state(agent: Respondent) -> AgentState:
    """The respondent as plain agent state, whatever form it came in."""
    state = getattr(agent, "state", None)
    if isinstance(state, AgentState):
        return state
    if isinstance(agent, AgentState):
        return agent
    if isinstance(agent, dict):
        return AgentState.model_validate(agent) if "persona" in agent else AgentState(persona=agent)
    to_dict = getattr(agent, "to_dict", None)  # a Persona
    if callable(to_dict):
        return AgentState(persona=to_dict())
    raise TypeError(f"cannot survey {agent!r}: give TinyPerson objects, agent states or persona dicts")


def messages_for(questions: Sequence["_Question"], state: AgentState, gateway: "LLMGateway") -> list[dict[str, str]]:
    settings = gateway.config.simulation
    system = prompts.render(
        "survey_system", name=state.name, persona=persona_outline(persona_dict(state), settings.persona_max_items)
    )
    user = prompts.render(
        "survey_questions",
        name=state.name,
        window=episode_window(state, settings.episode_prefix, settings.episode_window),
        facts=[fact.text for fact in state.facts[-FACTS_SHOWN:]],
        questions=list(questions),
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


async def _reply(questions: tuple["_Question", ...], state: AgentState, gateway: "LLMGateway") -> BaseModel:
    """The validated reply; the gateway repairs it once, then resamples it up to ``[llm] max_resamples`` times."""
    ids = ", ".join(q.id for q in questions)
    try:
        reply = await gateway.astructured(
            messages_for(questions, state, gateway), reply_model(questions), purpose=f"survey:{state.name}"
        )
    except (LLMStructuredOutputError, LLMTruncated) as exc:
        raise SurveyError(f"{state.name}: no valid answer to {ids}; {exc}") from None
    return reply.value


def _rows(questions: Iterable["_Question"], reply: BaseModel, state: AgentState, pid: str) -> list[AnswerRow]:
    rows = []
    for index, question in enumerate(questions):
        part = getattr(reply, f"q{index}")  # reply_model names the fields by position
        text, number, picks = question.as_row(part.answer)
        rows.append(
            AnswerRow(
                agent=state.name, persona_id=pid, question_id=question.id, question_type=question.type,  # type: ignore[attr-defined]
                answer=text, answer_number=number, answer_list=picks, why=getattr(part, "why", None),
            )
        )
    return rows


async def aask_agent(
    survey: "Survey", agent: Respondent, gateway: "LLMGateway"
) -> list[AnswerRow]:
    """One agent's answers to every question, in question order."""
    state = agent_state(agent)
    pid = persona_id(persona_dict(state))
    shown = tuple(q.for_respondent(pid) for q in survey.questions)  # shuffled or blinded options, per respondent
    groups = [shown] if survey.together else [(q,) for q in shown]
    try:
        replies = await asyncio.gather(*(_reply(group, state, gateway) for group in groups))
    except SurveyError:
        if survey.on_invalid == "skip":
            logger.warning("%s: skipped, no valid answers", state.name)
            return []
        raise
    return [row for group, reply in zip(groups, replies) for row in _rows(group, reply, state, pid)]


async def aask_shard(survey: "Survey", agents: Sequence[Respondent], gateway: "LLMGateway") -> list[AnswerRow]:
    """Every agent's answers (agents in order, then questions in order), asked concurrently.

    What a pipeline's survey task calls for one shard of respondents; the gateway's limiter bounds
    how many calls are in flight, and its cache makes an unchanged rerun free.
    """
    answered = await asyncio.gather(*(aask_agent(survey, agent, gateway) for agent in agents))
    return [row for rows in answered for row in rows]


OnInvalid = Literal["raise", "skip"]

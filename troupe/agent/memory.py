"""Episodic and semantic memory over an :class:`AgentState`.

Episodic memory is the list of events; a prompt shows a fixed prefix (how things began) and a
recent window, and says how many events lie between. Consolidation asks the LLM to turn the
events since the last consolidation into a few facts, which are embedded through the gateway and
kept as data; recall ranks them by cosine similarity to what the agent is now perceiving.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from .. import prompts
from .state import AgentState, Event, Fact

if TYPE_CHECKING:
    from ..llm import LLMGateway


class Consolidation(BaseModel):
    facts: list[str] = Field(min_length=1, max_length=5, description="Short facts worth remembering.")


class EpisodeWindow(BaseModel):
    prefix: list[Event]
    omitted: int
    recent: list[Event]


def episode_window(state: AgentState, prefix: int, window: int) -> EpisodeWindow:
    """The first ``prefix`` and the last ``window`` episodes, and how many lie between."""
    episodes = state.episodes
    if len(episodes) <= prefix + window:
        return EpisodeWindow(prefix=[], omitted=0, recent=list(episodes))
    return EpisodeWindow(
        prefix=list(episodes[:prefix]),
        omitted=len(episodes) - prefix - window,
        recent=list(episodes[len(episodes) - window :]) if window else [],
    )


def consolidation_due(state: AgentState, every: int) -> bool:
    return every > 0 and len(state.episodes) - state.consolidated_upto >= every


async def consolidate(state: AgentState, gateway: "LLMGateway", step: int) -> list[Fact]:
    """Turn the episodes since the last consolidation into embedded facts (mutates state)."""
    pending = state.episodes[state.consolidated_upto :]
    if not pending:
        return []
    messages = [
        {"role": "system", "content": prompts.render("consolidate_system", name=state.name)},
        {"role": "user", "content": prompts.render("consolidate", name=state.name, events=pending)},
    ]
    reply = await gateway.astructured(messages, Consolidation, purpose="consolidate")
    texts = [text for text in reply.value.facts if text.strip()]
    vectors = await gateway.aembed(texts) if texts else []
    facts = [Fact(text=text, embedding=vector, step=step) for text, vector in zip(texts, vectors)]
    state.facts.extend(facts)
    state.consolidated_upto = len(state.episodes)
    return facts


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


async def recall(state: AgentState, gateway: "LLMGateway", query: str, top_k: int) -> list[str]:
    """The top_k facts most similar to query (none when there are no facts or no query)."""
    candidates = [fact for fact in state.facts if fact.embedding]
    if not candidates or not query.strip() or top_k <= 0:
        return []
    (query_vector,) = await gateway.aembed([query])
    ranked = sorted(candidates, key=lambda fact: _cosine(query_vector, fact.embedding or []), reverse=True)
    return [fact.text for fact in ranked[:top_k]]

"""Action quality checks: judge an agent's turn before it counts, and regenerate it when it falls short.

TinyTroupe's action generator can check each action for persona adherence, self-consistency,
fluency, suitability and similarity to recent actions, and regenerate it. Here a turn is one call,
so the whole turn is judged: one structured call scores the LLM-judged criteria (0-9, as
TinyTroupe scores propositions) and gives feedback; similarity is measured without a call
(difflib's ratio against the agent's recent actions). While a score is below the threshold, the
turn is generated again with the rejected attempt and the feedback appended to the prompt (a new
cache key, so a rerun replays the same attempts), up to ``quality_max_attempts`` generations; then
the best attempt is kept, as TinyTroupe continues on failure.

Off by default (``[simulation] quality_checks`` empty). Every attempt is recorded in the agent's
``quality_log`` with the calls it made.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from pydantic import BaseModel, Field, create_model

from .. import prompts
from ..agent.render import persona_outline
from ..asking import aask
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..agent.actions import TurnReply
    from ..agent.person import TinyPerson
    from ..llm import ChatResult

CHECKS: dict[str, str] = {
    "persona_adherence": "the actions fit the person's persona (personality, beliefs, style, background)",
    "self_consistency": "the actions do not contradict what the person said, did or thought before",
    "fluency": "the actions read naturally and do not repeat themselves or sound mechanical",
    "suitability": "the actions make sense now, given what just happened and the person's goals",
}
SIMILARITY = "similarity"
ALL_CHECKS = (*CHECKS, SIMILARITY)
_RECENT = 12
_CONTEXT_EVENTS = 16


class QualityAttempt(BaseModel):
    """One generation of a turn and its verdict."""

    agent: str
    step: int
    attempt: int
    scores: dict[str, int]
    feedback: str = ""
    passed: bool
    judge_calls: int = Field(description="judge calls that went to the model (cache hits not counted)")
    generation_calls: int = Field(description="1 when the turn itself went to the model, 0 when cached")


def enabled_checks(setting: str) -> list[str]:
    """The checks named in ``[simulation] quality_checks`` (comma-separated), validated."""
    names = [name.strip() for name in setting.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_CHECKS]
    if unknown:
        raise ConfigError(
            f"[simulation] quality_checks: unknown check(s) {', '.join(unknown)}; use some of {', '.join(ALL_CHECKS)}"
        )
    return names


@lru_cache(maxsize=32)
def _verdict_model(checks: tuple[str, ...]) -> type[BaseModel]:
    fields: dict[str, Any] = {name: (int, Field(ge=0, le=9)) for name in checks}
    fields["feedback"] = (str, Field(max_length=300))
    return create_model("QualityVerdict", **fields)


def similarity_score(agent: "TinyPerson", actions: Sequence[Any]) -> int:
    """9 when nothing repeats the agent's recent actions, down to 0 for a verbatim repeat."""
    recent = [e.content for e in agent.state.episodes if e.direction == "action" and e.content][-_RECENT:]
    ratios = [
        difflib.SequenceMatcher(None, action.content.lower(), past.lower()).ratio()
        for action in actions
        if action.content
        for past in recent
    ]
    return round(9 * (1 - max(ratios, default=0.0)))


async def ajudge(agent: "TinyPerson", actions: Sequence[Any], checks: Sequence[str]) -> tuple[dict[str, int], str, int]:
    """(scores, feedback, judge calls made) for a proposed turn."""
    scores: dict[str, int] = {}
    feedback = ""
    calls = 0
    judged = tuple(c for c in checks if c in CHECKS)
    if judged:
        reply = await aask(
            "quality_check",
            _verdict_model(judged),
            agent.gateway,
            purpose=f"quality:{agent.name}",
            name=agent.name,
            persona=persona_outline(agent.persona.to_dict(), 0),
            events=agent.state.episodes[-_CONTEXT_EVENTS:],
            actions=actions,
            checks={c: CHECKS[c] for c in judged},
        )
        values = reply.value.model_dump()
        feedback = values.pop("feedback")
        scores.update(values)
        calls = 0 if reply.cache_hit else 1
    if SIMILARITY in checks:
        scores[SIMILARITY] = similarity_score(agent, actions)
        if scores[SIMILARITY] < agent.settings.quality_threshold and not feedback:
            feedback = "Say something new instead of repeating yourself."
    return scores, feedback, calls


async def adecide_checked(
    agent: "TinyPerson",
    decide: Callable[[Sequence[dict[str, str]]], Awaitable["ChatResult[TurnReply]"]],
) -> "ChatResult[TurnReply]":
    """Generate, judge, and regenerate with feedback until the turn passes or the attempts run out."""
    settings = agent.settings
    checks = enabled_checks(settings.quality_checks)
    log: list[QualityAttempt] = agent.__dict__.setdefault("quality_log", [])
    step = getattr(agent.environment, "step", 0)
    feedback: list[dict[str, str]] = []
    best: tuple[int, "ChatResult[TurnReply]"] | None = None
    for attempt in range(1, settings.quality_max_attempts + 1):
        reply = await decide(feedback)
        actions = [a for a in reply.value.actions if a.type != "DONE"]
        scores, advice, calls = await ajudge(agent, actions, checks)
        lowest = min(scores.values(), default=9)
        passed = lowest >= settings.quality_threshold
        log.append(
            QualityAttempt(
                agent=agent.name, step=step, attempt=attempt, scores=scores, feedback=advice, passed=passed,
                judge_calls=calls, generation_calls=0 if reply.cache_hit else 1,
            )
        )
        if passed:
            return reply
        if best is None or lowest > best[0]:
            best = (lowest, reply)
        failed = [name for name, score in scores.items() if score < settings.quality_threshold]
        feedback = [
            *feedback,
            {
                "role": "user",
                "content": prompts.render("quality_feedback", name=agent.name, actions=actions, failed=failed, feedback=advice),
            },
        ]
    assert best is not None
    return best[1]


class ActionGenerator:
    """TinyTroupe's per-agent switches (``person.action_generator.enable_quality_checks = True``).

    Each assignment gives that agent a configuration of its own with the ``[simulation] quality_*``
    keys changed; nothing is stored here. Like any configuration it is not part of the agent's
    saved state: an agent restored from JSON (or in a pipeline step) takes the run's configuration.
    """

    _FIELDS = {
        "quality_threshold": "simulation.quality_threshold",
        "max_attempts": "simulation.quality_max_attempts",
    }
    DEFAULT_CHECKS = "persona_adherence"  # TinyTroupe's default when quality checks are switched on

    def __init__(self, agent: "TinyPerson") -> None:
        object.__setattr__(self, "_agent", agent)

    def _set(self, key: str, value: Any) -> None:
        agent = self._agent
        agent._config = agent.config.with_overrides({key: value})
        agent._config_given = True  # the agent now has a configuration of its own

    @property
    def enable_quality_checks(self) -> bool:
        return bool(self._agent.settings.quality_checks)

    @property
    def quality_checks(self) -> list[str]:
        return enabled_checks(self._agent.settings.quality_checks)

    def __getattr__(self, name: str) -> Any:
        if name in self._FIELDS:
            return getattr(self._agent.settings, self._FIELDS[name].split(".")[1])
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "enable_quality_checks":
            self._set("simulation.quality_checks", (",".join(self.quality_checks) or self.DEFAULT_CHECKS) if value else "")
        elif name == "quality_checks":
            self._set("simulation.quality_checks", ",".join(enabled_checks(",".join(value))))
        elif name in self._FIELDS:
            self._set(self._FIELDS[name], value)
        elif name in ("enable_regeneration", "continue_on_failure"):
            if not value:
                raise ValueError(f"action_generator.{name} = False is not supported: troupe always regenerates and keeps the best attempt")
        else:
            raise AttributeError(f"action_generator has no setting {name!r}; use enable_quality_checks, quality_checks, quality_threshold or max_attempts")

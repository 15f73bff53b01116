"""Propositions: claims about agents or worlds that the LLM checks (true/false) or scores (0-9).

As TinyTroupe's ``Proposition(claim, target).check()`` / ``.score()``: the evidence is the
targets' recorded events (optionally their personas, the first or last n events), the answer
comes with a justification and a confidence, and a precondition function can make a claim
vacuously true where it does not apply. The claim may hold ``{{ variables }}`` filled from
``claim_variables``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel, Field

from .. import prompts
from ..agent.render import persona_outline
from ..asking import messages, resolve_gateway

if TYPE_CHECKING:
    from ..llm import LLMGateway


class PropositionCheck(BaseModel):
    justification: str = Field(max_length=600)
    confidence: float = Field(ge=0, le=1)
    value: bool


class PropositionScore(BaseModel):
    justification: str = Field(max_length=600)
    confidence: float = Field(ge=0, le=1)
    value: int = Field(ge=0, le=9)


def _targets(target: Any) -> list[Any]:
    if target is None:
        return []
    return list(target) if isinstance(target, (list, tuple)) else [target]


class Proposition:
    """A claim about one or more TinyPerson / TinyWorld targets."""

    MIN_SCORE = 0
    MAX_SCORE = 9

    def __init__(
        self,
        claim: str,
        target: Any = None,
        include_personas: bool = False,
        first_n: int | None = None,
        last_n: int | None = None,
        double_check: bool = False,
        use_reasoning_model: bool = False,
        precondition_function: Callable[..., bool] | None = None,
        *,
        gateway: "LLMGateway | None" = None,
    ) -> None:
        self.claim = claim
        self.targets = _targets(target)
        self.include_personas = include_personas
        self.first_n = first_n
        self.last_n = last_n
        self.double_check = double_check
        self.use_reasoning_model = use_reasoning_model  # one model is configured; accepted for compatibility
        self.precondition_function = precondition_function
        self.gateway = gateway
        self.value: bool | int | None = None
        self.justification: str | None = None
        self.confidence: float | None = None
        self.calls = 0

    def copy(self) -> "Proposition":
        return copy.copy(self)

    def __call__(self, target: Any = None, additional_context: str | None = None, claim_variables: dict[str, Any] | None = None, return_full_response: bool = False) -> Any:
        return self.check(target, additional_context or "No additional context available.", claim_variables, return_full_response)

    # ----- evidence -----

    def _evidence(self, target: Any) -> dict[str, Any]:
        from ..agent.person import TinyPerson

        is_person = isinstance(target, TinyPerson)
        events = list(target.state.episodes if is_person else target.state.events)
        total = len(events)
        if self.first_n is not None and self.last_n is not None and self.first_n + self.last_n < total:
            shown = events[: self.first_n] + events[total - self.last_n:]
        elif self.first_n is not None:
            shown = events[: self.first_n]
        elif self.last_n is not None:
            shown = events[max(0, total - self.last_n):]
        else:
            shown = events
        persona = ""
        if is_person and self.include_personas:
            persona = persona_outline(target.persona.to_dict(), 0)
        return {
            "kind": "Agent" if is_person else "World",
            "name": target.name,
            "viewer": target.name if is_person else "",
            "persona": persona,
            "events": shown,
            "omitted_before": max(0, total - len(shown)) if self.first_n is None and self.last_n is not None else 0,
            "omitted_after": max(0, total - len(shown)) if self.first_n is not None and self.last_n is None else 0,
        }

    def _current(self, target: Any) -> list[Any]:
        targets = _targets(target) or self.targets
        if not targets:
            raise ValueError(f"proposition {self.claim!r}: no target; give one to Proposition(...) or to check()/score()")
        return targets

    def _precondition_holds(self, targets: list[Any], additional_context: str, claim_variables: dict[str, Any]) -> bool:
        if self.precondition_function is None:
            return True
        target = targets[0] if len(targets) == 1 else targets
        return bool(self.precondition_function(target=target, additional_context=additional_context, claim_variables=claim_variables))

    def _evaluate(self, schema: type[BaseModel], target: Any, additional_context: str, claim_variables: dict[str, Any] | None, return_full_response: bool, vacuous: Any) -> Any:
        targets = self._current(target)
        variables = dict(claim_variables or {})
        if not self._precondition_holds(targets, additional_context, variables):
            self.value, self.confidence = vacuous, 1.0
            self.justification = "The proposition is trivially true: its precondition does not hold."
            return self._result(return_full_response)
        claim = prompts.environment().from_string(self.claim).render(**variables) if variables else self.claim
        gateway = resolve_gateway(self.gateway, *targets)
        chat = messages(
            "proposition", targets=[self._evidence(t) for t in targets], additional_context=additional_context,
            claim=claim, scoring=schema is PropositionScore,
        )
        reply = gateway.structured(chat, schema, purpose="proposition")
        self.calls += 0 if reply.cache_hit else 1
        if self.double_check:
            chat = [*chat, {"role": "assistant", "content": reply.text}, {"role": "user", "content": prompts.render("proposition_double_check")}]
            reply = gateway.structured(chat, schema, purpose="proposition:double_check")
            self.calls += 0 if reply.cache_hit else 1
        answer = reply.value
        self.value, self.justification, self.confidence = answer.value, answer.justification, answer.confidence  # type: ignore[attr-defined]
        return self._result(return_full_response)

    def _result(self, full: bool) -> Any:
        if full:
            return {"value": self.value, "justification": self.justification, "confidence": self.confidence}
        return self.value

    def check(self, target: Any = None, additional_context: str = "No additional context available.", claim_variables: dict[str, Any] | None = None, return_full_response: bool = False) -> Any:
        """Whether the claim holds (bool), or the full response dict with return_full_response."""
        return self._evaluate(PropositionCheck, target, additional_context, claim_variables, return_full_response, True)

    def score(self, target: Any = None, additional_context: str = "No additional context available.", claim_variables: dict[str, Any] | None = None, return_full_response: bool = False) -> Any:
        """How true the claim is, 0-9 (int), or the full response dict with return_full_response."""
        return self._evaluate(PropositionScore, target, additional_context, claim_variables, return_full_response, self.MAX_SCORE)


def check_proposition(target: Any, claim: str, additional_context: str = "No additional context available.", first_n: int | None = None, last_n: int | None = None, return_full_response: bool = False) -> Any:
    return Proposition(claim, target, first_n=first_n, last_n=last_n).check(additional_context=additional_context, return_full_response=return_full_response)


def compute_score(target: Any, claim: str, additional_context: str = "No additional context available.", first_n: int | None = None, last_n: int | None = None, return_full_response: bool = False) -> Any:
    return Proposition(claim, target, first_n=first_n, last_n=last_n).score(additional_context=additional_context, return_full_response=return_full_response)

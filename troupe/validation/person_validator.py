"""TinyPersonValidator: an interviewer agent questions a person and scores it against expectations.

The interviewer (one structured call per round) either asks its next questions or says it has
seen enough; the person answers each round with ``listen_and_act``; after at most ``max_rounds``
rounds the interviewer gives a 0-1 score and a justification. The interview runs on a copy of the
person, so validating someone does not put the interview into their memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ..agent.render import persona_outline
from ..asking import ask

if TYPE_CHECKING:
    from ..agent.person import TinyPerson
    from ..llm import LLMGateway

DEFAULT_EXPECTATIONS = "A realistic, coherent person who answers consistently with their specification."


class InterviewStep(BaseModel):
    finished: bool
    questions: str = Field(max_length=600)


class ValidationVerdict(BaseModel):
    justification: str = Field(max_length=800)
    score: float = Field(ge=0, le=1)


class InterviewRound(BaseModel):
    questions: str
    answers: str


class ValidationResult(BaseModel):
    score: float
    justification: str
    rounds: list[InterviewRound]
    calls: int


class TinyPersonValidator:
    @staticmethod
    def validate_person(
        person: "TinyPerson",
        expectations: str | None = None,
        include_agent_spec: bool = True,
        max_content_length: int | None = None,
        *,
        max_rounds: int = 3,
        gateway: "LLMGateway | None" = None,
        return_details: bool = False,
    ) -> "tuple[float, str] | ValidationResult":
        """``(score, justification)`` as TinyTroupe returns it; the whole interview with return_details.

        max_content_length is TinyTroupe's display setting and changes nothing here.
        """
        from ..agent.person import TinyPerson

        gateway = gateway or person.gateway
        # A copy to interview: the same state and faculties (tools keep their state in the agent's events).
        subject = TinyPerson(persona=person.persona, gateway=gateway, config=person.config, transcript=False, faculties=person.faculties)
        subject.state = person.state.model_copy(deep=True)
        values = {
            "name": person.name,
            "spec": persona_outline(person.persona.to_dict(), 0) if include_agent_spec else "",
            "expectations": expectations or DEFAULT_EXPECTATIONS,
            "max_rounds": max_rounds,
        }
        rounds: list[InterviewRound] = []
        calls = 0
        for _ in range(max_rounds):
            step = ask("validator", InterviewStep, gateway, purpose=f"validate:{person.name}", rounds=rounds, final=False, **values)
            calls += 0 if step.cache_hit else 1
            if step.value.finished or not step.value.questions.strip():
                break
            actions = subject.listen_and_act(step.value.questions, return_actions=True, source="Interviewer") or []
            answers = " ".join(a.content for a in actions if a.type == "TALK")
            rounds.append(InterviewRound(questions=step.value.questions, answers=answers))
        verdict = ask("validator", ValidationVerdict, gateway, purpose=f"validate:{person.name}:verdict", rounds=rounds, final=True, **values)
        calls += 0 if verdict.cache_hit else 1
        result = ValidationResult(score=verdict.value.score, justification=verdict.value.justification, rounds=rounds, calls=calls)
        return result if return_details else (result.score, result.justification)

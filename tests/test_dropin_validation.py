"""Propositions, TinyPersonValidator and action quality checks, against the fake server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, schema_of, talk, turn_requests
from troupe import TinyPerson, TinyWorld
from troupe.errors import ConfigError
from troupe.experimentation import Proposition as PropositionFromExperimentation
from troupe.llm import LLMGateway
from troupe.validation import Proposition, TinyPersonValidator


class Judge:
    """Answers by schema: a handler per property set, agent turns from a Script; records what it was asked."""

    def __init__(self, script: Script, **handlers: Callable[[dict[str, Any]], Any]) -> None:
        self.script = script
        self.handlers = handlers
        self.asked: dict[str, list[dict[str, Any]]] = {name: [] for name in handlers}

    def __call__(self, body: dict[str, Any]) -> Any:
        properties = set(schema_of(body).get("properties", {}))
        for name, handler in self.handlers.items():
            if set(name.split("__")) <= properties:
                self.asked[name].append(body)
                return handler(body)
        return self.script(body)


def _text(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"])


def _lisa(fake: FakeOpenAI, tmp_path: Path, **overrides: str) -> TinyPerson:
    config = fake_config(fake, tmp_path, **overrides)
    return TinyPerson("Lisa", gateway=LLMGateway(config), config=config).define("occupation", "data scientist")


# ----- propositions -----


def test_proposition_check_and_score_read_the_targets_record(fake: FakeOpenAI, tmp_path: Path) -> None:
    def check(body: dict[str, Any]) -> dict[str, Any]:
        holds = "I love data" in _text(body)
        return {"justification": "She said so." if holds else "Nothing like it.", "confidence": 0.9, "value": holds}

    judge = Judge(Script({"Lisa": [[talk("I love data"), done()]]}), justification__confidence__value=check)
    fake.responder = judge
    lisa = _lisa(fake, tmp_path)
    claim = Proposition("Lisa talks about loving data.", lisa, include_personas=True)
    assert claim.check() is False  # nothing said yet
    lisa.listen_and_act("What do you like?")
    assert claim.check() is True and claim.justification == "She said so." and claim.confidence == 0.9
    prompt = _text(judge.asked["justification__confidence__value"][-1])
    assert "occupation: data scientist" in prompt and "Claim: Lisa talks about loving data." in prompt
    assert claim.check(return_full_response=True) == {"value": True, "justification": "She said so.", "confidence": 0.9}
    assert PropositionFromExperimentation is Proposition


def test_score_is_0_to_9_and_claim_variables_and_preconditions_apply(fake: FakeOpenAI, tmp_path: Path) -> None:
    def score(body: dict[str, Any]) -> dict[str, Any]:
        assert schema_of(body)["properties"]["value"]["type"] == "integer"
        return {"justification": "Mostly.", "confidence": 0.5, "value": 7 if "about data" in _text(body) else 2}

    judge = Judge(Script(), justification__confidence__value=score)
    fake.responder = judge
    lisa = _lisa(fake, tmp_path)
    claim = Proposition("Lisa talks about {{ topic }}.", lisa)
    assert claim.score(claim_variables={"topic": "data"}) == 7
    assert claim.score(claim_variables={"topic": "cats"}) == 2
    asked = len(judge.asked["justification__confidence__value"])
    vacuous = Proposition("Lisa talks about data.", lisa, precondition_function=lambda target, additional_context, claim_variables: False)
    assert vacuous.score() == 9 and vacuous.check() is True
    assert len(judge.asked["justification__confidence__value"]) == asked  # no call for a vacuous claim
    with pytest.raises(ValueError, match="no target"):
        Proposition("anything").check()


def test_double_check_asks_again_with_the_first_answer(fake: FakeOpenAI, tmp_path: Path) -> None:
    answers = iter([True, False])
    judge = Judge(Script(), justification__confidence__value=lambda body: {"justification": "x", "confidence": 1, "value": next(answers)})
    fake.responder = judge
    lisa = _lisa(fake, tmp_path)
    world = TinyWorld("Room", [lisa], gateway=lisa.gateway, transcript=False)
    claim = Proposition("Everyone is calm.", world, double_check=True)
    assert claim.check() is False and claim.calls == 2
    second = judge.asked["justification__confidence__value"][1]["messages"]
    assert second[-2]["role"] == "assistant" and "Double-check" in second[-1]["content"]


# ----- person validator -----


def test_validator_interviews_for_bounded_rounds_and_scores(fake: FakeOpenAI, tmp_path: Path) -> None:
    lisa_turns = [[talk("I analyse search data at Microsoft."), done()], [talk("I do yoga every morning."), done()], [talk("More."), done()]]
    judge = Judge(
        Script({"Lisa": lisa_turns}),
        finished__questions=lambda body: {"finished": False, "questions": f"Question {len(judge.asked['finished__questions'])}?"},
        justification__score=lambda body: {"justification": "Consistent with a data scientist.", "score": 0.8},
    )
    fake.responder = judge
    lisa = _lisa(fake, tmp_path)
    before = lisa.to_json()
    score, justification = TinyPersonValidator.validate_person(lisa, expectations="A data scientist who likes yoga.", max_rounds=2)
    assert (score, justification) == (0.8, "Consistent with a data scientist.")
    assert len(judge.asked["finished__questions"]) == 2  # bounded: two rounds, then the verdict
    verdict_prompt = _text(judge.asked["justification__score"][0])
    assert "I analyse search data at Microsoft." in verdict_prompt and "I do yoga every morning." in verdict_prompt
    assert "A data scientist who likes yoga." in verdict_prompt
    assert lisa.to_json() == before  # the interview happened to a copy


def test_validator_stops_when_the_interviewer_has_seen_enough(fake: FakeOpenAI, tmp_path: Path) -> None:
    judge = Judge(
        Script(),
        finished__questions=lambda body: {"finished": True, "questions": ""},
        justification__score=lambda body: {"justification": "Too little to go on.", "score": 0.1},
    )
    fake.responder = judge
    result = TinyPersonValidator.validate_person(_lisa(fake, tmp_path), return_details=True)
    assert result.rounds == [] and result.score == 0.1 and result.calls == 2


# ----- action quality checks -----


def test_quality_checks_are_off_by_default(fake: FakeOpenAI, tmp_path: Path) -> None:
    judge = Judge(Script({"Lisa": [[talk("Hi"), done()]]}), feedback=lambda body: pytest.fail("judged without checks"))
    fake.responder = judge
    lisa = _lisa(fake, tmp_path)
    lisa.listen_and_act("Hello")
    assert fake.calls == 1 and not getattr(lisa, "quality_log", [])


def test_a_failing_turn_is_regenerated_with_feedback_and_calls_are_counted(fake: FakeOpenAI, tmp_path: Path) -> None:
    def verdict(body: dict[str, Any]) -> dict[str, Any]:
        rude = "Go away" in _text(body).split("The turn to judge")[1]
        return {"persona_adherence": 2 if rude else 8, "fluency": 8, "feedback": "Lisa is polite." if rude else "Good."}

    judge = Judge(Script({"Lisa": [[talk("Go away"), done()], [talk("Happy to help!"), done()]]}), persona_adherence__fluency__feedback=verdict)
    fake.responder = judge
    lisa = _lisa(fake, tmp_path, **{"simulation.quality_checks": "persona_adherence, fluency", "simulation.quality_max_attempts": "3"})
    actions = lisa.listen_and_act("Can you help me?", return_actions=True)
    assert [a.content for a in actions or []] == ["Happy to help!", ""]
    log = lisa.quality_log  # type: ignore[attr-defined]
    assert [(a.attempt, a.passed, a.scores["persona_adherence"]) for a in log] == [(1, False, 2), (2, True, 8)]
    assert sum(a.judge_calls + a.generation_calls for a in log) == fake.calls == 4
    retry = turn_requests(fake, "Lisa")[1]["messages"][-1]["content"]
    assert "Go away" in retry and "persona_adherence" in retry and "Lisa is polite." in retry


def test_when_every_attempt_fails_the_best_is_kept(fake: FakeOpenAI, tmp_path: Path) -> None:
    scores = iter([3, 4])
    judge = Judge(
        Script({"Lisa": [[talk("first"), done()], [talk("second"), done()]]}),
        suitability__feedback=lambda body: {"suitability": next(scores), "feedback": "Off topic."},
    )
    fake.responder = judge
    lisa = _lisa(fake, tmp_path, **{"simulation.quality_checks": "suitability"})  # 2 attempts by default
    actions = lisa.listen_and_act("Tell me about search.", return_actions=True)
    assert [a.content for a in actions or []][0] == "second" and len(lisa.quality_log) == 2  # type: ignore[attr-defined]


def test_similarity_needs_no_call_and_catches_repetition(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = Script({"Lisa": [[talk("I like search relevance."), done()], [talk("I like search relevance!"), done()], [talk("Yoga keeps me calm."), done()]]})
    lisa = _lisa(fake, tmp_path, **{"simulation.quality_checks": "similarity"})
    lisa.listen_and_act("What do you like?")
    lisa.listen_and_act("And what else?")
    log = lisa.quality_log  # type: ignore[attr-defined]
    assert [a.passed for a in log] == [True, False, True] and all(a.judge_calls == 0 for a in log)
    assert fake.calls == 3


def test_an_unknown_check_is_a_one_line_config_error(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = Script()
    lisa = _lisa(fake, tmp_path, **{"simulation.quality_checks": "persona_adherence,politeness"})
    with pytest.raises(ConfigError, match=r"\[simulation\] quality_checks: unknown check\(s\) politeness; use some of"):
        lisa.listen_and_act("Hi")


def test_per_agent_switches_as_tinytroupe_has_them(fake: FakeOpenAI, tmp_path: Path) -> None:
    judge = Judge(
        Script({"Lisa": [[talk("Whatever."), done()], [talk("Glad to help with search!"), done()]]}),
        persona_adherence__feedback=lambda body: {"persona_adherence": 9 if "Glad" in _text(body).split("The turn to judge")[1] else 1, "feedback": "Be yourself."},
    )
    fake.responder = judge
    lisa, oscar = _lisa(fake, tmp_path), _lisa(fake, tmp_path)
    lisa.action_generator.enable_quality_checks = True
    lisa.action_generator.quality_threshold = 5
    lisa.action_generator.max_attempts = 5
    lisa.action_generator.enable_regeneration = True
    assert lisa.action_generator.quality_checks == ["persona_adherence"] and lisa.action_generator.max_attempts == 5
    assert not oscar.action_generator.enable_quality_checks  # only Lisa's settings changed
    lisa.listen_and_act("Can you help?")
    assert [a.passed for a in lisa.quality_log] == [False, True]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="enable_regeneration = False is not supported"):
        lisa.action_generator.enable_regeneration = False
    with pytest.raises(AttributeError, match="no setting 'temperature'"):
        lisa.action_generator.temperature = 0.2


def test_validator_copes_with_a_faculty_that_is_not_registered(fake: FakeOpenAI, tmp_path: Path) -> None:
    class Notepad:
        name = "Notepad"
        actions = {"NOTE": "write a note"}

        async def handle(self, agent: Any, action: Any) -> None:
            return None

    judge = Judge(
        Script({"Lisa": [[{"type": "NOTE", "content": "noted", "target": ""}, talk("I take notes."), done()]]}),
        finished__questions=lambda body: {"finished": len(judge.asked["finished__questions"]) > 1, "questions": "Do you take notes?"},
        justification__score=lambda body: {"justification": "Takes notes.", "score": 0.7},
    )
    fake.responder = judge
    lisa = _lisa(fake, tmp_path)
    lisa.faculties.append(Notepad())
    assert TinyPersonValidator.validate_person(lisa, "Takes notes.") == (0.7, "Takes notes.")
    assert "NOTE" in schema_of(turn_requests(fake, "Lisa")[0])["$defs"]["Action"]["properties"]["type"]["enum"]


def test_ready_made_propositions_take_their_target_when_checked(fake: FakeOpenAI, tmp_path: Path) -> None:
    from troupe.validation import persona_adherence, task_completion

    judge = Judge(Script(), justification__confidence__value=lambda body: {"justification": "ok", "confidence": 0.8, "value": 6})
    fake.responder = judge
    lisa = _lisa(fake, tmp_path)
    assert persona_adherence.copy().score(lisa) == 6
    assert "occupation: data scientist" in _text(judge.asked["justification__confidence__value"][0])
    task_completion.copy().score(lisa, claim_variables={"task_description": "write a resume"})
    assert "write a resume" in _text(judge.asked["justification__confidence__value"][1])

"""Per-call resilience: a structured reply that is still unusable after its repair round is resampled.

Faults are injected by the fake OpenAI server (queued in request order) and reach the gateway over
real HTTP through the real openai client. What is checked: how many calls a fault costs, what each
call is recorded as in the ledger (the ``llm_calls`` rows), what the call cache keeps, and where the
bound (``[llm] max_resamples``) stops.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from tests.conftest import fake_config
from tests.fake_openai import MALFORMED_CONTENT, FakeOpenAI
from tests.scripted import agent_of, kind_of
from troupe.cache import FileCallCache
from troupe.config import Config
from troupe.errors import ConfigError
from troupe.llm import LLMGateway, LLMStructuredOutputError, LLMTruncated

MESSAGES = [{"role": "user", "content": "Would you buy the new bread at the corner bakery?"}]


class Answer(BaseModel):
    reasoning: str = Field(max_length=300)
    verdict: Literal["yes", "no", "maybe"]


def _gateway(fake: FakeOpenAI, root: Path, **overrides: str) -> LLMGateway:
    return LLMGateway(fake_config(fake, root, **overrides))


def _purposes(gateway: LLMGateway) -> list[str]:
    return [record.purpose for record in gateway.ledger.records]


def test_reply_bad_after_repair_is_resampled_with_a_new_key_and_seed(gateway: LLMGateway, fake: FakeOpenAI, config: Config) -> None:
    fake.malformed_next(2)  # the first sample and its repair
    result = gateway.structured(MESSAGES, Answer, purpose="survey")
    assert isinstance(result.value, Answer)
    assert fake.calls == 3
    assert _purposes(gateway) == ["survey", "survey:repair", "survey:resample1"]
    keys = [record.key for record in gateway.ledger.records]
    assert len(set(keys)) == 3 and result.key == keys[2]
    first, resample = fake.requests[0], fake.requests[2]
    assert resample["messages"] == first["messages"]  # the same question, not the repair conversation
    assert resample["seed"] == first["seed"] + 1
    assert gateway.ledger.totals()["calls"] == 3


def test_a_resampled_success_replays_from_the_cache_for_free(gateway: LLMGateway, fake: FakeOpenAI, config: Config) -> None:
    fake.malformed_next(2)
    first = gateway.structured(MESSAGES, Answer)
    assert len(FileCallCache(config.cache.dir)) == 3  # the unusable replies stay: a rerun takes the same path
    again = LLMGateway(config).structured(MESSAGES, Answer)
    assert fake.calls == 3
    assert again.value == first.value and again.cache_hit


def test_resamples_stop_at_the_bound_and_cache_nothing(fake: FakeOpenAI, tmp_path: Path) -> None:
    gateway = _gateway(fake, tmp_path, **{"llm.max_resamples": "1"})
    fake.malformed_next(4)
    with pytest.raises(LLMStructuredOutputError, match=r"^Answer: .*after one repair round and 1 resamples"):
        gateway.structured(MESSAGES, Answer, purpose="survey")
    assert fake.calls == 4
    assert _purposes(gateway) == ["survey", "survey:repair", "survey:resample1", "survey:resample1:repair"]
    assert len(FileCallCache(tmp_path / "cache")) == 0  # nothing unusable is replayed by a rerun
    assert isinstance(gateway.structured(MESSAGES, Answer).value, Answer)  # a rerun asks again
    assert fake.calls == 5


def test_zero_resamples_fails_after_the_repair_round(fake: FakeOpenAI, tmp_path: Path) -> None:
    gateway = _gateway(fake, tmp_path, **{"llm.max_resamples": "0"})
    fake.malformed_next(2)
    with pytest.raises(LLMStructuredOutputError, match="0 resamples"):
        gateway.structured(MESSAGES, Answer)
    assert fake.calls == 2


def test_schema_mismatch_and_provider_error_text_are_resampled_too(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    fake.invalid_next(1)
    fake.error_text_next(1)
    assert isinstance(gateway.structured(MESSAGES, Answer).value, Answer)
    assert fake.calls == 3


def test_a_truncated_reply_is_resampled_and_never_cached(gateway: LLMGateway, fake: FakeOpenAI, config: Config) -> None:
    fake.truncate_next(1)
    result = gateway.structured(MESSAGES, Answer, purpose="survey")
    assert isinstance(result.value, Answer)
    assert fake.calls == 2
    # The cut-off reply is accounted (its tokens were paid for) but not cached; the resample is the answer.
    assert _purposes(gateway) == ["survey", "survey:resample1"]
    assert [r.finish_reason for r in gateway.ledger.records] == ["length", "stop"]
    assert len(FileCallCache(config.cache.dir)) == 1


def test_truncation_on_every_sample_keeps_its_advice(fake: FakeOpenAI, tmp_path: Path) -> None:
    gateway = _gateway(fake, tmp_path, **{"llm.max_resamples": "1"})
    fake.truncate_next(2)
    with pytest.raises(LLMTruncated, match=r"raise \[llm\] max_tokens"):
        gateway.structured(MESSAGES, Answer)
    assert fake.calls == 2


def test_transient_retries_are_counted_as_attempts_of_the_call(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    fake.fail_next(1, status=500)
    fake.fail_next(1, status=429, retry_after=0)
    fake.malformed_next(2)
    gateway.structured(MESSAGES, Answer)
    assert fake.calls == 5
    assert [(r.purpose, r.attempts) for r in gateway.ledger.records] == [("", 3), ("repair", 1), ("resample1", 1)]


def test_concurrent_calls_all_survive_a_burst_of_malformed_replies(gateway: LLMGateway, fake: FakeOpenAI) -> None:
    # 5 malformed replies cannot exhaust one call's 6 requests (3 samples, each with its repair),
    # whichever requests they land on: every call must succeed, paying one extra request per fault.
    fake.malformed_next(5)
    questions = [[{"role": "user", "content": f"Question {i}: would you buy bread here?"}] for i in range(20)]

    async def ask_all() -> list[Answer]:
        results = await asyncio.gather(*(gateway.astructured(q, Answer) for q in questions))
        return [r.value for r in results]

    answers = asyncio.run(ask_all())
    assert len(answers) == 20 and all(isinstance(a, Answer) for a in answers)
    assert fake.calls == 25
    assert gateway.ledger.totals()["calls"] == 25


def test_max_resamples_must_not_be_negative(fake: FakeOpenAI, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"argument llm\.max_resamples: '-1' is not a valid int \(Input should be greater than or equal to 0\)"):
        fake_config(fake, tmp_path, **{"llm.max_resamples": "-1"})


def test_a_run_survives_a_turn_whose_repair_is_also_malformed(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    """The failure measured on a 500-person run, made certain: Ana's first turn and its repair are cut-off JSON."""
    from typer.testing import CliRunner

    from flows.cli import app
    from troupe.datasets import connect

    demo = Path(__file__).resolve().parent.parent / "troupe" / "examples" / "scenarios" / "demo.yaml"
    lock, bad = threading.Lock(), [2]

    def responder(body: dict[str, Any]) -> str | None:
        if kind_of(body) == "turn" and agent_of(body) == "Ana":
            with lock:
                if bad[0]:
                    bad[0] -= 1
                    return MALFORMED_CONTENT
        return None  # the fake's schema-valid default

    fake.responder = responder
    root = tmp_path / "datasets"
    settings = ["--set", "llm.api_type=openai", "--set", f"llm.base_url={fake.url}", "--set", "llm.model=fake-model"]
    result = CliRunner().invoke(app, ["run", str(demo), "--datasets", str(root), "--run-id", "faulty", "--quiet", *settings])
    assert result.exit_code == 0, result.output
    assert bad == [0]
    connection = connect(root)
    try:
        purposes = [row[0] for row in connection.execute("SELECT purpose FROM llm_calls WHERE NOT cache_hit").fetchall()]
        status, calls = connection.execute("SELECT status, calls FROM runs").fetchall()[0]
        extracted = connection.execute("SELECT count(*) FROM extractions").fetchall()[0][0]
        ana_acted = connection.execute("SELECT count(*) FROM events WHERE agent = 'Ana' AND direction = 'action'").fetchall()[0][0]
    finally:
        connection.close()
    assert status == "completed" and extracted == 2 and ana_acted > 0
    assert purposes.count("act:Ana:repair") == 1 and purposes.count("act:Ana:resample1") == 1
    assert calls == len(purposes) == fake.calls  # every request paid is accounted for

"""The per-endpoint limiter's rate buckets and adaptive concurrency, on their own and through the gateway."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from troupe.llm import LLMGateway
from troupe.llm.limiter import EndpointLimiter, TokenBucket


def test_request_bucket_spaces_requests() -> None:
    async def go() -> float:
        bucket = TokenBucket(per_minute=600, capacity=1)  # 10 a second, no burst beyond one
        started = time.monotonic()
        for _ in range(5):
            await bucket.take(1)
        return time.monotonic() - started

    assert asyncio.run(go()) >= 0.38  # the first is free, then 4 x 0.1 s


def test_token_bucket_charges_estimates_and_refunds() -> None:
    async def go() -> tuple[float, float]:
        bucket = TokenBucket(per_minute=6000, capacity=100)  # 100 tokens a second
        started = time.monotonic()
        await bucket.take(100)
        await bucket.take(50)  # waits ~0.5 s for the refill
        waited = time.monotonic() - started
        bucket.give_back(50)  # the reply used fewer tokens than estimated
        started = time.monotonic()
        await bucket.take(50)
        return waited, time.monotonic() - started

    waited, refunded = asyncio.run(go())
    assert waited >= 0.45
    assert refunded < 0.05


def test_unlimited_bucket_never_waits() -> None:
    async def go() -> float:
        bucket = TokenBucket(per_minute=0, capacity=1)
        started = time.monotonic()
        for _ in range(1000):
            await bucket.take(10_000)
        return time.monotonic() - started

    assert asyncio.run(go()) < 0.5


def test_rate_limit_halves_concurrency_and_successes_restore_it() -> None:
    async def go() -> list[int]:
        limiter = EndpointLimiter(max_concurrency=8)
        seen = [limiter.limit]
        await limiter.on_rate_limited()
        await limiter.on_rate_limited()
        seen.append(limiter.limit)
        for _ in range(40):
            await limiter.on_success()
        seen.append(limiter.limit)
        return seen

    assert asyncio.run(go()) == [8, 2, 8]


def test_gateway_honours_rpm(fake: FakeOpenAI, tmp_path: Path) -> None:
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.rpm": 300, "llm.max_concurrency": 1}))

    async def calls() -> None:
        await asyncio.gather(*(gateway.acomplete([{"role": "user", "content": f"rpm {i}"}]) for i in range(4)))

    started = time.monotonic()
    asyncio.run(calls())
    assert time.monotonic() - started >= 0.55  # 5 a second after the first: 3 x 0.2 s
    assert fake.calls == 4

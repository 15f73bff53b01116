"""The per-endpoint limiter's rate buckets and adaptive concurrency, on their own and through the gateway.

These hold on a loaded 2-core machine: they assert what the limiter lets through (invariants), and
bound elapsed time only from below, where waiting is the behaviour (a busy machine only waits longer).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Coroutine

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
    assert refunded < waited  # generous: a take the refund did not cover would wait ~0.5 s like the first


def test_refund_covers_the_next_take_without_waiting() -> None:
    async def go() -> None:
        bucket = TokenBucket(per_minute=6, capacity=100)  # refills 0.1 a second: any wait would be long
        await bucket.take(100)
        bucket.give_back(50)
        await _without_suspending(bucket.take(50))

    asyncio.run(go())


async def _without_suspending(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run coroutine to its end in one step: it never awaited anything that could make it wait."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise AssertionError("the coroutine suspended (it would have waited)")


def test_unlimited_bucket_never_waits() -> None:
    async def go() -> None:
        bucket = TokenBucket(per_minute=0, capacity=1)
        for _ in range(1000):
            await _without_suspending(bucket.take(10_000))

    asyncio.run(go())


def test_slots_fill_up_to_the_limit_and_never_beyond() -> None:
    """20 requests at once, each holding its slot until released: exactly max_concurrency are inside."""

    async def go() -> tuple[int, int, int]:
        limiter = EndpointLimiter(max_concurrency=4)
        release = asyncio.Event()
        inside = peak = 0

        async def request() -> None:
            nonlocal inside, peak
            async with limiter.slot(1):
                inside += 1
                peak = max(peak, inside)
                await release.wait()
                inside -= 1

        tasks = [asyncio.create_task(request()) for _ in range(20)]
        for _ in range(200):  # every task gets many turns to (wrongly) take a fifth slot
            await asyncio.sleep(0)
        assert inside == limiter.active == 4
        release.set()
        await asyncio.gather(*tasks)
        return peak, limiter.peak_active, limiter.active

    assert asyncio.run(go()) == (4, 4, 0)


def test_a_halved_limit_admits_no_one_until_enough_slots_are_free() -> None:
    async def go() -> list[int]:
        limiter = EndpointLimiter(max_concurrency=4)
        gates = [asyncio.Event() for _ in range(6)]
        inside: list[int] = []

        async def request(i: int) -> None:
            async with limiter.slot(1):
                inside.append(i)
                await gates[i].wait()

        tasks = [asyncio.create_task(request(i)) for i in range(6)]
        for _ in range(50):
            await asyncio.sleep(0)
        seen = [limiter.active]
        await limiter.on_rate_limited()  # limit 4 -> 2 while 4 are inside
        for i in (0, 1):
            gates[i].set()
        for _ in range(50):
            await asyncio.sleep(0)
        seen.append(limiter.active)  # 2 left, 2 still inside: nobody new may enter at limit 2
        gates[2].set()
        for _ in range(50):
            await asyncio.sleep(0)
        seen.append(limiter.active)  # 1 inside + 1 admitted
        for gate in gates:
            gate.set()
        await asyncio.gather(*tasks)
        seen.append(len(inside))
        return seen

    assert asyncio.run(go()) == [4, 2, 2, 6]


def test_waiters_enter_in_order_and_a_cancelled_waiter_keeps_no_slot() -> None:
    """Freed slots go to the oldest waiter; cancelling a waiter (or one just admitted) leaks no slot."""

    async def go() -> tuple[list[int], int, int]:
        limiter = EndpointLimiter(max_concurrency=2)
        gates = [asyncio.Event() for _ in range(6)]
        order: list[int] = []

        async def request(i: int) -> None:
            async with limiter.slot(1):
                order.append(i)
                await gates[i].wait()

        tasks = []
        for i in range(6):
            tasks.append(asyncio.create_task(request(i)))
            await asyncio.sleep(0)  # queue them in a known order
        tasks[3].cancel()  # waiting: never admitted
        gates[0].set()
        await asyncio.sleep(0)
        tasks[2].cancel()  # admitted by request 0's exit, cancelled before it ran: its slot goes on
        for _ in range(50):
            await asyncio.sleep(0)
        inside = limiter.active
        for gate in gates:
            gate.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return order, inside, limiter.active

    order, inside, after = asyncio.run(go())
    assert order[:2] == [0, 1] and 3 not in order and order == sorted(order)
    assert inside == 2 and after == 0


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

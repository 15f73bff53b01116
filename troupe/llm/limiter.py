"""Per-endpoint rate limiting: concurrent requests, requests/minute and tokens/minute.

One limiter serves every caller of an endpoint in the process (the gateway keeps them by
endpoint), so ten agents, a Prefect task and a notebook cell together never exceed the limits.
The concurrency cap adapts: a 429 halves it, and each run of successes as long as the cap
raises it by one, back up to the configured maximum (additive increase, multiplicative decrease).
All methods run on the gateway's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from contextlib import asynccontextmanager
from typing import AsyncIterator


class TokenBucket:
    """A bucket refilled at ``per_minute / 60`` units per second; 0 means unlimited."""

    def __init__(self, per_minute: int, capacity: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = capacity
        self.level = capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        if self.rate <= 0:
            return
        amount = min(amount, self.capacity)  # a request larger than the bucket waits for a full one
        async with self._lock:
            self._refill()
            while self.level < amount:
                await asyncio.sleep((amount - self.level) / self.rate)
                self._refill()
            self.level -= amount

    def give_back(self, amount: float) -> None:
        """Return over-estimated units (the estimate is corrected by the reply's usage)."""
        if self.rate > 0:
            self.level = min(self.capacity, self.level + amount)


class EndpointLimiter:
    """Concurrency, rpm and tpm limits for one endpoint."""

    def __init__(self, max_concurrency: int, rpm: int = 0, tpm: int = 0) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self.limit = self.max_concurrency
        self.active = 0
        self.peak_active = 0
        self._successes = 0
        # Requests waiting for a slot, oldest first. A freed slot is handed to the oldest waiter
        # directly: waking every waiter to re-check (a Condition's notify_all) costs O(waiters) per
        # call, and hundreds of worlds wait on 64 slots in a sharded run.
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.requests = TokenBucket(rpm, capacity=max(1.0, min(float(rpm), float(self.max_concurrency))))
        self.tokens = TokenBucket(tpm, capacity=max(1.0, tpm / 6.0))

    @asynccontextmanager
    async def slot(self, estimated_tokens: int) -> AsyncIterator[None]:
        """Hold one request slot; rpm and tpm are charged before the request starts."""
        await self.requests.take(1)
        await self.tokens.take(estimated_tokens)
        await self._acquire()
        try:
            yield
        finally:
            self.active -= 1
            self._admit()

    async def _acquire(self) -> None:
        if self.active < self.limit and not self._waiters:
            self._enter()
            return
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(ticket)
        try:
            await ticket  # resolved by _admit, which has already counted this request in
        except asyncio.CancelledError:
            if ticket.done() and not ticket.cancelled():  # admitted, then cancelled: give the slot on
                self.active -= 1
                self._admit()
            raise

    def _enter(self) -> None:
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)

    def _admit(self) -> None:
        """Hand free slots to the oldest waiters (skipping any that were cancelled while waiting)."""
        while self._waiters and self.active < self.limit:
            ticket = self._waiters.popleft()
            if not ticket.done():
                self._enter()
                ticket.set_result(None)

    def settle_tokens(self, estimated: int, actual: int) -> None:
        self.tokens.give_back(estimated - actual)

    async def on_rate_limited(self) -> None:
        self.limit = max(1, self.limit // 2)
        self._successes = 0

    async def on_success(self) -> None:
        if self.limit >= self.max_concurrency:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self.limit += 1
            self._successes = 0
            self._admit()

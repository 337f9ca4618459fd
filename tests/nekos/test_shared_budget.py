"""`RateLimiter` with a `SharedBudget` (the count of every process of the bot): a slot is taken
there before sending, a refusal waits or fails like a spent window, answers correct the count.
The budget here is an in-memory one; the PostgreSQL one is tested in tests/coordination."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.nekos import NekosClient, RateLimited, RateLimiter
from tests.fakes.nekos import FakeNekos
from tests.nekos.helpers import ClientFactory


class RecordingBudget:
    """Refuses the next `refusals` takes for `wait` seconds each; records every call."""

    def __init__(self, *, refusals: int = 0, wait: float = 0.0) -> None:
        self.refusals = refusals
        self.wait = wait
        self.takes: list[tuple[str, int, float]] = []
        self.corrections: list[tuple[str, int, float]] = []

    async def take(self, key: str, limit: int, window: float) -> float | None:
        self.takes.append((key, limit, window))
        if self.refusals > 0:
            self.refusals -= 1
            return self.wait
        return None

    async def correct(self, key: str, remaining: int, reset_at: float) -> None:
        self.corrections.append((key, remaining, reset_at))


async def test_a_refusal_beyond_the_deadline_fails_at_once() -> None:
    budget = RecordingBudget(refusals=1, wait=60.0)
    limiter = RateLimiter(budget=budget)
    loop = asyncio.get_running_loop()
    with pytest.raises(RateLimited) as raised:
        await limiter.acquire("search", loop.time() + 1.0)
    assert raised.value.reset_at == pytest.approx(time.time() + 60.0, abs=5)
    # The local reservation was given back, and the pool can see the bucket is closed.
    assert limiter.bucket("search").inflight == 0
    blocked = limiter.blocked_until("search")
    assert blocked is not None and blocked > time.time() + 50
    assert budget.takes == [("search", 7, 5.0)]  # the documented budget before any answer


async def test_a_short_refusal_waits_and_asks_again() -> None:
    budget = RecordingBudget(refusals=2, wait=0.05)
    limiter = RateLimiter(budget=budget)
    await limiter.acquire("search", asyncio.get_running_loop().time() + 10.0)
    assert len(budget.takes) == 3
    assert limiter.bucket("search").inflight == 1
    assert limiter.blocked_until("search") is None


async def test_a_cancelled_take_gives_the_local_slot_back() -> None:
    class Stuck(RecordingBudget):
        async def take(self, key: str, limit: int, window: float) -> float | None:
            await asyncio.Event().wait()
            return None

    limiter = RateLimiter(budget=Stuck())
    task = asyncio.ensure_future(limiter.acquire("search"))
    await asyncio.sleep(0.01)
    assert limiter.bucket("search").inflight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.bucket("search").inflight == 0


async def test_answers_correct_the_shared_count(
    make_client: ClientFactory, nekos: FakeNekos
) -> None:
    budget = RecordingBudget()
    client: NekosClient = make_client(budget=budget)
    await client.random("hug", amount=2)
    await client.limiter.settle()
    assert budget.takes == [("category:hug", 200, 60.0)]
    [(key, remaining, reset_at)] = budget.corrections
    assert (key, remaining) == ("category:hug", 199)
    assert time.time() < reset_at <= time.time() + 61


async def test_a_limiter_and_a_budget_are_not_given_together(make_client: ClientFactory) -> None:
    with pytest.raises(TypeError):
        make_client(limiter=RateLimiter(), budget=RecordingBudget())

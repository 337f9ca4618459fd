"""Retries (5xx, timeouts, connection errors) within the budget, never for 4xx; the circuit
breaker opens after consecutive failures, fails fast, and recovers through one probe."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from bot.nekos import (
    BadRequest,
    BreakerState,
    CircuitBreaker,
    NekosClient,
    RateLimited,
    Unavailable,
    UnknownCategory,
)
from tests.fakes.nekos import FakeNekos
from tests.nekos.helpers import ClientFactory

# -- retries -------------------------------------------------------------------------------


async def test_5xx_retried_until_success(client: NekosClient, nekos: FakeNekos) -> None:
    nekos.fail(503, times=2)
    results = await client.random("hug")
    assert len(results) == 1
    assert [r.status for r in nekos.requests_to("/hug")] == [503, 503, 200]
    assert client.stats.retries == 2 and client.stats.failures == 2
    assert client.stats.answers == {("category:hug", "503"): 2, ("category:hug", "200"): 1}
    assert client.breaker.state is BreakerState.CLOSED
    assert client.breaker.consecutive_failures == 0


async def test_attempts_are_capped(make_client: ClientFactory, nekos: FakeNekos) -> None:
    client = make_client(max_attempts=3, breaker_threshold=100)
    nekos.fail(500)
    with pytest.raises(Unavailable) as info:
        await client.random("hug")
    assert info.value.status == 500
    assert nekos.count("/hug") == 3


async def test_retries_stop_at_the_budget(make_client: ClientFactory, nekos: FakeNekos) -> None:
    client = make_client(max_attempts=1000, breaker_threshold=1000, backoff_cap=0.1)
    nekos.fail(500)
    nekos.latency = 0.05
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await client.random("hug", budget=0.6)
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 0.8
    assert 3 <= nekos.count("/hug") < 12


async def test_hang_attempt_timeout_never_exceeds_budget(
    make_client: ClientFactory, nekos: FakeNekos
) -> None:
    client = make_client(attempt_timeout=10.0)
    nekos.hang = True
    started = time.monotonic()
    with pytest.raises(Unavailable, match="timed out"):
        await client.random("hug", budget=0.4)
    assert time.monotonic() - started < 0.6
    assert nekos.count("/hug") == 1  # one attempt used all the budget


async def test_per_attempt_timeout_then_retry(make_client: ClientFactory, nekos: FakeNekos) -> None:
    client = make_client(attempt_timeout=0.2)
    calls = 0

    async def slow_first(request: web.Request) -> web.Response | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1.0)
        return None

    nekos.override = slow_first
    assert len(await client.random("hug", budget=2.0)) == 1
    assert nekos.count("/hug") == 2
    assert client.stats.retries == 1
    assert client.stats.answers == {("category:hug", "timeout"): 1, ("category:hug", "200"): 1}


async def test_connection_refused_is_unavailable(
    make_client: ClientFactory, nekos: FakeNekos
) -> None:
    client = make_client(breaker_threshold=100)
    await nekos.stop()
    started = time.monotonic()
    with pytest.raises(Unavailable, match="connection failed"):
        await client.random("hug", budget=1.0)
    assert time.monotonic() - started < 1.2
    assert client.stats.requests["category:hug"] == client.transport.max_attempts
    assert client.stats.answers == {("category:hug", "connection"): client.transport.max_attempts}
    await nekos.start()  # same port again
    assert len(await client.random("hug")) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequest), (404, UnknownCategory), (418, Unavailable), (429, RateLimited)],
)
async def test_4xx_never_retried(
    client: NekosClient, nekos: FakeNekos, status: int, error: type[Exception]
) -> None:
    nekos.fail(status)
    with pytest.raises(error):
        await client.random("hug")
    assert nekos.count("/hug") == 1
    assert client.stats.retries == 0
    assert client.breaker.consecutive_failures == 0  # the service answered: it is up


async def test_backoff_is_capped_with_full_jitter(make_client: ClientFactory) -> None:
    client = make_client(backoff_base=0.1, backoff_cap=0.5)
    delays = [client.transport.backoff(attempt) for attempt in range(1, 10) for _ in range(50)]
    assert all(0.0 <= d <= 0.5 for d in delays)
    assert max(delays) > 0.4 and min(delays) < 0.05


# -- breaker -------------------------------------------------------------------------------


async def test_breaker_opens_fails_fast_and_recovers(
    make_client: ClientFactory, nekos: FakeNekos
) -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=30.0, clock=lambda: now[0])
    client = make_client(breaker=breaker, max_attempts=1)
    nekos.fail(500)
    for _ in range(3):
        with pytest.raises(Unavailable):
            await client.random("hug")
    assert breaker.state is BreakerState.OPEN and breaker.opened == 1
    sent = len(nekos.requests)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="circuit open"):
        await client.random("hug")
    with pytest.raises(Unavailable, match="circuit open"):
        await client.search("Nichijou", "gifs")
    assert time.monotonic() - started < 0.1
    assert len(nekos.requests) == sent  # nothing sent while open
    assert client.stats.breaker_rejections == 2

    # Half-open: one probe goes through; it fails, the breaker opens again.
    now[0] = 30.0
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(Unavailable):
        await client.random("hug")
    assert len(nekos.requests) == sent + 1
    assert breaker.state is BreakerState.OPEN and breaker.opened == 2

    # The service is back: after the cool-down one probe succeeds and closes it.
    nekos.heal()
    now[0] = 61.0
    nekos.latency = 0.1
    probe = asyncio.create_task(client.random("hug"))
    await asyncio.sleep(0.02)
    with pytest.raises(Unavailable, match="probe"):  # only one probe at a time
        await client.random("pat")
    assert len(await probe) == 1
    assert breaker.state is BreakerState.CLOSED
    assert len(await client.random("pat")) == 1


async def test_breaker_counts_retried_attempts(
    make_client: ClientFactory, nekos: FakeNekos
) -> None:
    client = make_client(breaker_threshold=5, breaker_cooldown=30.0, max_attempts=10)
    nekos.fail(502)
    with pytest.raises(Unavailable):
        await client.random("hug")
    # The fifth consecutive failure opened it; the retry loop then failed fast.
    assert nekos.count("/hug") == 5
    assert client.breaker.state is BreakerState.OPEN


async def test_breaker_real_clock_cooldown(make_client: ClientFactory, nekos: FakeNekos) -> None:
    client = make_client(breaker_threshold=2, breaker_cooldown=0.2, max_attempts=1)
    nekos.fail(500, times=2)
    for _ in range(2):
        with pytest.raises(Unavailable):
            await client.random("hug")
    with pytest.raises(Unavailable, match="circuit open"):
        await client.random("hug")
    await asyncio.sleep(0.25)
    assert len(await client.random("hug")) == 1
    assert client.breaker.state is BreakerState.CLOSED


async def test_probe_slot_freed_when_rate_limited_locally(
    make_client: ClientFactory, nekos: FakeNekos
) -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown=1.0, clock=lambda: now[0])
    client = make_client(breaker=breaker, max_attempts=1)
    await client.random("hug")
    nekos.force_429(reset_in=5.0, bucket="category:hug")
    with pytest.raises(RateLimited):
        await client.random("hug")
    nekos.fail(500, times=1)
    with pytest.raises(Unavailable):
        await client.random("pat")
    now[0] = 2.0
    with pytest.raises(RateLimited):  # refused locally: no probe was spent
        await client.random("hug", budget=1.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert len(await client.random("pat")) == 1  # this one is the probe
    assert breaker.state is BreakerState.CLOSED


def test_breaker_validates_threshold() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold=0)


def test_breaker_settings_are_constructor_arguments() -> None:
    client = NekosClient(breaker_threshold=2, breaker_cooldown=0.5)
    assert (client.breaker.threshold, client.breaker.cooldown) == (2, 0.5)
    with pytest.raises(TypeError, match="breaker_cooldwon"):
        NekosClient(breaker_cooldwon=0.5)  # type: ignore[call-arg]

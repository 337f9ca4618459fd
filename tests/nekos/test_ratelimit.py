"""Rate-limit buckets learned from headers: parse, block at remaining=0 and after 429, reserve
slots for concurrent callers, fail at once when the caller's budget ends before the reset."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from bot.nekos import NekosClient, RateLimited, RateLimiter, parse_limit, parse_reset
from tests.fakes.nekos import FakeNekos, iso7
from tests.nekos.helpers import ClientFactory

# -- parsing -------------------------------------------------------------------------------


def test_parse_reset_seven_fractional_digits() -> None:
    expected = datetime(2023, 10, 21, 20, 16, 30, tzinfo=UTC).timestamp()
    assert parse_reset("2023-10-21T20:16:30.0000000Z") == expected
    assert parse_reset("2023-10-21T20:16:30.1234567Z") == pytest.approx(expected + 0.123456)
    assert parse_reset("2023-10-21T20:16:30Z") == expected
    assert parse_reset("2023-10-21T20:16:30.5+00:00") == expected + 0.5
    assert parse_reset("2023-10-21T22:16:30.0000000+02:00") == expected
    assert parse_reset("2023-10-21T20:16:30") == expected  # naive: UTC


def test_parse_reset_other_forms() -> None:
    assert parse_reset(str(1700000000.5)) == 1700000000.5
    assert parse_reset("2.5", now=100.0) == 102.5
    for bad in (None, "", "soon", "2023-13-45T99:00:00Z", "-5", "nan", "inf"):
        assert parse_reset(bad) is None


def test_iso7_round_trip() -> None:
    now = time.time()
    text = iso7(now)
    assert text.endswith("Z") and len(text.split(".")[1]) == 8  # 7 digits + Z
    assert parse_reset(text) == pytest.approx(now, abs=1e-5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1m", (None, 60.0)),
        ("5s", (None, 5.0)),
        ("500ms", (None, 0.5)),
        ("1h", (None, 3600.0)),
        ("200", (200, None)),
        ("200/1m", (200, 60.0)),
        ("", (None, None)),
        (None, (None, None)),
        ("lots", (None, None)),
        ("0", (None, None)),
    ],
)
def test_parse_limit(value: str | None, expected: tuple[int | None, float | None]) -> None:
    assert parse_limit(value) == expected


# -- limiter unit --------------------------------------------------------------------------


async def test_limiter_learns_and_blocks() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0], margin=0.0)
    await limiter.acquire("search")
    limiter.release(
        "search",
        {
            "x-rate-limit-limit": "5s",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": iso7(1003.0),
        },
        status=200,
    )
    assert limiter.limit("search") == 1  # learned from remaining + 1
    assert limiter.window("search") == 5.0
    assert limiter.blocked_until("search") == 1003.0
    loop = asyncio.get_running_loop()
    with pytest.raises(RateLimited) as info:
        await limiter.acquire("search", loop.time() + 1.0)
    assert info.value.reset_at == 1003.0 and info.value.bucket == "search"
    now[0] = 1003.0
    await limiter.acquire("search", loop.time() + 1.0)  # the window has reset


async def learned(limiter: RateLimiter, key: str, remaining: int, reset_at: float) -> None:
    """One request answered with this count: the limiter then knows the bucket (before that,
    it sends one request at a time)."""
    await limiter.acquire(key)
    headers = {"x-rate-limit-remaining": str(remaining), "x-rate-limit-reset": iso7(reset_at)}
    limiter.release(key, headers, status=200)


async def test_limiter_probes_with_one_request_until_an_answer_states_the_count() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0], margin=0.0)
    loop = asyncio.get_running_loop()
    await limiter.acquire("search")
    with pytest.raises(RateLimited):  # the count is unknown: nothing more until it answers
        await limiter.acquire("search", loop.time() + 0.05)
    headers = {"x-rate-limit-remaining": "3", "x-rate-limit-reset": iso7(1005.0)}
    limiter.release("search", headers, status=200)
    for _ in range(3):  # now known: spent at once
        await limiter.acquire("search", loop.time() + 0.05)
    with pytest.raises(RateLimited):
        await limiter.acquire("search", loop.time() + 0.05)
    # After the reset the count is unknown again: under a sliding window only one slot may
    # have freed, so one request goes out and the rest wait for its answer.
    now[0] = 1005.0
    for _ in range(3):
        limiter.release("search", headers, status=200)
    await limiter.acquire("search", loop.time() + 0.05)
    with pytest.raises(RateLimited):
        await limiter.acquire("search", loop.time() + 0.05)
    # Its answer names a reset already past (the next slot freed meanwhile): probe again.
    limiter.release(
        "search", {"x-rate-limit-remaining": "0", "x-rate-limit-reset": iso7(1004.9)}, status=200
    )
    await limiter.acquire("search", loop.time() + 0.05)
    with pytest.raises(RateLimited):
        await limiter.acquire("search", loop.time() + 0.05)


async def test_limiter_without_counts_in_answers_caps_by_the_documented_limit() -> None:
    limiter = RateLimiter(clock=lambda: 1000.0)
    await limiter.acquire("search")
    limiter.release("search", {}, status=200)  # no rate-limit headers at all
    loop = asyncio.get_running_loop()
    for _ in range(7):
        await limiter.acquire("search", loop.time() + 0.05)
    with pytest.raises(RateLimited):
        await limiter.acquire("search", loop.time() + 0.05)


async def test_limiter_stale_answer_does_not_raise_remaining() -> None:
    limiter = RateLimiter(clock=lambda: 1000.0)
    await learned(limiter, "category:hug", 5, 1060.0)
    for _ in range(2):
        await limiter.acquire("category:hug")
    headers = {"x-rate-limit-reset": iso7(1060.0), "x-rate-limit-limit": "1m"}
    limiter.release("category:hug", {**headers, "x-rate-limit-remaining": "3"}, status=200)
    limiter.release("category:hug", {**headers, "x-rate-limit-remaining": "4"}, status=200)
    assert limiter.bucket("category:hug").remaining == 3


async def test_limiter_429_without_headers_blocks_briefly() -> None:
    limiter = RateLimiter(clock=lambda: 1000.0, fallback_block=2.0)
    await limiter.acquire("file")
    assert limiter.release("file", {}, status=429) == 1002.0
    assert limiter.blocked_until("file") == 1002.0


async def test_limiter_late_answer_does_not_reopen_after_429() -> None:
    limiter = RateLimiter(clock=lambda: 1000.0)
    await learned(limiter, "category:hug", 5, 1001.0)
    await limiter.acquire("category:hug")
    await limiter.acquire("category:hug")
    limiter.release(
        "category:hug",
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": iso7(1002.0)},
        status=429,
    )
    # An earlier request's 200 arrives late, claiming a later window with room left.
    limiter.release(
        "category:hug",
        {"x-rate-limit-remaining": "150", "x-rate-limit-reset": iso7(1050.0)},
        status=200,
    )
    assert limiter.blocked_until("category:hug") == 1002.0


async def test_limiter_does_not_learn_a_limit_from_a_429() -> None:
    limiter = RateLimiter(clock=lambda: 1000.0)
    await limiter.acquire("category:hug")
    limiter.release(
        "category:hug",
        {
            "x-rate-limit-limit": "1m",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": iso7(1030.0),
        },
        status=429,
    )
    assert limiter.limit("category:hug") == 200  # still the documented figure, not 1


# -- against the fake ----------------------------------------------------------------------


async def test_remaining_zero_blocks_until_reset(make_client: ClientFactory) -> None:
    async with FakeNekos(category_limit=3, category_window=0.6) as nekos:
        client = make_client(base_url=nekos.base_url)
        for _ in range(3):
            await client.random("hug")
        bucket = client.limiter.bucket("category:hug")
        assert bucket.remaining == 0 and bucket.window == 0.6
        reset = bucket.reset_at
        assert reset is not None
        await client.random("hug", budget=2.0)  # waits for the reset, then sends
        sent = nekos.requests_to("/hug")
        assert [r.status for r in sent] == [200] * 4  # never a 429
        assert sent[-1].time >= reset
        assert client.limiter.limit("category:hug") == 3  # learned


async def test_short_budget_gets_rate_limited_at_once(make_client: ClientFactory) -> None:
    async with FakeNekos(search_limit=2, search_window=2.0) as nekos:
        client = make_client(base_url=nekos.base_url)
        await client.search("Nichijou", "gifs")
        await client.search("Nichijou", "gifs")
        started = time.monotonic()
        with pytest.raises(RateLimited) as info:
            await client.search("Nichijou", "gifs", budget=0.5)
        assert time.monotonic() - started < 0.1
        assert info.value.bucket == "search"
        assert 1.0 < info.value.retry_after <= 2.1
        assert nekos.count("/search") == 2
        assert client.stats.rate_limited == 1


async def test_no_request_between_429_and_reset(client: NekosClient, nekos: FakeNekos) -> None:
    await client.random("hug")
    nekos.force_429(reset_in=0.6, bucket="category:hug")
    with pytest.raises(RateLimited) as info:
        await client.random("hug")  # the 429 itself is not retried
    reset = info.value.reset_at
    assert reset > time.time()
    # A caller who cannot wait learns it at once; other buckets are unaffected.
    with pytest.raises(RateLimited):
        await client.random("hug", budget=0.2)
    await client.random("pat")
    # A caller who can wait is held until the reset.
    results = await asyncio.gather(*(client.random("hug", budget=3.0) for _ in range(3)))
    assert len(results) == 3
    hug = nekos.requests_to("/hug")
    t429 = next(r.time for r in hug if r.status == 429)
    assert [r for r in hug if t429 < r.time < reset] == []
    assert [r.status for r in hug] == [200, 429, 200, 200, 200]


async def test_force_429_on_next_request(client: NekosClient, nekos: FakeNekos) -> None:
    nekos.force_429(reset_in=5.0)
    with pytest.raises(RateLimited) as info:
        await client.search("Nichijou", "gifs")
    assert 4.0 < info.value.retry_after <= 5.0
    with pytest.raises(RateLimited):
        await client.search("Nichijou", "gifs")
    assert nekos.count("/search") == 1


async def test_concurrent_callers_do_not_overshoot(make_client: ClientFactory) -> None:
    async with FakeNekos(search_limit=4, search_window=0.8) as nekos:
        client = make_client(base_url=nekos.base_url)
        # Learn the bucket first (before the first answer the documented 7 applies).
        await client.search("Nichijou", "gifs")
        nekos.latency = 0.05
        results = await asyncio.gather(
            *(client.search("Nichijou", "gifs", budget=5.0) for _ in range(7))
        )
        assert len(results) == 7
        statuses = [r.status for r in nekos.requests_to("/search")]
        assert statuses == [200] * 8  # reserved slots: no 429 at all
        # 4 per window: the 8 requests span at least two resets.
        times = [r.time for r in nekos.requests_to("/search")]
        assert times[-1] - times[0] >= 0.8


async def test_limit_header_as_count(make_client: ClientFactory) -> None:
    async with FakeNekos(category_limit=3, category_window=0.5, limit_header="count") as nekos:
        client = make_client(base_url=nekos.base_url)
        await client.random("hug")
        assert client.limiter.limit("category:hug") == 3  # stated by the server
        await asyncio.gather(*(client.random("hug", budget=3.0) for _ in range(4)))
        assert [r.status for r in nekos.requests_to("/hug")] == [200] * 5


async def test_documented_budget_used_before_first_answer(
    make_client: ClientFactory,
) -> None:
    async with FakeNekos(search_limit=7, search_window=0.5, latency=0.05) as nekos:
        client = make_client(base_url=nekos.base_url)
        await asyncio.gather(*(client.search("Nichijou", "gifs", budget=4.0) for _ in range(9)))
        assert [r.status for r in nekos.requests_to("/search")] == [200] * 9

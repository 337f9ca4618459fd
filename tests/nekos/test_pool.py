"""The prefetch pool: answers from memory, one shared refill, expiry, the budget, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from bot.nekos import (
    BadRequest,
    NekosClient,
    Pool,
    RateLimited,
    Unavailable,
    UnknownCategory,
)
from tests.fakes.nekos import FakeNekos
from tests.nekos.helpers import ClientFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PoolFactory = Callable[..., Pool]


@pytest.fixture
async def make_pool(client: NekosClient) -> AsyncIterator[PoolFactory]:
    pools: list[Pool] = []

    def factory(client_: NekosClient | None = None, **kwargs: object) -> Pool:
        pool = Pool(client_ or client, **kwargs)  # type: ignore[arg-type]
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        await pool.aclose()


async def test_requests_per_thousand_takes(
    make_pool: PoolFactory, nekos: FakeNekos, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = make_pool()
    results = [await pool.take("hug", budget=2.0) for _ in range(1000)]
    assert len({r.url for r in results}) == 1000  # each handed out once
    await pool.settle()  # count the prefetch still in flight too
    sequential = nekos.count("/hug")

    # The same with 50 concurrent takers.
    async def taker() -> None:
        for _ in range(20):
            await pool.take("pat", budget=2.0)

    await asyncio.gather(*(taker() for _ in range(50)))
    await pool.settle()
    concurrent = nekos.count("/pat")
    with capsys.disabled():
        print(
            f"\nupstream requests per 1,000 pool takes: {sequential} sequential, "
            f"{concurrent} with 50 concurrent takers (batch 20)"
        )
    assert 50 <= sequential <= 52
    assert 50 <= concurrent <= 53
    totals = pool.stats()["totals"]
    assert totals["hits"] + totals["misses"] == 2000
    assert totals["refills"] == sequential + concurrent


async def test_concurrent_takers_share_one_refill(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    nekos.latency = 0.1
    results = await asyncio.gather(*(pool.take("hug", budget=2.0) for _ in range(15)))
    assert len({r.url for r in results}) == 15
    assert nekos.count("/hug") == 1
    results = await asyncio.gather(*(pool.take("pat", budget=3.0) for _ in range(45)))
    assert len({r.url for r in results}) == 45
    assert nekos.count("/pat") == 3  # 20 + 20 + 5: no stampede


async def test_take_nowait_miss_then_hits(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    assert pool.take_nowait("hug") is None  # a miss: starts the fill
    assert pool.take_nowait("hug") is None
    await pool.settle()
    assert nekos.count("/hug") == 1  # both misses shared one refill
    assert pool.size("hug") == 20
    first = pool.take_nowait("hug")
    assert first is not None and first.category == "hug"
    assert pool.size("hug") == 19
    stats = pool.stats()["categories"]["hug"]
    assert (stats["hits"], stats["misses"], stats["refills"], stats["size"]) == (1, 2, 1, 19)


async def test_refill_at_low_watermark(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool(low_watermark=5)
    pool.warm(["hug"])
    await pool.settle()
    for _ in range(14):
        assert pool.take_nowait("hug") is not None
    await pool.settle()
    assert nekos.count("/hug") == 1  # 6 left: above the watermark
    assert pool.take_nowait("hug") is not None  # 5 left: refill
    await pool.settle()
    assert nekos.count("/hug") == 2
    assert pool.size("hug") == 25


async def test_entries_expire_after_ttl(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    clock = Clock()
    pool = make_pool(clock=clock, ttl=600.0)
    pool.warm(["hug"])
    await pool.settle()
    clock.now += 599.0
    assert pool.take_nowait("hug") is not None
    clock.now += 2.0
    assert pool.size("hug") == 0
    assert pool.stats()["categories"]["hug"]["expired"] == 19
    # Taking again is a miss; it refills with fresh entries.
    result = await pool.take("hug", budget=2.0)
    assert result is not None
    assert nekos.count("/hug") == 2


async def test_idle_expired_pool_not_refilled(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    clock = Clock()
    pool = make_pool(clock=clock, ttl=10.0)
    pool.warm(["hug", "pat"])
    await pool.settle()
    assert nekos.count() == 2
    clock.now += 11.0
    assert pool.stats()["totals"]["size"] == 0
    await asyncio.sleep(0.05)
    await pool.settle()
    assert nekos.count() == 2  # no background traffic for idle categories
    assert pool.take_nowait("hug") is None  # used again: refilled
    await pool.settle()
    assert nekos.count("/hug") == 2 and nekos.count("/pat") == 1


async def test_no_traffic_for_unused_categories(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    await pool.take("hug", budget=2.0)
    await asyncio.sleep(0.05)
    assert {r.route for r in nekos.requests} == {"/hug"}


async def test_duplicates_in_a_batch_dropped(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    nekos.duplicates = True
    pool.warm(["hug"])
    await pool.settle()
    assert pool.size("hug") == 10
    assert pool.stats()["categories"]["hug"]["duplicates"] == 10
    urls = [pool.take_nowait("hug") for _ in range(10)]
    assert len({r.url for r in urls if r}) == 10


async def test_take_many_distinct(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    results = await pool.take_many("neko", 10, budget=2.0)
    assert len(results) == 10 and len({r.url for r in results}) == 10
    assert nekos.count("/neko") == 1
    more = await pool.take_many("neko", 20, budget=2.0)
    assert len(more) == 20
    assert not {r.url for r in results} & {r.url for r in more}
    for bad in (0, 21, True):
        with pytest.raises(BadRequest):
            await pool.take_many("neko", bad, budget=1.0)


async def test_take_many_partial_when_refill_fails(
    make_pool: PoolFactory, make_client: ClientFactory, nekos: FakeNekos
) -> None:
    pool = make_pool(make_client(max_attempts=1), batch_size=3)
    pool.warm(["neko"])
    await pool.settle()
    nekos.fail(500)
    results = await pool.take_many("neko", 10, budget=1.0)
    assert len(results) == 3


async def test_unknown_category_raised(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    with pytest.raises(UnknownCategory):
        await pool.take("glomp", budget=1.0)
    assert "glomp" not in pool.stats()["categories"]  # no state kept for unknown names
    nekos.add_category("glomp")
    assert (await pool.take("glomp", budget=1.0)).category == "glomp"


async def test_unavailable_raised(
    make_pool: PoolFactory, make_client: ClientFactory, nekos: FakeNekos
) -> None:
    pool = make_pool(make_client(max_attempts=2))
    nekos.fail(503)
    with pytest.raises(Unavailable):
        await pool.take("hug", budget=1.0)
    assert pool.stats()["categories"]["hug"]["refill_errors"] == 1


async def test_take_budget_ends_before_refill(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    nekos.latency = 0.5
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await pool.take("hug", budget=0.1)
    assert time.monotonic() - started < 0.3
    await pool.settle()  # the refill went on in the background
    assert pool.size("hug") == 20


async def test_rate_limited_refill_and_no_request_until_reset(
    make_pool: PoolFactory, nekos: FakeNekos
) -> None:
    pool = make_pool()
    await pool.take("hug", budget=1.0)
    for _ in range(19):
        pool.take_nowait("hug")
    await pool.settle()  # a low-watermark refill ran meanwhile
    while pool.take_nowait("hug") is not None:
        pass
    await pool.settle()
    nekos.force_429(reset_in=3.0, bucket="category:hug")
    while pool.take_nowait("hug") is not None:
        pass
    await pool.settle()
    sent = nekos.count("/hug")
    assert nekos.requests_to("/hug")[-1].status == 429
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        await pool.take("hug", budget=1.0)
    assert time.monotonic() - started < 0.1
    assert 2.0 < info.value.retry_after <= 3.0
    for _ in range(5):
        assert pool.take_nowait("hug") is None
    await pool.settle()
    assert nekos.count("/hug") == sent  # nothing sent to the blocked bucket


async def test_refills_spend_the_whole_budget_and_no_more(
    make_client: ClientFactory, make_pool: PoolFactory
) -> None:
    async with FakeNekos(category_limit=8, category_window=3.0) as nekos:
        client = make_client(base_url=nekos.base_url)
        pool = make_pool(client, batch_size=1, low_watermark=0)
        for _ in range(8):
            await pool.take("hug", budget=0.5)
        assert client.limiter.limit("category:hug") == 8  # learned from the headers
        with pytest.raises(RateLimited) as info:
            await pool.take("hug", budget=0.05)
        assert info.value.bucket == "category:hug"
        assert 0 < info.value.retry_after <= 3.0
        assert pool.take_nowait("hug") is None
        await pool.settle()
        assert nekos.count("/hug") == 8  # all 8 of the window, nothing past it
        assert not [r for r in nekos.requests if r.status == 429]
        # The next window opens the bucket again.
        await pool.take("hug", budget=4.0)
        assert nekos.count("/hug") == 9
        assert not [r for r in nekos.requests if r.status == 429]


async def test_no_refill_on_a_slot_held_in_flight(
    make_client: ClientFactory, make_pool: PoolFactory
) -> None:
    async with FakeNekos(category_limit=2, category_window=60.0) as nekos:
        client = make_client(base_url=nekos.base_url)
        pool = make_pool(client, batch_size=1, low_watermark=0)
        await client.random("hug")  # one of 2 spent: the limiter learns 1 left
        nekos.latency = 0.5
        direct = asyncio.create_task(client.random("hug"))  # holds the last slot
        await asyncio.sleep(0.1)
        assert pool.take_nowait("hug") is None
        started = time.monotonic()
        with pytest.raises(RateLimited):
            await pool.take("hug", budget=1.0)
        assert time.monotonic() - started < 0.2  # refused at once, not after the slot's answer
        assert len(await direct) == 1
        await pool.settle()
        assert nekos.count("/hug") == 2
        assert not [r for r in nekos.requests if r.status == 429]


async def test_sustained_demand_gets_limit_times_20_per_window(
    make_client: ClientFactory, make_pool: PoolFactory
) -> None:
    limit = 10
    async with FakeNekos(category_limit=limit, category_window=60.0) as nekos:
        client = make_client(base_url=nekos.base_url)
        pool = make_pool(client)
        answered: list[str] = []
        refusals: list[RateLimited] = []

        async def user() -> None:
            while True:
                try:
                    answered.append((await pool.take("hug", budget=5.0)).url)
                except RateLimited as exc:
                    refusals.append(exc)
                    return

        await asyncio.gather(*(user() for _ in range(25)))
        await pool.settle()
        assert nekos.count("/hug") == limit
        assert len(answered) == limit * 20  # the whole budget, not half of it
        assert len(set(answered)) == len(answered)
        assert not [r for r in nekos.requests if r.status == 429]
        assert len(refusals) == 25
        assert all(55.0 < exc.retry_after <= 60.0 for exc in refusals)


async def test_warm_prefills(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    pool.warm(["hug", "pat", "neko"])
    await pool.settle()
    assert sorted(nekos.counts) == ["/hug", "/neko", "/pat"]
    stats = pool.stats()
    assert {name: row["size"] for name, row in stats["categories"].items()} == {
        "hug": 20,
        "neko": 20,
        "pat": 20,
    }
    assert stats["totals"]["size"] == 60 and stats["totals"]["refills"] == 3
    started = time.monotonic()
    await pool.take("neko", budget=0.5)
    assert time.monotonic() - started < 0.05  # answered from memory


async def test_aclose_cancels_refills(make_pool: PoolFactory, nekos: FakeNekos) -> None:
    pool = make_pool()
    nekos.hang = True
    waiter = asyncio.create_task(pool.take("hug", budget=5.0))
    await asyncio.sleep(0.05)
    await pool.aclose()
    with pytest.raises(Unavailable):
        await waiter
    with pytest.raises(Unavailable):
        await pool.take("hug", budget=1.0)
    assert pool.take_nowait("hug") is None


async def test_batch_size_validated(client: NekosClient) -> None:
    with pytest.raises(ValueError):
        Pool(client, batch_size=21)

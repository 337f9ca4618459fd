"""Fixed and sliding rate-limit windows: nekos.best does not say which it runs, and it bans by IP,
so the client must provoke (almost) no 429 under either. After a reset it probes with one
request and learns the remaining budget from that answer before sending more.

Time is scaled down: the stand-in's search window is 1 s instead of 5 s."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.nekos import Kind
from tests.fakes.nekos import ANIME, WINDOW_KINDS, FakeNekos
from tests.nekos.helpers import ClientFactory, sustained_searches

LIMIT, WINDOW = 5, 1.0
QUERY = ANIME[0]


async def test_the_sliding_stand_in_frees_one_slot_at_a_time(make_client: ClientFactory) -> None:
    async with FakeNekos(search_limit=2, search_window=0.6, window_kind="sliding") as nekos:
        client = make_client(base_url=nekos.base_url)
        await client.search(QUERY, Kind.GIF)
        first = nekos.requests[-1].time
        await asyncio.sleep(0.3)
        await client.search(QUERY, Kind.GIF)
        bucket = client.limiter.bucket("search")
        # Full: the next slot frees a window after the first request, not after the second.
        assert bucket.remaining == 0
        assert bucket.reset_at == pytest.approx(first + 0.6, abs=0.01)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("window_kind", WINDOW_KINDS)
async def test_sustained_demand_at_three_times_the_limit_provokes_no_429(
    make_client: ClientFactory, window_kind: str
) -> None:
    seconds = 4.0
    async with FakeNekos(
        search_limit=LIMIT, search_window=WINDOW, window_kind=window_kind
    ) as nekos:
        client = make_client(base_url=nekos.base_url)
        started = time.time()
        answered, refused = await sustained_searches(
            [client], rate=3 * LIMIT / WINDOW, seconds=seconds, budget=1.5
        )
        ended = time.time()
        statuses = [r.status for r in nekos.requests_to("/search")]
        limited = statuses.count(429)
        assert limited <= 0.01 * len(statuses), statuses
        # Good use of the budget: the calls that were not answered were refused by the client
        # (the budget was spent), and at least half of what the stand-in allows while demand
        # lasted went out. (A client that sends nothing cannot pass.)
        assert answered + refused == round(3 * LIMIT / WINDOW * seconds)
        assert answered == statuses.count(200)
        allowed = LIMIT * (ended - started) / WINDOW
        assert answered >= 0.5 * allowed, (answered, allowed, statuses)

"""`/search` from one member, cooldowns off, at 3x nekos.best's search budget: whether the
stand-in's window is fixed or sliding (nekos.best does not say, and it bans by IP), the bot
provokes (almost) no 429 and still serves about what the budget allows. Each member gets an
answer: results, or "rate limited, try again" when the wait would exceed the command's budget.

Time is scaled down: 5 searches per 1 s instead of 7 per 5 s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import ANIME, WINDOW_KINDS, FakeNekos
from tests.harness import running_bot
from tests.helpers import is_ephemeral

LIMIT, WINDOW, SECONDS = 5, 1.0, 3.0
ALICE = make_user(name="alice", global_name="Alice")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("window_kind", WINDOW_KINDS)
async def test_searches_at_three_times_the_budget_provoke_no_429(
    discord_api: FakeDiscord, data_dir: Path, window_kind: str
) -> None:
    async with (
        FakeNekos(search_limit=LIMIT, search_window=WINDOW, window_kind=window_kind) as nekos,
        running_bot(discord_api, nekos, data_dir),
    ):
        rate = 3 * LIMIT / WINDOW
        loop = asyncio.get_running_loop()
        started, wall = loop.time(), time.time()
        handles = []
        for i in range(round(rate * SECONDS)):
            await asyncio.sleep(max(0.0, started + i / rate - loop.time()))
            payload = discord_api.slash("search", {"query": ANIME[0], "type": 2}, user=ALICE)
            handles.append(await discord_api.interact(payload))
        messages = await asyncio.gather(*(h.wait_message(timeout=40) for h in handles))
        ended = time.time()
        statuses = [r.status for r in nekos.requests_to("/search")]
        assert statuses.count(429) <= 0.01 * len(statuses), statuses
        # Every search was answered: the public ones with results, one per request served.
        public = [m for m in messages if not is_ephemeral(m)]
        assert len(public) == statuses.count(200)
        allowed = LIMIT * (ended - wall) / WINDOW
        assert len(public) >= 0.5 * allowed, (len(public), allowed, statuses)

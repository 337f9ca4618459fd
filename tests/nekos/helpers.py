"""Names shared by the nekos.best client tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from bot.nekos import Kind, NekosClient, NekosError
from tests.fakes.nekos import ANIME

CONTACT = "https://example.test/nekocord"
VERSION = "9.9.9"

#: The ``make_client`` fixture: ``make_client(**overrides)`` builds a client on the shared
#: session, pointed at the stand-in, with short backoffs.
ClientFactory = Callable[..., NekosClient]


async def sustained_searches(
    clients: Sequence[NekosClient], *, rate: float, seconds: float, budget: float
) -> tuple[int, int]:
    """`/search` calls arriving at `rate` per second for `seconds`, taken in turn by `clients`
    (processes of one bot), each allowed `budget` seconds as a command's is: (answered, refused
    by the client: its budget ran out waiting for the rate limit, or a 429)."""
    outcomes = {"answered": 0, "refused": 0}

    async def one(client: NekosClient) -> None:
        try:
            await client.search(ANIME[0], Kind.GIF, budget=budget)
        except NekosError:
            outcomes["refused"] += 1
        else:
            outcomes["answered"] += 1

    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = []
    for i in range(round(rate * seconds)):
        await asyncio.sleep(max(0.0, started + i / rate - loop.time()))
        tasks.append(asyncio.create_task(one(clients[i % len(clients)])))
    await asyncio.gather(*tasks)
    return outcomes["answered"], outcomes["refused"]

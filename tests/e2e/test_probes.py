"""The probes on METRICS_PORT, end to end, from a running `python -m bot`:

- `/livez` answers 200 whatever the gateway or the database do (a liveness restart during a
  gateway outage would burn IDENTIFYs: Discord resets the token after 1,000 a day);
- `/readyz` (and `/healthz`, its older name) is 503 while a shard's gateway is reconnecting or
  the database does not answer, and 200 again once both are back.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, BotProcess, bot_process
from tests.pg import running_cluster

pytestmark = pytest.mark.timeout(180)
READY_TIMEOUT = 60


async def get(url: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        return response.status, (await response.text()).strip()


async def probes_url(process: BotProcess) -> str:
    """The bound METRICS_PORT=0, as the bot logs it."""
    await process.wait_for_output("/metrics", timeout=READY_TIMEOUT)
    found = re.search(r"Metrics on (http://[0-9.]+:[0-9]+)/metrics", process.output)
    assert found, process.output
    return found.group(1)


async def wait_status(url: str, status: int, process: BotProcess, timeout: float = 60) -> str:
    """Poll `url` until it answers `status`; meanwhile `/livez` must answer 200 every time."""
    base = url.rsplit("/", 1)[0]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        assert await get(f"{base}/livez") == (200, "ok")
        assert process.process is not None and process.process.returncode is None
        got, body = await get(url)
        if got == status:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{url} still {got} {body!r}:\n{process.output[-3000:]}")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("shards", [None, 2])
async def test_a_gateway_outage_makes_the_bot_unready_never_dead(
    nekos: FakeNekos, tmp_path: Path, shards: int | None
) -> None:
    env = {"METRICS_PORT": "0"} | ({"SHARD_COUNT": str(shards)} if shards else {})
    async with (
        FakeDiscord(token=TOKEN, guild_count=4, shard_count=shards or 1) as fake,
        bot_process(fake, nekos, tmp_path / "data", **env) as process,
    ):
        base = await probes_url(process)
        await process.wait_for_output("Ready as", timeout=READY_TIMEOUT)
        await wait_status(f"{base}/readyz", 200, process)
        assert await get(f"{base}/healthz") == (200, "ok")

        resumes = len(fake.resumes)
        fake.gateway_refused = True  # an outage: every reconnect attempt fails
        fake.drop_gateway()
        body = await wait_status(f"{base}/readyz", 503, process)
        assert body.startswith("gateway not ready: shard "), body
        assert (await get(f"{base}/healthz"))[0] == 503
        for _ in range(10):  # a while into the outage: unready, still alive
            assert (await get(f"{base}/readyz"))[0] == 503
            await asyncio.sleep(0.3)

        fake.gateway_refused = False
        await wait_status(f"{base}/readyz", 200, process, timeout=120)
        assert len(fake.resumes) > resumes  # the sessions were resumed, not re-identified
        code, _ = await process.terminate()
        assert code == 0, process.output[-2000:]


async def test_readyz_is_503_while_the_database_does_not_answer(
    discord_api: FakeDiscord, nekos: FakeNekos, tmp_path: Path
) -> None:
    with running_cluster() as cluster:  # its own: this test stops it
        url = cluster.create_database()
        async with bot_process(
            discord_api, nekos, tmp_path / "data", METRICS_PORT="0", DATABASE_URL=url
        ) as process:
            base = await probes_url(process)
            await process.wait_for_output("Ready as", timeout=READY_TIMEOUT)
            await wait_status(f"{base}/readyz", 200, process)

            cluster.stop()
            body = await wait_status(f"{base}/readyz", 503, process)
            assert body == "the database does not answer"
            cluster.restart()
            await wait_status(f"{base}/readyz", 200, process)
            code, _ = await process.terminate()
            assert code == 0, process.output[-2000:]

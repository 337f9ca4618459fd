"""Two `python -m bot` processes configured for the same shards (an operator's mistake), on one
PostgreSQL, against the sharded stand-in Discord: a shard runs in one process at a time.

- the second waits (one log line, retrying quietly): the stand-in sees one IDENTIFY per shard;
- with SHARD_CLAIM=exit a third exits 2 with one line, without connecting;
- after `kill -9` of the first, the second takes its shards over once the lease (kept short
  here by SHARD_LEASE_SECONDS) has expired, and answers in both shards;
- a clean stop releases the leases at once;
- a process whose lease another one took stops (exit 1, one line).

Rerun alone: `pytest tests/e2e/test_shard_claims.py` (about 30 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, BotProcess, bot_process
from tests.helpers import answered, image_url
from tests.pg import PostgresCluster

pytestmark = pytest.mark.timeout(180)

READY_TIMEOUT = 60
LEASE = "3"  # seconds: the real default is 30
WAITING = "Waiting: shards 0,1 are run by another process"


@pytest.fixture
async def sharded_api() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guild_count=4, shard_count=2) as server:
        yield server


def shards_env(pg_url: str, **extra: str) -> dict[str, str]:
    return {"SHARD_COUNT": "2", "DATABASE_URL": pg_url, "SHARD_LEASE_SECONDS": LEASE, **extra}


async def hug_everywhere(fake: FakeDiscord) -> None:
    for shard in (0, 1):
        record = await fake.interact(
            fake.slash("hug", {"user": make_user()}, guild_id=fake.guilds_of(shard)[0])
        )
        assert record.shard == shard
        assert image_url(await answered(record, timeout=20)), record.describe()


def identifies(fake: FakeDiscord) -> list[int | None]:
    return sorted((shard for shard, _ in fake.identify_times), key=lambda s: s or 0)


async def test_a_shard_runs_in_one_process_at_a_time(
    pg_cluster: PostgresCluster,
    pg_url: str,
    sharded_api: FakeDiscord,
    nekos: FakeNekos,
    tmp_path: Path,
) -> None:
    fake = sharded_api
    env = shards_env(pg_url)
    async with bot_process(fake, nekos, tmp_path / "first", **env) as first:
        await first.wait_for_output("[shard 1] Shard 1 ready", timeout=READY_TIMEOUT)
        await fake.wait_connected(timeout=30)
        assert identifies(fake) == [0, 1]

        async with bot_process(
            fake, nekos, tmp_path / "second", **env, LOG_LEVEL="DEBUG"
        ) as second:
            await second.wait_for_output(WAITING, timeout=READY_TIMEOUT)
            # Held for longer than a lease: the first renews its leases.
            await wait_for_count(second, "still held: trying again", 4)
            assert second.output.count(WAITING) == 1  # one line a minute
            assert identifies(fake) == [0, 1]  # the second never connected a shard
            assert "Registered" not in second.output

            # Told to exit instead: code 2, one line, nothing connected.
            async with bot_process(
                fake, nekos, tmp_path / "third", **env, SHARD_CLAIM="exit"
            ) as third:
                assert await third.wait(timeout=60) == 2, third.output
                output = third.output
            errors = [line for line in output.splitlines() if line.startswith("nekocord:")]
            assert errors == [
                "nekocord: shards 0,1 are run by another process (SHARD_CLAIM=exit)"
            ], output
            assert "Traceback" not in output and TOKEN not in output
            assert identifies(fake) == [0, 1]
            await hug_everywhere(fake)

            # kill -9 of the first: the second takes over once its lease expired.
            assert await first.kill() == -9
            await second.wait_for_output("Claimed shards 0,1", timeout=30)
            await second.wait_for_output("[shard 1] Shard 1 ready", timeout=READY_TIMEOUT)
            await fake.wait_until(lambda: fake.ready_shards == {0, 1}, timeout=30)
            assert identifies(fake) == [0, 0, 1, 1]
            await hug_everywhere(fake)

            # A clean stop releases the leases: the first, started again, takes over.
            first.env["LOG_LEVEL"] = "DEBUG"
            await first.start()
            await wait_for_count(first, "still held: trying again", 1)
            code, _ = await second.terminate()
            assert code == 0, second.output[-3000:]
            await first.wait_for_output("Claimed shards 0,1", timeout=30)
            await first.wait_for_output("[shard 1] Shard 1 ready", timeout=READY_TIMEOUT)
            await fake.wait_until(lambda: fake.ready_shards == {0, 1}, timeout=30)
            await hug_everywhere(fake)
            code, _ = await first.terminate()
            assert code == 0, first.output[-3000:]
    leases = pg_cluster.psql("SELECT count(*) FROM coord_shard_leases", pg_url.rsplit("/", 1)[1])
    assert leases.strip() == "0"


async def wait_for_count(process: BotProcess, text: str, count: int, timeout: float = 60) -> None:
    """Until `text` is in the process's output `count` times."""
    deadline = time.monotonic() + timeout
    while process.output.count(text) < count:
        assert process.process is not None
        if process.process.returncode is not None:
            raise AssertionError(f"exited {process.process.returncode}:\n{process.output}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not seen {count} times:\n{process.output[-3000:]}")
        await asyncio.sleep(0.05)


async def test_a_process_that_lost_its_leases_stops(
    pg_cluster: PostgresCluster,
    pg_url: str,
    sharded_api: FakeDiscord,
    nekos: FakeNekos,
    tmp_path: Path,
) -> None:
    """Another process took a lease (as after a partition longer than the lease): the holder
    stops its shards and exits 1 with one line, rather than run a second copy."""
    fake = sharded_api
    async with bot_process(fake, nekos, tmp_path / "holder", **shards_env(pg_url)) as holder:
        await holder.wait_for_output("[shard 1] Shard 1 ready", timeout=READY_TIMEOUT)
        database = pg_url.rsplit("/", 1)[1]
        pg_cluster.psql(
            "UPDATE coord_shard_leases SET holder = 'another' WHERE shard = 1", database
        )
        assert await holder.wait(timeout=60) == 1, holder.output
        output = holder.output
    errors = [line for line in output.splitlines() if line.startswith("nekocord:")]
    assert errors == ["nekocord: stopped: the leases of shards 0,1 could not be renewed"], output
    assert "Traceback" not in output
    await fake.wait_until(lambda: not fake.ready_shards, timeout=30)

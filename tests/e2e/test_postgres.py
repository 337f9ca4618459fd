"""The bot on PostgreSQL end to end: start-up waits for a server that is not up yet (then exit
1), rejected credentials and unknown databases exit 2 at once, never showing the password; at
run time a server restart loses no acknowledged count and every action is still answered."""

from __future__ import annotations

import asyncio
import copy
import re
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.test_startup import forwarder, free_port
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, bot_process, running_bot
from tests.helpers import answered, image_url, text_of
from tests.pg import SUPERUSER, PostgresCluster

ATTEMPT = re.compile(r"The database is not reachable \(.+\): attempt (\d+), next in (\d+) s")
PASSWORD = "s3cret-Passw0rd"


async def run_to_exit(tmp_path: Path, timeout: float = 30, **env: str) -> tuple[int, str]:
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with bot_process(discord_api, nekos, tmp_path / "data", **env) as proc:
            code = await proc.wait(timeout=timeout)
            return code, proc.output


async def test_unreachable_postgres_is_retried_then_exit_1_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{free_port()}/nekocord"
    code, output = await run_to_exit(tmp_path, DATABASE_URL=url, STARTUP_RETRY_SECONDS="5")
    assert code == 1, output
    assert "Traceback" not in output and PASSWORD not in output
    attempts = [(int(n), int(d)) for n, d in ATTEMPT.findall(output)]
    assert attempts == [(1, 1), (2, 2)], output  # 1 + 2 s waited; 4 more would pass 5 s
    last = output.strip().splitlines()[-1]
    assert last.startswith("nekocord: The database could not be reached for 5 s (3 attempts)")
    assert "127.0.0.1" in last, last


@pytest.mark.parametrize(
    ("user", "database"), [("nobody", "postgres"), (SUPERUSER, "no_such_database")]
)
async def test_rejected_user_or_unknown_database_exit_2_at_once(
    tmp_path: Path, pg_cluster: PostgresCluster, user: str, database: str
) -> None:
    url = f"postgresql://{user}:{PASSWORD}@127.0.0.1:{pg_cluster.port}/{database}"
    code, output = await run_to_exit(tmp_path, DATABASE_URL=url, STARTUP_RETRY_SECONDS="30")
    assert code == 2, output
    assert "Traceback" not in output and PASSWORD not in output
    assert ATTEMPT.search(output) is None, output  # not retried
    last = output.strip().splitlines()[-1]
    assert last.startswith("nekocord: DATABASE_URL: PostgreSQL at 127.0.0.1:"), last
    assert "refused the connection" in last or "does not exist" in last, last


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/db",
        f"postgres://u:{PASSWORD}@/db",
    ],
)
async def test_malformed_postgres_url_is_a_config_error(tmp_path: Path, url: str) -> None:
    code, output = await run_to_exit(tmp_path, DATABASE_URL=url)
    assert code == 2, output
    assert PASSWORD not in output
    assert len(output.strip().splitlines()) == 1, output
    assert output.startswith("nekocord: configuration error: DATABASE_URL:"), output


async def test_postgres_coming_up_late_is_waited_for(
    tmp_path: Path, pg_cluster: PostgresCluster, pg_url: str
) -> None:
    port = free_port()
    late_url = pg_url.replace(f":{pg_cluster.port}/", f":{port}/")
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        env = {"DATABASE_URL": late_url, "STARTUP_RETRY_SECONDS": "60"}
        async with bot_process(discord_api, nekos, tmp_path / "data", **env) as proc:
            await proc.wait_for_output("attempt 2, next in 2 s", timeout=15)
            async with forwarder(port, pg_cluster.port):
                await proc.wait_for_output("Ready as", timeout=20)
                hug = discord_api.slash("hug", {"user": make_user()})
                answer = await answered(await discord_api.interact(hug))
                assert image_url(answer), answer
                assert "has received 1 hug" in text_of(answer), text_of(answer)
    assert "Traceback" not in proc.output
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT SUM(count) FROM received_totals") == 1
    finally:
        await conn.close()


@pytest.mark.timeout(120)
async def test_actions_are_answered_while_postgres_restarts(
    tmp_path: Path, pg_cluster: PostgresCluster, pg_url: str
) -> None:
    """Every hug is answered; those answered with a count are counted exactly once."""
    alice, bob = make_user(name="alice"), make_user(name="bob", global_name="Bob")
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with running_bot(discord_api, nekos, tmp_path / "data", DATABASE_URL=pg_url):

            async def hug() -> str:
                payload = discord_api.slash("hug", {"user": bob}, user=alice)
                return text_of(await (await discord_api.interact(payload)).wait_message())

            answers = [await hug() for _ in range(5)]
            restart = asyncio.create_task(asyncio.to_thread(pg_cluster.restart))
            while not restart.done():
                answers.append(await hug())
            await restart
            answers += [await hug() for _ in range(5)]
    counted = [a for a in answers if "has received" in a]
    print(f"{len(answers)} hugs, {len(answers) - 10} during the restart, {len(counted)} counted")
    assert all("Bob" in a for a in answers), answers  # every action answered, as a hug
    conn = await asyncpg.connect(pg_url)
    try:
        total = await conn.fetchval("SELECT SUM(count) FROM received_totals")
        markers = await conn.fetchval("SELECT COUNT(*) FROM processed_actions")
    finally:
        await conn.close()
    # The store retries through the restart; counts acknowledged are each in the database once.
    assert len(counted) >= 10
    assert total == markers >= len(counted)
    shown = sorted(int(re.search(r"has received (\d+) hug", a).group(1)) for a in counted)  # type: ignore[union-attr]
    assert len(set(shown)) == len(shown) and shown[-1] == total, shown


@pytest.mark.timeout(120)
async def test_a_replay_delivered_to_another_process_is_neither_counted_nor_answered(
    tmp_path: Path, pg_url: str
) -> None:
    """After a resume or a shard moving, the gateway may deliver an interaction the first
    process already answered to a second one: the database's marker makes it drop it. (Two
    processes of one bot run different shards: a shard runs in one process at a time.)"""
    bob = make_user(name="bob", global_name="Bob")
    shards = {"DATABASE_URL": pg_url, "SHARD_COUNT": "2"}
    async with (
        FakeDiscord(token=TOKEN, guild_count=4, shard_count=2) as fake,
        FakeNekos() as nekos,
        bot_process(fake, nekos, tmp_path / "one", SHARD_IDS="0", **shards) as first,
        bot_process(fake, nekos, tmp_path / "two", SHARD_IDS="1", **shards) as second,
    ):
        await first.wait_for_output("Ready as", timeout=60)
        await second.wait_for_output("Ready as", timeout=60)
        original = fake.slash("hug", {"user": bob}, guild_id=fake.guilds_of(0)[0])
        answer = await answered(await fake.interact(original))
        assert "has received 1 hug" in text_of(answer), text_of(answer)
        record = await fake.interact(copy.deepcopy(original), shard=1)
        await second.wait_for_output("already answered by another process")
        own = fake.slash("hug", {"user": bob}, guild_id=fake.guilds_of(1)[0])
        fresh = await answered(await fake.interact(own))
        assert "has received" in text_of(fresh)  # the second process answers what is its own
    assert not record.acknowledged and record.original is None and not record.followups
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM processed_actions") == 2
    finally:
        await conn.close()

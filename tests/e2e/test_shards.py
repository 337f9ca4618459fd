"""Shards end to end: SHARD_COUNT in one process against a sharded stand-in (every shard's
connection, its guilds and interactions, IDENTIFYs 5 s apart, one registration, health and
logs per shard), and bots owning some of the shards sharing one coordinator (only the owner of
shard 0 registers; the others follow a new command set)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.coordination import LocalCoordinator
from bot.metrics import Metrics
from bot.shards import IDENTIFY_WINDOW
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, RunningBot, bot_processes, running_bot
from tests.helpers import answered, image_url, text_of

# Two IDENTIFYs, the second one Discord's 5 s after the first: well past the default timeout.
pytestmark = pytest.mark.timeout(120)
READY_TIMEOUT = 60


@pytest.fixture
async def sharded_api() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guild_count=6, shard_count=2) as server:
        yield server


def assert_paced(fake: FakeDiscord) -> None:
    """IDENTIFYs at least Discord's window apart (max_concurrency 1: one bucket)."""
    times = sorted(at for _, at in fake.identify_times)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps and all(gap >= IDENTIFY_WINDOW for gap in gaps), gaps


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def metrics_url(running: RunningBot) -> str:
    metrics = running.bot.tree.on_finished.__self__  # type: ignore[union-attr]
    assert isinstance(metrics, Metrics) and metrics.port
    return f"http://127.0.0.1:{metrics.port}"


async def hug_in(fake: FakeDiscord, guild_id: int) -> Any:
    return await fake.interact(fake.slash("hug", {"user": make_user()}, guild_id=guild_id))


async def test_one_process_runs_every_shard(
    sharded_api: FakeDiscord, nekos: FakeNekos, data_dir: Path
) -> None:
    fake = sharded_api
    async with running_bot(
        fake, nekos, data_dir, ready_timeout=READY_TIMEOUT, SHARD_COUNT="2", METRICS_PORT="0"
    ) as running:
        await fake.wait_connected()
        assert fake.ready_shards == {0, 1}
        assert sorted(shard for shard, _ in fake.identify_times) == [0, 1]
        assert_paced(fake)
        assert fake.command_puts == 1
        assert sorted(g.id for g in running.bot.guilds) == sorted(fake.guild_ids)

        # Each guild's interaction arrives on its shard's connection and is answered.
        for shard in (0, 1):
            for guild_id in fake.guilds_of(shard):
                record = await hug_in(fake, guild_id)
                assert record.shard == shard
                assert image_url(await answered(record))

        url = metrics_url(running)
        assert await get(f"{url}/healthz") == (200, "ok\n")
        _, text = await get(f"{url}/metrics")
        for shard in (0, 1):
            assert f'nekocord_guilds{{shard="{shard}"}} 3.0' in text
            hugs = f'nekocord_commands_total{{command="hug",outcome="ok",shard="{shard}"}} 3.0'
            assert hugs in text, text
        # A shard that drops makes the process unhealthy until it is back.
        shard_one = running.bot.get_shard(1)  # type: ignore[attr-defined]
        await shard_one.disconnect()
        assert (await get(f"{url}/healthz"))[0] == 503
        await shard_one.connect()
        await fake.wait_until(lambda: fake.ready_shards == {0, 1}, timeout=30)
        assert (await get(f"{url}/healthz"))[0] == 200
        assert_paced(fake)  # the new IDENTIFY waited for its turn too
        assert await running.stop() == 0


@pytest.fixture
async def unsharded_then_sharded() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guild_count=2) as server:
        yield server


async def test_sharded_restart_keeps_the_registration(
    unsharded_then_sharded: FakeDiscord, nekos: FakeNekos, data_dir: Path
) -> None:
    fake = unsharded_then_sharded
    async with running_bot(fake, nekos, data_dir):
        pass
    assert fake.command_puts == 1
    assert [p.name for p in data_dir.glob("commands-*.sha256")] == [
        f"commands-{fake.application_id}-global.sha256"
    ]
    async with running_bot(fake, nekos, data_dir, ready_timeout=READY_TIMEOUT, SHARD_COUNT="1"):
        pass
    assert fake.command_puts == 1


async def test_only_the_owner_of_shard_0_registers_and_the_others_follow(
    sharded_api: FakeDiscord, nekos: FakeNekos, tmp_path: Path
) -> None:
    fake = sharded_api
    shared = LocalCoordinator(tmp_path / "shared")
    (tmp_path / "shared").mkdir()

    def poll_often(bot: Any) -> None:
        bot.commands_sync.follow_interval = 0.2

    def owning(*shards: int) -> dict[str, Any]:
        return {
            "overrides": {"shard_ids": shards},
            "coordinator": shared,
            "on_bot": poll_often,
            "ready_timeout": READY_TIMEOUT,
            "SHARD_COUNT": "2",
        }

    async with (
        running_bot(fake, nekos, tmp_path / "one", **owning(1)) as one,
        running_bot(fake, nekos, tmp_path / "zero", **owning(0)) as zero,
    ):
        await fake.wait_connected()
        assert_paced(fake)
        assert fake.command_puts == 1
        assert not one.bot.commands_sync.registers and zero.bot.commands_sync.registers
        assert [g.shard_id for g in one.bot.guilds] == [1, 1, 1]

        # A new category: the owner of shard 0 registers it, the other process follows.
        nekos.add_category("glomp")
        await zero.bot.catalog.refresh()
        assert fake.command_puts == 2
        await fake.wait_until(lambda: "glomp" in one.bot.commands_sync.names, timeout=10)
        record = await fake.interact(
            fake.slash("glomp", {"user": make_user()}, guild_id=fake.guilds_of(1)[0])
        )
        assert record.shard == 1 and "glomp" in text_of(await answered(record))
        assert fake.command_puts == 2


async def test_json_log_lines_carry_the_shard(
    sharded_api: FakeDiscord, nekos: FakeNekos, data_dir: Path
) -> None:
    fake = sharded_api
    async with bot_processes(fake, nekos, data_dir, [None], LOG_FORMAT="json", SHARD_COUNT="2") as (
        process,
    ):
        await process.wait_for_output("Shard 1 ready", timeout=READY_TIMEOUT)
        # A redelivered interaction is logged from the task that handles it.
        record = await hug_in(fake, fake.guilds_of(1)[0])
        await answered(record)
        await fake.dispatch("INTERACTION_CREATE", record.payload)
        await process.wait_for_output("Ignored a redelivered interaction")
        lines = [json.loads(line) for line in process.output.splitlines() if line.startswith("{")]

    def shard_of(pattern: str) -> set[Any]:
        found = {e["shard"] for e in lines if re.search(pattern, e["message"])}
        assert found, f"no line matches {pattern!r}"
        return found

    assert shard_of(r"^Shard 0 ready") == {0}
    assert shard_of(r"^Shard 1 ready") == {1}
    assert shard_of(r"^Shard ID 1 has connected") == {1}  # discord.py's own line
    assert shard_of(r"^Ignored a redelivered interaction") == {1}
    assert shard_of(r"^Ready as") == {None}  # about the whole process


async def test_max_concurrency_is_read_from_discord(nekos: FakeNekos, data_dir: Path) -> None:
    """discord.py never asks `GET /gateway/bot` when given `shard_count`: the bot does, for its
    IDENTIFY buckets, and assumes one bucket when Discord does not answer."""
    async with FakeDiscord(token=TOKEN, guild_count=2, shard_count=2, max_concurrency=2) as fake:
        env: dict[str, Any] = {"ready_timeout": READY_TIMEOUT, "SHARD_COUNT": "2"}
        async with running_bot(fake, nekos, data_dir, **env) as running:
            assert running.bot.max_concurrency == 2
        assert fake.requests_to("GET", r"^/gateway/bot$")
        fake.fail("GET", r"^/gateway/bot$", status=403)
        fake.identify_times.clear()
        async with running_bot(fake, nekos, data_dir, **env) as running:
            assert running.bot.max_concurrency == 1
            assert_paced(fake)  # one bucket: one IDENTIFY per window


async def test_a_killed_process_comes_back(
    sharded_api: FakeDiscord, nekos: FakeNekos, data_dir: Path
) -> None:
    """`kill -9` (no clean shutdown), then the same process again: every shard back, the
    commands not registered again. (The harness the multi-process tests use.)"""
    fake = sharded_api
    async with bot_processes(fake, nekos, data_dir, ["0-1"], SHARD_COUNT="2") as (process,):
        await process.wait_for_output("[shard 1] Shard 1 ready", timeout=READY_TIMEOUT)
        await fake.wait_connected()
        assert await process.kill() == -9
        await fake.wait_until(lambda: not fake.ready_shards, timeout=10)
        await process.start()
        await process.wait_for_output("[shard 1] Shard 1 ready", timeout=READY_TIMEOUT)
        await fake.wait_connected()
        assert len(fake.identify_times) == 4
        record = await hug_in(fake, fake.guilds_of(1)[0])
        assert image_url(await answered(record))
        assert fake.command_puts == 1
        code, _ = await process.terminate()
        assert code == 0

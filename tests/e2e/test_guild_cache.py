"""The lean guild cache end to end (bot/guild_cache.py), on realistic servers: 2 shards in one
process against a stand-in sending servers of 40 channels, 25 roles, threads, emojis.

What is kept of a server is its id; joins, removals and outages still work, and so does every
command with nothing cached at all.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import guild_cache
from bot.metrics import Metrics
from bot.shards import CURRENT_SHARD
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.discord.guilds import GuildShape
from tests.fakes.nekos import FakeNekos
from tests.harness import ROOT, TOKEN, RunningBot, running_bot
from tests.helpers import LogCapture, buttons, image_url, is_ephemeral, text_of

pytestmark = pytest.mark.timeout(120)

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
SHARDS = 2
GUILDS = 6


@pytest.fixture
async def realistic_api() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(
        token=TOKEN,
        guild_count=GUILDS,
        shard_count=SHARDS,
        max_concurrency=SHARDS,  # both IDENTIFY at once: no 5 s wait
        guild_shape=GuildShape(),
    ) as fake:
        yield fake


class ShardLogCapture(LogCapture):
    """Records each line with the shard whose events the logging task handles."""

    def emit(self, record: logging.LogRecord) -> None:
        record.handled_on = CURRENT_SHARD.get()
        super().emit(record)


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = ShardLogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)


@pytest.fixture
async def sharded_bot(
    realistic_api: FakeDiscord, nekos: FakeNekos, data_dir: Path, logs: LogCapture
) -> AsyncIterator[RunningBot]:
    async with running_bot(
        realistic_api,
        nekos,
        data_dir,
        ready_timeout=60,
        SHARD_COUNT=str(SHARDS),
        METRICS_PORT="0",
    ) as running:
        yield running


def cached_objects(running: RunningBot) -> dict[str, int]:
    """What discord.py holds of the servers besides their ids."""
    guilds = running.bot.guilds
    state: Any = running.bot._connection
    return {
        "channels": sum(len(g.channels) for g in guilds),
        "threads": sum(len(g.threads) for g in guilds),
        "roles": sum(len(g.roles) for g in guilds),
        "members": sum(len(g.members) for g in guilds),
        "emojis": len(state._emojis),
        "stickers": len(state._stickers),
    }


NOTHING = dict.fromkeys(("channels", "threads", "roles", "members", "emojis", "stickers"), 0)


async def guild_gauges(running: RunningBot) -> dict[int, float]:
    metrics = running.bot.tree.on_finished.__self__  # type: ignore[union-attr]
    assert isinstance(metrics, Metrics) and metrics.port
    url = f"http://127.0.0.1:{metrics.port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    return {
        int(shard): float(value)
        for shard, value in re.findall(r'^nekocord_guilds\{shard="(\d+)"\} (\S+)$', text, re.M)
    }


def expected_gauges(fake: FakeDiscord, present: set[int]) -> dict[int, float]:
    return {shard: float(len(set(fake.guilds_of(shard)) & present)) for shard in range(SHARDS)}


async def hug(fake: FakeDiscord, guild_id: int, **context: Any) -> dict[str, Any]:
    payload = fake.slash("hug", {"user": BOB}, user=ALICE, guild_id=guild_id, **context)
    handle = await fake.interact(payload)
    return await handle.wait_message(timeout=15)


async def pair_count(running: RunningBot, guild_id: int) -> int:
    counts = await running.bot.store.counts(
        guild_id=guild_id, action="hug", actor_id=int(ALICE["id"]), target_id=int(BOB["id"])
    )
    return counts.pair


def removals(logs: LogCapture) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.getMessage().startswith("Removed from server")]


async def test_every_server_is_known_and_nothing_else_is_kept(
    sharded_bot: RunningBot, realistic_api: FakeDiscord
) -> None:
    fake = realistic_api
    sent = fake.guild_create_event(fake.guild_ids[0])
    assert len(sent["channels"]) == 40 and len(sent["roles"]) == 25 and sent["threads"]
    await fake.wait_until(lambda: len(sharded_bot.bot.guilds) == GUILDS, timeout=30)
    assert sorted(g.id for g in sharded_bot.bot.guilds) == sorted(fake.guild_ids)
    assert cached_objects(sharded_bot) == NOTHING

    # What the guilds intent keeps sending adds nothing back either.
    guild_id = fake.guild_ids[0]
    full = fake.guild_create_event(guild_id)
    channel = full["channels"][1]
    events = [
        ("CHANNEL_CREATE", {**channel, "id": str(int(channel["id"]) + 7777)}),
        ("CHANNEL_UPDATE", channel),
        ("THREAD_CREATE", {**full["threads"][0], "id": str(int(channel["id"]) + 8888)}),
        (
            "THREAD_LIST_SYNC",
            {"guild_id": str(guild_id), "threads": full["threads"], "members": []},
        ),
        ("GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": full["roles"][3]}),
        ("GUILD_UPDATE", {**full, "channels": None}),
    ]
    for event, data in events:
        assert await fake.dispatch(event, data) == 1
    # A hug after them on the same connection: by its answer, the events were processed.
    assert image_url(await hug(fake, guild_id))
    assert cached_objects(sharded_bot) == {**NOTHING, "members": 1}  # discord.py's own `me`
    assert len(sharded_bot.bot.guilds) == GUILDS


async def test_joins_removals_and_outages_keep_the_counts_exact(
    sharded_bot: RunningBot, realistic_api: FakeDiscord, logs: LogCapture
) -> None:
    fake, running = realistic_api, sharded_bot
    present = set(fake.guild_ids)
    assert await guild_gauges(running) == expected_gauges(fake, present)
    left, stays = fake.guilds_of(1)[0], fake.guilds_of(0)[0]
    for guild_id in (left, stays):
        assert image_url(await hug(fake, guild_id))
        assert await pair_count(running, guild_id) == 1

    # An outage: the server is still there, and so is its data.
    await fake.dispatch("GUILD_DELETE", {"id": str(left), "unavailable": True})
    await fake.wait_until(lambda: running.bot.get_guild(left).unavailable, timeout=10)  # type: ignore[union-attr]
    assert await guild_gauges(running) == expected_gauges(fake, present)
    assert await pair_count(running, left) == 1 and not removals(logs)
    # ... and it comes back.
    await fake.dispatch("GUILD_CREATE", fake.guild_create_event(left))
    await fake.wait_until(lambda: not running.bot.get_guild(left).unavailable, timeout=10)  # type: ignore[union-attr]
    assert await guild_gauges(running) == expected_gauges(fake, present)

    # A join, on shard 1.
    joined = await fake.join_guild(shard=1)
    present.add(joined)
    await fake.wait_until(lambda: running.bot.get_guild(joined) is not None, timeout=10)
    assert await guild_gauges(running) == expected_gauges(fake, present)
    assert cached_objects(running)["channels"] == 0

    # A removal: the data goes, once, on the shard that owns the server; a replay of the
    # event (a RESUME delivers it again) deletes nothing more.
    for _ in range(2):
        assert await fake.dispatch("GUILD_DELETE", {"id": str(left)}) == 1
    present.discard(left)
    await fake.wait_until(lambda: removals(logs), timeout=10)
    assert image_url(await hug(fake, stays))  # after both deletes on the connections
    assert image_url(await hug(fake, joined))
    assert [(r.getMessage(), r.handled_on) for r in removals(logs)] == [  # type: ignore[attr-defined]
        (f"Removed from server {left}: its data was deleted", fake.shard_of(left))
    ]
    assert await pair_count(running, left) == 0
    assert await pair_count(running, stays) == 2
    assert await guild_gauges(running) == expected_gauges(fake, present)
    assert running.bot.get_guild(left) is None


async def test_a_server_left_while_a_shard_was_away_is_no_longer_counted(
    sharded_bot: RunningBot, realistic_api: FakeDiscord
) -> None:
    fake, running = realistic_api, sharded_bot
    gone = fake.guilds_of(1)[0]
    fake.guild_ids.remove(gone)  # removed from it while the session is lost: no GUILD_DELETE
    del fake.guilds[gone]
    identifies = len(fake.identifies)
    await fake.close_gateway(4009)  # session timed out: RESUME fails, both shards IDENTIFY
    await fake.wait_until(lambda: len(fake.identifies) >= identifies + SHARDS, timeout=30)
    await fake.wait_connected(timeout=30)
    await fake.wait_until(lambda: running.bot.get_guild(gone) is None, timeout=30)
    present = set(fake.guild_ids)
    await fake.wait_until(lambda: {g.id for g in running.bot.guilds} == present, timeout=30)
    assert await guild_gauges(running) == expected_gauges(fake, present)


async def test_commands_work_with_nothing_cached(
    sharded_bot: RunningBot, realistic_api: FakeDiscord
) -> None:
    """Every server forgotten by discord.py: what the bot reads comes from the interaction."""
    fake, running = realistic_api, sharded_bot
    state: Any = running.bot._connection
    state._guilds.clear()
    guild_id = fake.guilds_of(1)[0]
    home = fake.channel_ids[guild_id]
    other = home + 1000

    def send(payload: dict[str, Any]) -> Any:
        return fake.interact(payload)

    async def answer(payload: dict[str, Any]) -> dict[str, Any]:
        return await (await send(payload)).wait_message(timeout=15)

    # /config channels: answers only there, and in a thread of that channel.
    done = await answer(
        fake.slash("config", {"channel": str(other)}, subcommand="channels", guild_id=guild_id)
    )
    assert f"<#{other}>" in text_of(done)
    refused = await answer(fake.slash("hug", {"user": BOB}, user=ALICE, guild_id=guild_id))
    assert is_ephemeral(refused) and f"<#{other}>" in text_of(refused)
    thread = await hug(fake, guild_id, channel_id=other + 1, parent_id=other)
    assert not is_ephemeral(thread) and image_url(thread)
    message = await hug(fake, guild_id, channel_id=other)
    assert not is_ephemeral(message)

    # The buttons on that answer: return (by the target), reroll (by the actor).
    back = next(b for b in buttons(message) if b["label"] == "Hug back")
    press = await send(fake.component(back["custom_id"], message, user=BOB))
    await press.wait_for(lambda r: r.followups, timeout=15)
    assert "Bob" in text_of(press.followups[0])
    reroll = next(b for b in buttons(message) if b["label"] == "Another")
    first_url = image_url(message)
    press = await send(fake.component(reroll["custom_id"], message, user=ALICE))
    await press.wait_callback(timeout=15)
    await fake.wait_until(lambda: image_url(fake.messages[message["id"]]) != first_url)

    # /help, /stats, the context menus.
    help_page = await answer(fake.slash("help", guild_id=guild_id, channel_id=other))
    assert "/hug" in text_of(help_page)
    stats = await answer(fake.slash("stats", user=ALICE, guild_id=guild_id, channel_id=other))
    assert "hug" in text_of(stats).lower()
    pat = await answer(fake.user_command("Pat", BOB, user=ALICE, guild_id=guild_id))
    assert image_url(pat) or is_ephemeral(pat)
    credit = await answer(fake.message_command("Image credit", message, guild_id=guild_id))
    assert is_ephemeral(credit)

    # A member's own install, in a server the bot is not in.
    elsewhere = guild_id + 12345
    installed = await answer(
        fake.slash("hug", {"user": BOB}, user=ALICE, guild_id=elsewhere, user_install=True)
    )
    assert not is_ephemeral(installed) and image_url(installed)
    assert not state._guilds  # nothing read made discord.py cache a server


# What reading discord.py's guild cache looks like; bot/ and cogs/ read the interaction instead
# (`interaction.channel` is built from its payload, `parent_id` read with a fallback).
CACHE_READS = re.compile(
    r"interaction\.guild\b(?!_)|\.get_(?:channel|role|thread|member|guild|emoji|sticker)\("
    r"|\bguild\.(?!id\b|shard_id\b)\w+|\.(?:emojis|stickers|private_channels)\b"
)


def test_nothing_in_bot_or_cogs_reads_the_guild_cache() -> None:
    found = []
    for path in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("cogs/**/*.py")]):
        if path.name == "guild_cache.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if CACHE_READS.search(code):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "\n".join(found)


def test_lean_is_the_default() -> None:
    assert guild_cache.LEAN is True
    assert "GUILD_CREATE" not in guild_cache.IGNORED_EVENTS


async def test_the_full_cache_keeps_everything(
    realistic_api: FakeDiscord, nekos: FakeNekos, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's `nekocord (full cache)` (LEAN off) is discord.py's cache: the lean
    tests above can fail."""
    monkeypatch.setattr(guild_cache, "LEAN", False)
    async with running_bot(
        realistic_api, nekos, data_dir, ready_timeout=60, SHARD_COUNT=str(SHARDS)
    ) as running:
        await realistic_api.wait_until(lambda: len(running.bot.guilds) == GUILDS, timeout=30)
        await asyncio.sleep(0)
        cached = cached_objects(running)
        assert cached["channels"] == 40 * GUILDS and cached["roles"] == 25 * GUILDS

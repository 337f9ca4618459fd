"""Concurrent `/config` changes of one server all hold, on both backends: each is one atomic
update of the stored settings, never a rewrite of what the command had read (which lost all but
some of six concurrent `/config disable` on PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.store import GuildSettings, open_store
from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos
from tests.harness import running_bot
from tests.helpers import is_ephemeral

DISABLED = ("hug", "pat", "kiss", "poke", "slap", "wave", "bonk", "gif")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_concurrent_changes_of_every_kind_all_hold(
    request: pytest.FixtureRequest,
    backend: str,
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    data_dir: Path,
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgres" else str(data_dir / "n.db")
    first = [
        discord_api.slash("config", {"category": name}, subcommand="disable") for name in DISABLED
    ]
    first.append(discord_api.slash("config", {"count": 2, "seconds": 30}, subcommand="cooldown"))
    first.append(discord_api.slash("config", {"value": "off"}, subcommand="pings"))
    first.append(discord_api.slash("config", {"value": "off"}, subcommand="leaderboard"))
    # Then, at once again: two names back on, two more off, the cooldown off, pings back on
    # (the leaderboard stays off).
    second = [
        discord_api.slash("config", {"category": name}, subcommand="enable")
        for name in ("hug", "gif")
    ]
    second += [
        discord_api.slash("config", {"category": name}, subcommand="disable")
        for name in ("cuddle", "image")
    ]
    second.append(discord_api.slash("config", {"count": 0, "seconds": 5}, subcommand="cooldown"))
    second.append(discord_api.slash("config", {"value": "on"}, subcommand="pings"))
    guild = int(first[0]["guild_id"])
    async with running_bot(discord_api, nekos, data_dir, DATABASE_URL=url) as bot:
        for wave, expected in (
            (
                first,
                GuildSettings(
                    disabled=frozenset(DISABLED), cooldown=(2, 30), pings=False, leaderboard=False
                ),
            ),
            (
                second,
                GuildSettings(
                    disabled=frozenset(DISABLED) - {"hug", "gif"} | {"cuddle", "image"},
                    cooldown=(0, 5),
                    pings=True,
                    leaderboard=False,
                ),
            ),
        ):
            handles = await asyncio.gather(*(discord_api.interact(i) for i in wave))
            answers = await asyncio.gather(*(h.wait_message() for h in handles))
            assert all(is_ephemeral(answer) for answer in answers)
            assert await bot.bot.store.guild_settings(guild) == expected
    async with await open_store(url) as store:  # what the database holds
        assert await store.guild_settings(guild) == expected

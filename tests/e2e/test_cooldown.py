"""Per-member cooldowns end to end: refused before the pool or nekos.best is asked, not
counted, ephemeral with a number of seconds, and a refusal consumes no slot."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bot.custom_ids import ReturnId
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot, running_bot
from tests.helpers import buttons, is_ephemeral, text_of

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
SLOW_DOWN = re.compile(r"Slow down — try again in (\d+) s\.")


async def send(discord_api: FakeDiscord, interaction: dict[str, Any]) -> dict[str, Any]:
    handle = await discord_api.interact(interaction)
    return await handle.wait_message()


def hug(discord_api: FakeDiscord, user: dict, target: dict) -> dict[str, Any]:
    return discord_api.slash("hug", {"user": target}, user=user)


def pool_takes(bot: RunningBot) -> int:
    totals = bot.bot.pool.stats()["totals"]
    return int(totals["hits"] + totals["misses"])


async def pair_count(bot: RunningBot, discord_api: FakeDiscord) -> int:
    counts = await bot.bot.store.counts(
        guild_id=discord_api.guild_ids[0],
        action="hug",
        actor_id=int(ALICE["id"]),
        target_id=int(BOB["id"]),
    )
    return counts.pair


async def test_over_the_limit_is_refused_before_any_cost(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir, COOLDOWN="2/20") as bot:
        for _ in range(2):
            assert not is_ephemeral(await send(discord_api, hug(discord_api, ALICE, BOB)))
        takes = pool_takes(bot)
        refused = await send(discord_api, hug(discord_api, ALICE, BOB))
        assert is_ephemeral(refused)
        match = SLOW_DOWN.fullmatch(text_of(refused))
        assert match is not None, text_of(refused)
        assert 15 <= int(match[1]) <= 20
        assert pool_takes(bot) == takes  # the pool was not touched
        assert await pair_count(bot, discord_api) == 2  # and nothing was counted
        # The other paths that fetch share the member's window: /image, /source, /search.
        for interaction in (
            discord_api.slash("neko", user=ALICE),
            discord_api.slash("source", {"url": f"{nekos.base_url}/neko/abc.png"}, user=ALICE),
            discord_api.slash("search", {"query": "Senko"}, user=ALICE),
            discord_api.user_command("Hug", BOB, user=ALICE),
        ):
            assert SLOW_DOWN.fullmatch(text_of(await send(discord_api, interaction)))
        # Another member is not affected.
        assert not is_ephemeral(await send(discord_api, hug(discord_api, BOB, ALICE)))


async def test_a_refused_attempt_consumes_no_slot(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir, COOLDOWN="2/2"):
        started = asyncio.get_running_loop().time()
        for _ in range(2):
            assert not is_ephemeral(await send(discord_api, hug(discord_api, ALICE, BOB)))
        await asyncio.sleep(1.0)
        for _ in range(3):  # had these counted, they would block until ~3 s
            assert SLOW_DOWN.fullmatch(
                text_of(await send(discord_api, hug(discord_api, ALICE, BOB)))
            )
        await asyncio.sleep(max(0.0, started + 2.3 - asyncio.get_running_loop().time()))
        for _ in range(2):
            assert not is_ephemeral(await send(discord_api, hug(discord_api, ALICE, BOB)))


async def test_search_has_its_own_limit_on_top(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir, COOLDOWN="10/20", SEARCH_COOLDOWN="1/15"):
        search = {"query": "Senko", "type": 2}
        first = await send(discord_api, discord_api.slash("search", search, user=ALICE))
        assert not SLOW_DOWN.fullmatch(text_of(first))
        searches = len(nekos.requests_to("/search"))
        assert searches == 1
        second = await send(discord_api, discord_api.slash("search", search, user=ALICE))
        assert SLOW_DOWN.fullmatch(text_of(second))
        assert len(nekos.requests_to("/search")) == searches  # nekos.best was not asked
        assert not is_ephemeral(await send(discord_api, hug(discord_api, ALICE, BOB)))
        other = await send(discord_api, discord_api.slash("search", search, user=BOB))
        assert not SLOW_DOWN.fullmatch(text_of(other))
        assert len(nekos.requests_to("/search")) == 2


async def test_button_presses_count_and_are_refused_too(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir, COOLDOWN="1/20") as bot:
        message = await send(discord_api, hug(discord_api, ALICE, BOB))
        assert not is_ephemeral(await send(discord_api, hug(discord_api, BOB, ALICE)))
        back = next(b for b in buttons(message) if b["label"] == "Hug back")
        takes = pool_takes(bot)
        press = await send(discord_api, discord_api.component(back["custom_id"], message, user=BOB))
        assert is_ephemeral(press) and SLOW_DOWN.fullmatch(text_of(press))
        assert pool_takes(bot) == takes
        action = ReturnId.from_match(re.fullmatch(ReturnId.TEMPLATE, back["custom_id"]))
        assert not await bot.bot.store.is_returned(
            action_id=action.action_id, target_id=action.target_id
        )


async def test_zero_turns_the_limit_off(
    discord_api: FakeDiscord, nekos: FakeNekos, data_dir
) -> None:
    async with running_bot(discord_api, nekos, data_dir, COOLDOWN="0", SEARCH_COOLDOWN="0"):
        for _ in range(15):
            assert not is_ephemeral(await send(discord_api, hug(discord_api, ALICE, BOB)))

"""The social layer end to end: wording cases, return and reroll buttons, counters, opt-out,
context menus, privacy."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, bot_process, running_bot
from tests.helpers import WINDOW, assert_no_pings_except, buttons, is_ephemeral, text_of

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
CAROL = make_user(name="carol", global_name="Carol")


def button(message: dict, label_end: str) -> dict:
    return next(b for b in buttons(message) if (b.get("label") or "").endswith(label_end))


async def act(discord_api: FakeDiscord, name: str, user: dict, target: dict | None = None):
    options = {"user": target} if target is not None else None
    handle = await discord_api.interact(discord_api.slash(name, options, user=user))
    return handle, await handle.wait_message()


@pytest.mark.parametrize("category", ["hug", "pat", "blush", "sleep", "bonk"])
async def test_four_target_cases_read_differently(bot, discord_api, category) -> None:
    me = make_user(id=int(discord_api.bot_user["id"]), name="nekocord", bot=True)
    texts = []
    for target in (BOB, ALICE, me, None):
        _, message = await act(discord_api, category, ALICE, target)
        texts.append(message["embeds"][0]["description"].split("\n")[0])
    assert len(set(texts)) == 4, texts
    other, _self, _bot, none = texts
    assert "Bob" in other and "Alice" in other
    assert "Bob" not in none and "Alice" in none


async def test_return_button_by_target_bystander_and_twice(bot, discord_api) -> None:
    _, message = await act(discord_api, "hug", ALICE, BOB)
    back = button(message, "back")
    assert back["label"] == "Hug back"

    stranger = await discord_api.interact(
        discord_api.component(back["custom_id"], message, user=CAROL)
    )
    answer = await stranger.wait_message()
    assert is_ephemeral(answer) and f"<@{BOB['id']}>" in text_of(answer)
    assert answer["mentions"] == []

    press = await discord_api.interact(discord_api.component(back["custom_id"], message, user=BOB))
    await press.wait_for(lambda r: r.followups)
    returned = press.followups[0]
    assert returned["content"] == f"<@{ALICE['id']}>"
    assert_no_pings_except(returned, {ALICE["id"]})
    assert "Bob" in returned["embeds"][0]["description"]
    assert "Alice has received 1 hug" in returned["embeds"][0]["description"]
    updated = discord_api.messages[message["id"]]
    pressed = next(b for b in buttons(updated) if b.get("custom_id") == back["custom_id"])
    assert pressed["disabled"] is True

    again = await discord_api.interact(discord_api.component(back["custom_id"], message, user=BOB))
    answer = await again.wait_message()
    assert is_ephemeral(answer)
    assert len(again.followups) + len(again.callbacks) == 1  # no second return posted


async def test_double_click_returns_once(bot, discord_api) -> None:
    _, message = await act(discord_api, "pat", ALICE, BOB)
    back = button(message, "back")
    presses = await asyncio.gather(
        *(
            discord_api.interact(discord_api.component(back["custom_id"], message, user=BOB))
            for _ in range(5)
        )
    )
    for press in presses:
        await press.wait_for(lambda r: r.callbacks)
    await asyncio.sleep(0.3)
    posted = [f for p in presses for f in p.followups if not is_ephemeral(f)]
    assert len(posted) == 1
    counts = await bot.bot.store.counts(
        guild_id=discord_api.guild_ids[0],
        action="pat",
        actor_id=int(BOB["id"]),
        target_id=int(ALICE["id"]),
    )
    assert counts.pair == 1


async def test_reroll_by_invoker_and_by_someone_else(bot, discord_api) -> None:
    _, message = await act(discord_api, "hug", ALICE, BOB)
    reroll = button(message, "Another")
    first_url = message["embeds"][0]["image"]["url"]

    other = await discord_api.interact(
        discord_api.component(reroll["custom_id"], message, user=BOB)
    )
    assert is_ephemeral(await other.wait_message())

    press = await discord_api.interact(
        discord_api.component(reroll["custom_id"], message, user=ALICE)
    )
    await press.wait_callback()
    edited = discord_api.messages[message["id"]]
    assert edited["embeds"][0]["image"]["url"] != first_url
    assert edited["embeds"][0]["description"] == message["embeds"][0]["description"]
    counts = await bot.bot.store.counts(
        guild_id=discord_api.guild_ids[0],
        action="hug",
        actor_id=int(ALICE["id"]),
        target_id=int(BOB["id"]),
    )
    assert counts.pair == 1  # a reroll is not counted again


async def test_exact_counts_after_100_concurrent_actions(bot, discord_api) -> None:
    handles = await asyncio.gather(
        *(
            discord_api.interact(discord_api.slash("hug", {"user": BOB}, user=ALICE))
            for _ in range(100)
        )
    )
    messages = await asyncio.gather(*(h.wait_message(timeout=20) for h in handles))
    seen = sorted(int(m["embeds"][0]["description"].split("— ")[1].split(" ")[0]) for m in messages)
    assert seen == list(range(1, 101))
    assert all(h.response_time < WINDOW for h in handles)
    counts = await bot.bot.store.counts(
        guild_id=discord_api.guild_ids[0],
        action="hug",
        actor_id=int(ALICE["id"]),
        target_id=int(BOB["id"]),
    )
    assert counts.pair == 100 and counts.received_total == 100


async def test_stats_opt_out_forget_and_context_menu(bot, discord_api) -> None:
    await act(discord_api, "hug", ALICE, BOB)
    await act(discord_api, "hug", CAROL, BOB)
    handle = await discord_api.interact(discord_api.user_command("Pat", BOB, user=ALICE))
    menu = await handle.wait_message()
    assert menu["content"] == f"<@{BOB['id']}>" and "pat" in text_of(menu).lower()

    stats = await discord_api.interact(discord_api.slash("stats", {"user": BOB}, user=ALICE))
    text = text_of(await stats.wait_message())
    assert "hug" in text and "pat" in text and f"<@{ALICE['id']}>" in text

    optout = await discord_api.interact(discord_api.slash("optout", user=BOB))
    assert is_ephemeral(await optout.wait_message())
    refused = await discord_api.interact(discord_api.slash("hug", {"user": BOB}, user=CAROL))
    answer = await refused.wait_message()
    assert is_ephemeral(answer) and "Bob" in text_of(answer)
    counts = await bot.bot.store.counts(
        guild_id=discord_api.guild_ids[0],
        action="hug",
        actor_id=int(CAROL["id"]),
        target_id=int(BOB["id"]),
    )
    assert counts.pair == 1  # the refused action was not counted

    optin = await discord_api.interact(discord_api.slash("optin", user=BOB))
    await optin.wait_message()
    _, message = await act(discord_api, "hug", CAROL, BOB)
    assert not is_ephemeral(message)

    forget = await discord_api.interact(discord_api.slash("forgetme", user=BOB))
    assert is_ephemeral(await forget.wait_message())
    stats = await bot.bot.store.user_stats(
        guild_id=discord_api.guild_ids[0], user_id=int(BOB["id"])
    )
    assert stats.actions == []


async def test_guild_removal_deletes_its_data(bot, discord_api) -> None:
    await act(discord_api, "hug", ALICE, BOB)
    guild_id = discord_api.guild_ids[0]
    await discord_api.dispatch("GUILD_DELETE", {"id": str(guild_id)})

    async def gone() -> bool:
        stats = await bot.bot.store.user_stats(guild_id=guild_id, user_id=int(BOB["id"]))
        return stats.actions == []

    for _ in range(50):
        if await gone():
            break
        await asyncio.sleep(0.05)
    assert await gone()


async def test_counts_and_return_button_survive_a_process_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with FakeDiscord(token=TOKEN) as discord_api:
        async with FakeNekos() as nekos:
            async with bot_process(discord_api, nekos, data) as proc:
                await proc.wait_for_output("Ready as", timeout=30)
                _, message = await act(discord_api, "hug", ALICE, BOB)
                _, second = await act(discord_api, "hug", ALICE, BOB)
                assert "2 from Alice" in second["embeds"][0]["description"]
                code, _ = await proc.terminate()
                assert code == 0
            connections = len(discord_api.identifies)
            async with bot_process(discord_api, nekos, data) as proc:
                await proc.wait_for_output("Ready as", timeout=30)
                assert len(discord_api.identifies) == connections + 1
                back = button(message, "back")
                press = await discord_api.interact(
                    discord_api.component(back["custom_id"], message, user=BOB)
                )
                await press.wait_for(lambda r: r.followups, timeout=10)
                assert "Alice" in press.followups[0]["embeds"][0]["description"]
                again = await discord_api.interact(
                    discord_api.component(back["custom_id"], message, user=BOB)
                )
                assert is_ephemeral(await again.wait_message())
                _, third = await act(discord_api, "hug", ALICE, BOB)
                assert "3 from Alice" in third["embeds"][0]["description"]
                code, _ = await proc.terminate()
                assert code == 0
    db = sqlite3.connect(data / "nekocord.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


async def test_unknown_category_in_action_and_forged_buttons(bot, discord_api) -> None:
    handle = await discord_api.interact(
        discord_api.slash("action", {"category": "definitely-not-real", "user": BOB})
    )
    assert is_ephemeral(await handle.wait_message())
    _, message = await act(discord_api, "hug", ALICE, BOB)
    forged = "nc:r:nosuchcat:1:2:3"
    message["components"][0]["components"][0]["custom_id"] = forged
    press = await discord_api.interact(
        discord_api.component(forged, message, user=make_user(id=3**1, name="x"))
    )
    answer = await press.wait_message()
    assert is_ephemeral(answer)


async def test_forgetme_keeps_the_opt_out_only_when_asked(bot, discord_api) -> None:
    for keep in (True, False):
        optout = await discord_api.interact(discord_api.slash("optout", user=BOB))
        await optout.wait_message()
        options = {"keep_optout": keep}
        forget = await discord_api.interact(discord_api.slash("forgetme", options, user=BOB))
        await forget.wait_message()
        assert await bot.bot.store.is_opted_out(int(BOB["id"])) is keep


async def test_context_menu_actions_are_configurable(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir, CONTEXT_MENU_ACTIONS="wave,highfive"):
        menus = {c["name"] for c in discord_api.commands[None] if c.get("type") == 2}
        assert menus == {"Wave", "High five"}
        handle = await discord_api.interact(discord_api.user_command("High five", BOB, user=ALICE))
        message = await handle.wait_message()
        assert message["content"] == f"<@{BOB['id']}>"

"""Refusing one action end to end (issue 18 item 2): `/optout category:<name>` blocks that
action at you on every path (the command, `/action`, the Apps menu, return and reroll buttons),
privately for the sender and before the pool or nekos.best is asked; others still reach you;
`/optin category:` lifts it; at most 100; and on PostgreSQL a block made through one process is
honoured by another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.store.blocks import MAX_BLOCKS
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, RunningBot, bot_process
from tests.helpers import answered, buttons, is_ephemeral, text_of

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
REFUSED = "Bob has opted out of actions."  # today's opt-out wording, unchanged


async def send(discord_api: FakeDiscord, interaction: dict[str, Any]) -> dict[str, Any]:
    handle = await discord_api.interact(interaction)
    return await handle.wait_message()


def pool_takes(bot: RunningBot) -> int:
    totals = bot.bot.pool.stats()["totals"]
    return int(totals["hits"] + totals["misses"])


def button(message: dict, label_end: str) -> dict:
    return next(b for b in buttons(message) if (b.get("label") or "").endswith(label_end))


async def optout(discord_api: FakeDiscord, user: dict, category: str | None = None) -> str:
    options = {"category": category} if category is not None else None
    answer = await send(discord_api, discord_api.slash("optout", options, user=user))
    assert is_ephemeral(answer)
    return text_of(answer)


async def optin(discord_api: FakeDiscord, user: dict, category: str | None = None) -> str:
    options = {"category": category} if category is not None else None
    answer = await send(discord_api, discord_api.slash("optin", options, user=user))
    assert is_ephemeral(answer)
    return text_of(answer)


async def assert_refused(bot: RunningBot, discord_api: FakeDiscord, payload: dict) -> None:
    takes = pool_takes(bot)
    answer = await send(discord_api, payload)
    assert is_ephemeral(answer) and text_of(answer) == REFUSED, text_of(answer)
    assert pool_takes(bot) == takes  # refused before a GIF was taken (or fetched)


async def test_a_blocked_action_is_refused_and_others_still_reach(bot, discord_api) -> None:
    said = await optout(discord_api, BOB, "hug")
    assert said.startswith("Blocked: nobody can use `hug` on you any more") and "`hug`" in said
    await assert_refused(bot, discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
    action = discord_api.slash("action", {"category": "hug", "user": BOB}, user=ALICE)
    await assert_refused(bot, discord_api, action)
    await assert_refused(bot, discord_api, discord_api.user_command("Hug", BOB, user=ALICE))
    counts = await bot.bot.store.counts(
        guild_id=discord_api.guild_ids[0], action="hug", actor_id=int(ALICE["id"]),
        target_id=int(BOB["id"]),
    )  # fmt: skip
    assert counts.pair == 0  # nothing refused was counted
    # Other actions still reach Bob, and Bob may still hug others.
    pat = await send(discord_api, discord_api.slash("pat", {"user": BOB}, user=ALICE))
    assert not is_ephemeral(pat) and "Bob" in text_of(pat)
    menu = await send(discord_api, discord_api.user_command("Pat", BOB, user=ALICE))
    assert not is_ephemeral(menu)
    assert not is_ephemeral(
        await send(discord_api, discord_api.slash("hug", {"user": ALICE}, user=BOB))
    )

    # No change: the answer says what is blocked now.
    assert await optout(discord_api, BOB, "hug") == "You already block `hug`.\nYou block: `hug`."
    assert await optin(discord_api, BOB, "hug") == (
        "Unblocked: `hug` can reach you again.\nYou block no single action."
    )
    assert await optin(discord_api, BOB, "hug") == (
        "You don't block `hug`, so there's nothing to change.\nYou block no single action."
    )
    hug = await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
    assert not is_ephemeral(hug)


async def test_the_gif_kind_blocks_every_action_and_plain_optout_keeps_its_meaning(
    bot, discord_api
) -> None:
    assert "`gif`" in await optout(discord_api, BOB, "gif")
    await assert_refused(bot, discord_api, discord_api.slash("pat", {"user": BOB}, user=ALICE))
    await optin(discord_api, BOB, "gif")
    # Plain /optout: everything, as before; again, it answers what is blocked now.
    await optout(discord_api, BOB, "kiss")
    assert (await optout(discord_api, BOB)).startswith("You opted out of actions")
    assert await optout(discord_api, BOB) == (
        "You've already opted out. Use `/optin` to come back.\nYou block: `kiss`."
    )
    await assert_refused(bot, discord_api, discord_api.slash("pat", {"user": BOB}, user=ALICE))
    assert (await optin(discord_api, BOB)).startswith("You're back in!")
    assert not is_ephemeral(
        await send(discord_api, discord_api.slash("pat", {"user": BOB}, user=ALICE))
    )
    await assert_refused(bot, discord_api, discord_api.slash("kiss", {"user": BOB}, user=ALICE))
    # An unknown name is refused plainly, and so is an image category (nobody is its target).
    for name in ("no-such-thing", "neko"):
        answer = await send(discord_api, discord_api.slash("optout", {"category": name}, user=BOB))
        assert is_ephemeral(answer) and "Blocked" not in text_of(answer), text_of(answer)
    assert await bot.bot.store.blocks_of(int(BOB["id"])) == {"kiss"}


async def test_return_and_reroll_of_a_blocked_action_are_refused(bot, discord_api) -> None:
    hugged_alice = await send(discord_api, discord_api.slash("hug", {"user": ALICE}, user=BOB))
    hugged_bob = await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
    await optout(discord_api, BOB, "hug")

    # Alice's "Hug back" would hug Bob.
    back = button(hugged_alice, "back")
    takes = pool_takes(bot)
    press = await discord_api.interact(
        discord_api.component(back["custom_id"], hugged_alice, user=ALICE)
    )
    answer = await press.wait_message()
    assert is_ephemeral(answer) and text_of(answer) == f"<@{BOB['id']}> has opted out of actions."
    assert not press.followups and pool_takes(bot) == takes

    # Alice's "Another" on her hug at Bob would send Bob a new hug.
    reroll = button(hugged_bob, "Another")
    press = await discord_api.interact(
        discord_api.component(reroll["custom_id"], hugged_bob, user=ALICE)
    )
    answer = await press.wait_message()
    assert is_ephemeral(answer) and "has opted out of actions" in text_of(answer)
    assert pool_takes(bot) == takes
    assert discord_api.messages[hugged_bob["id"]]["embeds"] == hugged_bob["embeds"]  # not edited

    # Lifted: both work again.
    await optin(discord_api, BOB, "hug")
    press = await discord_api.interact(
        discord_api.component(reroll["custom_id"], hugged_bob, user=ALICE)
    )
    callback = await press.wait_callback()
    assert callback["type"] == 7  # the message updated with a GIF, not a refusal


async def test_at_most_100_blocks_and_mydata_lists_them(bot, discord_api) -> None:
    bob = int(BOB["id"])
    for n in range(MAX_BLOCKS - 1):
        await bot.bot.store.set_block(user_id=bob, action=f"old{n}", blocked=True)
    assert "`pat`" in await optout(discord_api, BOB, "pat")  # the 100th
    refused = await send(discord_api, discord_api.slash("optout", {"category": "hug"}, user=BOB))
    assert is_ephemeral(refused)
    assert text_of(refused) == (
        "You already block 100 actions: unblock one first with `/optin category:`."
    )
    assert len(await bot.bot.store.blocks_of(bob)) == MAX_BLOCKS
    assert not is_ephemeral(
        await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
    )

    handle = await discord_api.interact(discord_api.slash("mydata", user=BOB))
    await handle.wait_message()
    (upload,) = [f for cb in handle.callbacks for f in cb.files] or [
        f for r in discord_api.requests if r.path.startswith("/webhooks/") for f in r.files
    ]
    blocks = json.loads(upload.data)["blocks"]
    assert (
        len(blocks) == MAX_BLOCKS
        and {"action": "pat"}.items() <= next(b for b in blocks if b["action"] == "pat").items()
    )
    # /forgetme removes them.
    await send(discord_api, discord_api.slash("forgetme", user=BOB))
    assert await bot.bot.store.blocks_of(bob) == frozenset()


async def test_autocomplete_offers_the_kind_and_action_categories(bot, discord_api) -> None:
    request = discord_api.autocomplete("optout", "category", {"category": "g"}, user=BOB)
    handle = await discord_api.interact(request)
    await handle.wait_for(lambda r: r.choices is not None)
    names = [c["value"] for c in handle.choices or []]
    assert names[0] == "gif" and "neko" not in names, names


@pytest.mark.timeout(150)
async def test_a_block_made_through_one_process_is_honoured_by_another(
    tmp_path: Path, pg_url: str
) -> None:
    shards = {"DATABASE_URL": pg_url, "SHARD_COUNT": "2"}
    async with (
        FakeDiscord(token=TOKEN, guild_count=4, shard_count=2) as fake,
        FakeNekos() as nekos,
        bot_process(fake, nekos, tmp_path / "one", SHARD_IDS="0", **shards) as first,
        bot_process(fake, nekos, tmp_path / "two", SHARD_IDS="1", **shards) as second,
    ):
        await first.wait_for_output("Ready as", timeout=60)
        await second.wait_for_output("Ready as", timeout=60)
        here, there = fake.guilds_of(0)[0], fake.guilds_of(1)[0]
        # Both processes have read the (empty) blocks: a hug is answered in the second.
        before = await answered(
            await fake.interact(fake.slash("hug", {"user": BOB}, user=ALICE, guild_id=there))
        )
        assert not is_ephemeral(before)
        block = fake.slash("optout", {"category": "hug"}, user=BOB, guild_id=here)
        assert text_of(await answered(await fake.interact(block))).startswith("Blocked:")
        # The second process learnt it from the database's change counter (the write waited
        # for its own process's read only: the other's comes with its notification).
        for _ in range(200):
            hug = fake.slash("hug", {"user": BOB}, user=ALICE, guild_id=there)
            answer = await answered(await fake.interact(hug))
            if is_ephemeral(answer):
                break
        assert is_ephemeral(answer) and text_of(answer) == REFUSED, text_of(answer)
        pat = fake.slash("pat", {"user": BOB}, user=ALICE, guild_id=there)
        assert not is_ephemeral(await answered(await fake.interact(pat)))

"""`/leaderboard` end to end: a few actions, then the board through the real discord.py client;
ranks, counts and mentions that ping nobody, the three boards and a category, pages turned by
the invoker only, opted-out members absent, periods read from per-day totals, and the server
setting that turns it off; and /mydata, which reads the same tables. The store's part runs on
both backends."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.custom_ids import PageId
from bot.store import Store
from bot.store.base import DAY
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot, running_bot
from tests.helpers import buttons, db_path, is_ephemeral, text_of

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
CAROL = make_user(name="carol", global_name="Carol")
DAVE = make_user(name="dave", global_name="Dave")


def at(user: dict) -> str:
    return f"<@{user['id']}>"


@pytest.fixture(params=["sqlite", "postgres"])
async def board_bot(
    request: pytest.FixtureRequest, discord_api: FakeDiscord, nekos: FakeNekos, data_dir: Path
) -> AsyncIterator[RunningBot]:
    env = {"DATABASE_URL": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    async with running_bot(discord_api, nekos, data_dir, **env) as running:
        yield running


async def send(discord_api: FakeDiscord, interaction: dict[str, Any]) -> Any:
    handle = await discord_api.interact(interaction)
    await handle.wait_message()
    return handle


async def hug(discord_api: FakeDiscord, actor: dict, *targets: dict, action: str = "hug"):
    names = ["user", "user2", "user3", "user4", "user5"]
    options = dict(zip(names, targets, strict=False))
    handle = await send(discord_api, discord_api.slash(action, options, user=actor))
    assert not is_ephemeral(handle.visible_message())


async def board(discord_api: FakeDiscord, user: dict, **options: str) -> tuple[Any, dict]:
    handle = await send(discord_api, discord_api.slash("leaderboard", options or None, user=user))
    return handle, handle.visible_message()


def description(message: dict) -> list[str]:
    return (message["embeds"][0].get("description") or "").split("\n")


async def test_ranks_counts_and_mentions_that_ping_nobody(board_bot, discord_api) -> None:
    await hug(discord_api, ALICE, BOB)
    await hug(discord_api, ALICE, BOB, CAROL)
    await hug(discord_api, CAROL, BOB)
    await hug(discord_api, BOB, ALICE, action="pat")
    handle, message = await board(discord_api, DAVE)
    assert not is_ephemeral(message)
    assert description(message) == [f"**#1** {at(BOB)} · 3", f"**#2** {at(ALICE)} · 1",
                                    f"**#3** {at(CAROL)} · 1"]  # fmt: skip
    assert message["embeds"][0]["title"] == "Most received"
    assert message["mentions"] == []
    assert handle.callbacks[0].body["data"]["allowed_mentions"]["parse"] == []
    assert buttons(message) == []  # one page: nothing to turn
    _, given = await board(discord_api, DAVE, board="given")
    assert description(given) == [f"**#1** {at(ALICE)} · 3", f"**#2** {at(BOB)} · 1",
                                  f"**#3** {at(CAROL)} · 1"]  # fmt: skip
    _, pairs = await board(discord_api, DAVE, board="pairs", category="hug")
    assert description(pairs) == [
        f"**#1** {at(ALICE)} → {at(BOB)} · 2",
        f"**#2** {at(ALICE)} → {at(CAROL)} · 1",
        f"**#3** {at(CAROL)} → {at(BOB)} · 1",
    ]
    _, pats = await board(discord_api, DAVE, category="pat")
    assert description(pats) == [f"**#1** {at(ALICE)} · 1"]
    assert "pat" in pats["embeds"][0]["footer"]["text"]
    _, empty = await board(discord_api, DAVE, category="kiss")
    assert description(empty) == ["Nobody is on this board yet — send a few actions first."]


async def test_opted_out_members_are_absent_and_take_no_rank(board_bot, discord_api) -> None:
    await hug(discord_api, ALICE, BOB)
    await hug(discord_api, ALICE, BOB)
    await hug(discord_api, ALICE, CAROL)
    await send(discord_api, discord_api.slash("optout", user=BOB))
    _, message = await board(discord_api, ALICE)
    assert description(message) == [f"**#1** {at(CAROL)} · 1"]
    _, pairs = await board(discord_api, ALICE, board="pairs")
    assert at(BOB) not in text_of(pairs)
    await send(discord_api, discord_api.slash("forgetme", user=CAROL))
    for period in ("all", "month", "week"):
        _, gone = await board(discord_api, ALICE, period=period)
        assert at(CAROL) not in text_of(gone), period


async def backdate(store: Store, guild_id: int, actor: int, target: int, days: int, n: int) -> None:
    """`n` hugs `days` ago, as record_action would have written them then."""
    day = int(time.time()) // DAY - days
    rows = [
        ("action_counts (guild_id, actor_id, target_id, action, count)", (guild_id, actor, target)),
        ("received_totals (guild_id, target_id, action, count)", (guild_id, target)),
        ("daily_counts (guild_id, day, actor_id, target_id, action, count)",
         (guild_id, day, actor, target)),
    ]  # fmt: skip
    if isinstance(store, SqliteStore):

        def write(conn: Any) -> None:
            with conn:
                for table, key in rows:
                    marks = ", ".join("?" * (len(key) + 2))
                    conn.execute(f"INSERT INTO {table} VALUES ({marks})", (*key, "hug", n))

        await store.run_on_connection(write)
    else:
        assert isinstance(store, PostgresStore)

        async def write_pg(conn: Any) -> None:
            for table, key in rows:
                marks = ", ".join(f"${i}" for i in range(1, len(key) + 3))
                await conn.execute(f"INSERT INTO {table} VALUES ({marks})", *key, "hug", n)

        await store.run_in_transaction(write_pg)


async def test_periods_count_the_last_30_and_7_days(board_bot, discord_api) -> None:
    guild_id = discord_api.guild_ids[0]
    store = board_bot.bot.store
    await backdate(store, guild_id, int(ALICE["id"]), int(CAROL["id"]), days=40, n=5)
    await backdate(store, guild_id, int(ALICE["id"]), int(DAVE["id"]), days=10, n=3)
    await hug(discord_api, ALICE, BOB)
    _, everything = await board(discord_api, ALICE)
    assert description(everything) == [f"**#1** {at(CAROL)} · 5", f"**#2** {at(DAVE)} · 3",
                                       f"**#3** {at(BOB)} · 1"]  # fmt: skip
    _, month = await board(discord_api, ALICE, period="month")
    assert description(month) == [f"**#1** {at(DAVE)} · 3", f"**#2** {at(BOB)} · 1"]
    assert "last 30 days" in month["embeds"][0]["footer"]["text"]
    _, week = await board(discord_api, ALICE, period="week", board="given")
    assert description(week) == [f"**#1** {at(ALICE)} · 1"]


async def test_pages_are_turned_by_the_invoker_only(bot, discord_api) -> None:
    members = [make_user(name=f"m{i}", global_name=f"M{i}") for i in range(25)]
    for i, member in enumerate(members):  # member i has received 25 - i hugs today
        await backdate(bot.bot.store, discord_api.guild_ids[0], 1, int(member["id"]), 0, 25 - i)
    last = members[-1]  # 1 hug: rank 25
    _, first = await board(discord_api, last)
    lines = description(first)
    assert lines[0] == f"**#1** {at(members[0])} · 25"
    assert lines[9] == f"**#10** {at(members[9])} · 16"
    assert lines[-1] == "You: #25, 1"
    assert "ranks 1–10 of 25" in first["embeds"][0]["footer"]["text"]
    previous, following = buttons(first)
    assert (previous["label"], previous["disabled"]) == ("Previous", True)
    assert following["label"] == "Next" and not following.get("disabled")

    refused = await discord_api.interact(
        discord_api.component(following["custom_id"], first, user=BOB)
    )
    answer = await refused.wait_message()
    assert is_ephemeral(answer) and at(last) in text_of(answer)
    assert discord_api.messages[first["id"]]["embeds"] == first["embeds"]

    press = await discord_api.interact(
        discord_api.component(following["custom_id"], first, user=last)
    )
    await press.wait_for(lambda r: r.callbacks)
    second = discord_api.messages[first["id"]]
    assert description(second)[0] == f"**#11** {at(members[10])} · 15"
    assert description(second)[-1] == "You: #25, 1"
    press = await discord_api.interact(
        discord_api.component(buttons(second)[1]["custom_id"], second, user=last)
    )
    await press.wait_for(lambda r: r.callbacks)
    third = discord_api.messages[first["id"]]
    assert description(third)[-1] == f"**#25** {at(last)} · 1"  # on the page: no extra line
    assert "You:" not in text_of(third)
    assert buttons(third)[1]["disabled"] is True
    press = await discord_api.interact(
        discord_api.component(buttons(third)[0]["custom_id"], third, user=last)
    )
    await press.wait_for(lambda r: r.callbacks)
    assert description(discord_api.messages[first["id"]])[0].startswith("**#11**")


async def test_a_server_can_turn_the_leaderboard_off(bot, discord_api) -> None:
    await hug(discord_api, ALICE, BOB)
    _, before = await board(discord_api, ALICE)
    assert not is_ephemeral(before)
    config = discord_api.slash("config", {"value": "off"}, subcommand="leaderboard", user=ALICE)
    done = (await send(discord_api, config)).visible_message()
    assert is_ephemeral(done) and "off" in text_of(done)
    shown = (
        await send(discord_api, discord_api.slash("config", subcommand="show", user=ALICE))
    ).visible_message()
    assert "Leaderboard: `/leaderboard` is off" in text_of(shown)
    _, refused = await board(discord_api, ALICE)
    assert is_ephemeral(refused)
    assert text_of(refused) == "The leaderboard is turned off in this server."
    config = discord_api.slash("config", {"value": "on"}, subcommand="leaderboard", user=ALICE)
    await send(discord_api, config)
    _, after = await board(discord_api, ALICE)
    assert not is_ephemeral(after) and at(BOB) in text_of(after)


async def test_registration_and_help(bot, discord_api) -> None:
    registered = {c["name"]: c for c in discord_api.commands[None]}["leaderboard"]
    assert registered["contexts"] == [0]
    assert registered["integration_types"] == [0]
    options = {o["name"]: o for o in registered["options"]}
    assert options["category"]["autocomplete"] is True
    assert [c["value"] for c in options["board"]["choices"]] == ["received", "given", "pairs"]
    assert [c["value"] for c in options["period"]["choices"]] == ["all", "month", "week"]
    handle = await discord_api.interact(
        discord_api.autocomplete("leaderboard", "category", {"category": "hu"})
    )
    choices = await handle.wait_for(lambda r: r.choices)
    assert "hug" in [c["value"] for c in choices]
    help_page = (await send(discord_api, discord_api.slash("help", user=ALICE))).visible_message()
    assert "/leaderboard" in text_of(help_page)


async def test_pages_expire_and_follow_the_setting(bot, discord_api) -> None:
    members = [make_user(name=f"e{i}", global_name=f"E{i}") for i in range(12)]
    for i, member in enumerate(members):
        await backdate(bot.bot.store, discord_api.guild_ids[0], 1, int(member["id"]), 0, 20 - i)
    _, message = await board(discord_api, ALICE)
    following = buttons(message)[1]
    page = PageId.from_match(re.fullmatch(PageId.TEMPLATE, following["custom_id"]))
    # The same board, asked 16 minutes ago (its origin's snowflake dates it).
    then = datetime.now(UTC) - timedelta(minutes=16)
    old = dataclasses.replace(page, origin_id=discord.utils.time_snowflake(then))
    following["custom_id"] = old.custom_id
    press = await discord_api.interact(discord_api.component(old.custom_id, message, user=ALICE))
    answer = await press.wait_message()
    assert is_ephemeral(answer)
    assert text_of(answer) == "These pages have expired: use `/leaderboard` again."

    _, fresh = await board(discord_api, ALICE)
    config = discord_api.slash("config", {"value": "off"}, subcommand="leaderboard", user=ALICE)
    await send(discord_api, config)
    turn = discord_api.component(buttons(fresh)[1]["custom_id"], fresh, user=ALICE)
    answer = await (await discord_api.interact(turn)).wait_message()
    assert is_ephemeral(answer)
    assert text_of(answer) == "The leaderboard is turned off in this server."
    assert discord_api.messages[fresh["id"]]["embeds"] == fresh["embeds"]


async def test_mydata_is_a_private_file_of_everything_kept(board_bot, discord_api) -> None:
    await hug(discord_api, ALICE, BOB)
    await hug(discord_api, BOB, ALICE)
    await hug(discord_api, CAROL, ALICE, action="pat")
    await send(discord_api, discord_api.slash("optout", user=ALICE))
    handle = await send(discord_api, discord_api.slash("mydata", user=ALICE))
    answer = handle.visible_message()
    assert is_ephemeral(answer)
    assert answer["content"].startswith(
        "Attached: everything I keep about you. Actions given: 1, received: 2, in servers: 1;"
    )
    assert "You have opted out of actions." in answer["content"]
    (upload,) = [f for cb in handle.callbacks for f in cb.files] or [
        f for r in discord_api.requests if r.path.startswith("/webhooks/") for f in r.files
    ]
    assert upload.filename == "nekocord-my-data.json"
    document = json.loads(upload.data)
    guild = str(discord_api.guild_ids[0])
    assert document["user_id"] == ALICE["id"]
    counts = [(c["guild_id"], c["action"], c["given"], c["received"]) for c in document["counts"]]
    assert counts == [(guild, "hug", 1, 1), (guild, "pat", 0, 1)]
    assert len(document["day_totals"]) == 2
    pending = {(p["actor_id"], p["action"]) for p in document["pending_returns"]}
    assert pending == {(BOB["id"], "hug"), (CAROL["id"], "pat")}
    assert document["opted_out_at"] is not None
    again = (await send(discord_api, discord_api.slash("mydata", user=ALICE))).visible_message()
    assert is_ephemeral(again)
    assert text_of(again).startswith("You can ask for your data once a minute")
    other = (await send(discord_api, discord_api.slash("mydata", user=DAVE))).visible_message()
    assert other["content"].startswith("Attached: everything I keep about you. Actions given: 0,")


async def test_mydata_that_could_not_be_read_may_be_asked_again_at_once(
    bot, discord_api, data_dir
) -> None:
    await hug(discord_api, ALICE, BOB)
    conn = sqlite3.connect(db_path(data_dir))
    try:
        conn.execute("ALTER TABLE daily_counts RENAME TO daily_counts_away")  # an operator slip
        conn.commit()
        failed = await send(discord_api, discord_api.slash("mydata", user=ALICE))
        assert is_ephemeral(failed.visible_message())
        assert not [f for cb in failed.callbacks for f in cb.files]
        conn.execute("ALTER TABLE daily_counts_away RENAME TO daily_counts")
        conn.commit()
    finally:
        conn.close()
    handle = await send(discord_api, discord_api.slash("mydata", user=ALICE))
    assert handle.visible_message()["content"].startswith("Attached: everything I keep about you")

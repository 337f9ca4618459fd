"""The database full or unwritable at run time, staged with SQLite's own limits: actions still
answer (without figures) and the error is logged once per minute, not once per command."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from bot import wording
from bot.logs import ThrottledLog
from bot.store.sqlite import SqliteStore
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot, running_bot
from tests.helpers import (
    WINDOW,
    LogCapture,
    answered,
    assert_db_consistent,
    db_path,
    db_rows,
    image_url,
    is_ephemeral,
    text_of,
    wait_pool,
)

pytestmark = pytest.mark.timeout(60)

STORE_ERROR = "I couldn't save that"
UNSAVED = wording.message("counter_unsaved")


def store_errors(logs: LogCapture) -> list[str]:
    return [m for m in logs.messages("bot", level=40) if "Could not" in m]


def fill_database(conn: sqlite3.Connection) -> int:
    """Cap the file at its current size (`PRAGMA max_page_count`) and fill what is left, so the
    next write gets a real SQLITE_FULL "database or disk is full". Returns the cap.

    Run with `store.run_on_connection`: between the store's own transactions."""
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}").fetchall()
    # every table's pages, so no write of any kind finds room
    fillers = (
        "INSERT INTO processed_actions VALUES (?, 1, 1, 1, 'filler', 1, 1, 0)",
        "INSERT INTO opt_outs VALUES (?, 0)",
        "INSERT INTO returned_actions VALUES (?, 1, 1, 1, 0)",
        "INSERT INTO action_counts VALUES (1, ?, 1, 'filler', 1)",
        "INSERT INTO received_totals VALUES (1, ?, 'filler', 1)",
    )
    for sql in fillers:
        for filler in range(10**15, 10**15 + 20_000):
            try:
                conn.execute(sql, (filler,))
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc), exc
                break
        else:
            raise AssertionError("the database never filled up")
    return pages


def free_database(conn: sqlite3.Connection) -> None:
    """Undo `fill_database` (with `store.run_on_connection`)."""
    conn.execute("PRAGMA max_page_count = 1073741823").fetchall()
    conn.execute("DELETE FROM processed_actions WHERE action = 'filler'")
    conn.execute("DELETE FROM opt_outs WHERE user_id >= 1000000000000000")
    conn.execute("DELETE FROM returned_actions WHERE created_at = 0")
    conn.execute("DELETE FROM action_counts WHERE action = 'filler'")
    conn.execute("DELETE FROM received_totals WHERE action = 'filler'")


def counter_shown(message: dict) -> bool:
    return "has received" in text_of(message)


async def test_database_full_actions_still_answer(
    bot: RunningBot,
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    data_dir: Path,
    logs: LogCapture,
) -> None:
    await wait_pool(bot, "hug", 20)
    store = bot.bot.store
    assert isinstance(store, SqliteStore)
    now = [0.0]  # the throttle's clock: the test moves it on instead of waiting a minute
    bot.bot.store_errors = ThrottledLog(logging.getLogger("bot.store"), clock=lambda: now[0])
    await store.run_on_connection(fill_database)
    targets = [make_user(name=f"full{i}") for i in range(6)]
    records = [
        await discord_api.interact(discord_api.slash("hug", {"user": targets[i % 6]}))
        for i in range(30)
    ]
    finals = await asyncio.gather(*(answered(r) for r in records))
    for final in finals:
        assert image_url(final), final
        assert not counter_shown(final), "a count was shown that was not stored"
        assert UNSAVED in text_of(final), "a count it could not store is said plainly"
    # opt-out cannot be saved: a clear ephemeral message; stats can still be read
    optout = await answered(await discord_api.interact(discord_api.slash("optout")))
    assert is_ephemeral(optout) and STORE_ERROR in text_of(optout)
    stats = await answered(await discord_api.interact(discord_api.slash("stats")))
    assert stats["embeds"]
    # the "Hug back" button works (the claim is kept in memory meanwhile)
    first = finals[0]
    back = next(
        c["custom_id"]
        for row in first["components"]
        for c in row["components"]
        if c["custom_id"].startswith("nc:r:")
    )
    press = await discord_api.interact(discord_api.component(back, first, user=targets[0]))
    await press.wait_for(lambda r: r.followups, timeout=5)
    assert press.response_time is not None and press.response_time < WINDOW
    again = await discord_api.interact(discord_api.component(back, first, user=targets[0]))
    assert is_ephemeral(await answered(again))  # "already returned", even without the database

    errors = store_errors(logs)
    assert len(errors) == 1, errors
    assert "database or disk is full" in errors[0]
    assert not db_rows(data_dir, "SELECT 1 FROM processed_actions WHERE action = 'hug'")

    # A minute later the next failure is logged again, with the tally.
    now[0] += 60
    final = await answered(
        await discord_api.interact(discord_api.slash("hug", {"user": targets[0]}))
    )
    assert image_url(final)
    errors = store_errors(logs)
    assert len(errors) == 2, errors
    assert "similar suppressed" in errors[1] and "(0 similar" not in errors[1]

    # Space again: counting resumes, exactly.
    await store.run_on_connection(free_database)
    final = await answered(
        await discord_api.interact(discord_api.slash("hug", {"user": targets[1]}))
    )
    assert counter_shown(final) and "has received 1 hug" in text_of(final), text_of(final)
    assert UNSAVED not in text_of(final)
    assert_db_consistent(data_dir)
    logs.assert_clean()


async def test_database_read_only(
    discord_api: FakeDiscord, nekos: FakeNekos, data_dir: Path, loop_errors: LogCapture
) -> None:
    """Opened read-only (DATABASE_URL ...?mode=ro): every write fails, every action answers."""
    target = make_user(name="ro")
    async with running_bot(discord_api, nekos, data_dir) as running:
        await wait_pool(running, "hug")
        final = await answered(
            await discord_api.interact(discord_api.slash("hug", {"user": target}))
        )
        assert counter_shown(final)
    url = f"sqlite:///{db_path(data_dir)}?mode=ro"
    async with running_bot(discord_api, nekos, data_dir, DATABASE_URL=url) as running:
        await wait_pool(running, "hug", 10)
        records = [
            await discord_api.interact(discord_api.slash("hug", {"user": target}))
            for _ in range(20)
        ]
        finals = await asyncio.gather(*(answered(r) for r in records))
        assert all(image_url(f) and not counter_shown(f) for f in finals)
        stats = await answered(
            await discord_api.interact(discord_api.slash("stats", {"user": target}))
        )
        assert "1 received" in text_of(stats), text_of(stats)
        forget = await answered(await discord_api.interact(discord_api.slash("forgetme")))
        assert is_ephemeral(forget) and STORE_ERROR in text_of(forget)
    errors = store_errors(loop_errors)
    assert len(errors) == 1, errors
    assert "readonly" in errors[0] or "read-only" in errors[0], errors[0]
    assert db_rows(data_dir, "SELECT SUM(count) FROM received_totals")[0][0] == 1
    assert_db_consistent(data_dir)
    loop_errors.assert_clean()

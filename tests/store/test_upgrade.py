"""A database made by an earlier release (schema version 2, today's release; and version 1)
opens with this one: every count, dedupe row, opt-out and return survives, and new writes work."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from bot.store import ActionCounts, GuildSettings
from bot.store.sqlite import SqliteStore
from bot.store.sqlite_schema import MIGRATIONS
from tests.helpers import assert_consistent, record_one

G1, G2 = 1, 2
A, B, C, D = 11, 12, 13, 14
# (action id, guild, action, actor, target): what users did under the old release.
HISTORY = [
    (1, G1, "hug", A, B),
    (2, G1, "hug", A, B),
    (3, G1, "hug", C, B),
    (4, G1, "pat", B, A),
    (5, G2, "hug", A, C),
    (6, G2, "kiss", D, A),
]
CLAIMED = [(1, B), (5, C)]  # returns claimed under the old release
TABLES = ("action_counts", "received_totals", "processed_actions", "returned_actions", "opt_outs")


def snapshot(path: Path) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of the tables both releases have, columns by name (the order may change)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {
            table: {
                tuple(sorted(dict(row).items()))
                for row in conn.execute(f"SELECT * FROM {table}").fetchall()
            }
            for table in TABLES
        }
    finally:
        conn.close()


def schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _scratch_daily_counts(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TEMP TABLE daily_counts (guild_id, day, actor_id, target_id, action, count,"
        " PRIMARY KEY (guild_id, day, actor_id, target_id, action))"
    )


async def make_old_database(path: Path, version: int) -> dict[tuple[int, int], ActionCounts]:
    """A database at schema `version` holding HISTORY, CLAIMED and an opt-out, written as
    that release wrote them; returns the counts each action answered."""
    answered = {}
    async with await SqliteStore.open(path, migrations=MIGRATIONS[:version]) as old:
        # Those releases kept no per-day totals: today's record_action writes them to a table
        # of this connection only, so the file keeps that release's schema.
        await old.run_on_connection(_scratch_daily_counts)
        for action_id, guild, action, actor, target in HISTORY:
            # One target per action: the rows are the ones the old release wrote.
            answered[(action_id, target)] = await record_one(
                old, action_id=action_id, guild_id=guild, action=action, actor_id=actor,
                target_id=target,
            )  # fmt: skip
        await old.set_opt_out(user_id=D, opted_out=True)
    raw = sqlite3.connect(path)
    with raw:
        for action_id, target in CLAIMED:
            # Version 1 keyed returns by action alone; both copied guild and actor at claim time.
            guild, actor = raw.execute(
                "SELECT guild_id, actor_id FROM processed_actions WHERE action_id = ?",
                (action_id,),
            ).fetchone()
            raw.execute(
                "INSERT INTO returned_actions (action_id, target_id, guild_id, actor_id,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (action_id, target, guild, actor, int(time.time())),
            )
    raw.close()
    assert schema_version(path) == version
    return answered


@pytest.mark.parametrize("version", [2, 1])
async def test_an_old_database_migrates_and_keeps_everything(db_path: Path, version: int) -> None:
    answered = await make_old_database(db_path, version)
    before = snapshot(db_path)
    async with await SqliteStore.open(db_path) as store:
        assert schema_version(db_path) == MIGRATIONS[-1].version
        assert snapshot(db_path) == before  # every row, as it was
        for (action_id, target), counts in answered.items():
            # A replay of an old interaction answers as the first delivery did, counting nothing.
            guild, action, actor = next(h[1:4] for h in HISTORY if h[0] == action_id)
            again = await store.record_action(
                action_id=action_id, guild_id=guild, action=action, actor_id=actor,
                target_ids=[target],
            )  # fmt: skip
            assert again == [counts]
        assert snapshot(db_path) == before
        assert await store.counts(guild_id=G1, action="hug", actor_id=A, target_id=B) == (
            ActionCounts(2, 3)
        )
        assert await store.is_opted_out(D)
        assert not await store.is_opted_out(A)
        for action_id, target in CLAIMED:
            assert await store.is_returned(action_id=action_id, target_id=target)
            assert not await store.claim_return(action_id=action_id, target_id=target)
        assert (await store.user_stats(guild_id=G1, user_id=B)).top_partners[0].user_id == A

        # New writes: further targets of an old interaction, and a new one of several targets.
        assert await store.record_action(
            action_id=1, guild_id=G1, action="hug", actor_id=A, target_ids=[B, C]
        ) == [ActionCounts(1, 1), ActionCounts(1, 1)]  # B: the first answer; C: counted
        assert await store.record_action(
            action_id=100, guild_id=G1, action="hug", actor_id=A, target_ids=[B, C, D]
        ) == [ActionCounts(3, 4), ActionCounts(2, 2), ActionCounts(1, 1)]
        assert await store.claim_return(action_id=100, target_id=C)
        await store.save_guild_settings(G1, GuildSettings(pings=False))
    async with await SqliteStore.open(db_path) as store:
        assert await store.guild_settings(G1) == GuildSettings(pings=False)
        assert await store.counts(guild_id=G1, action="hug", actor_id=A, target_id=B) == (
            ActionCounts(3, 4)
        )
        await store.forget_guild(guild_id=G1)
        assert await store.guild_settings(G1) == GuildSettings()
        assert await store.counts(guild_id=G2, action="hug", actor_id=A, target_id=C) == (
            ActionCounts(1, 1)
        )
    assert_consistent(db_path)


async def test_dedupe_is_keyed_by_action_and_target_after_migrating(db_path: Path) -> None:
    await make_old_database(db_path, 2)
    async with await SqliteStore.open(db_path):
        pass
    conn = sqlite3.connect(db_path)
    try:
        key = sorted(
            (int(pk), str(name))
            for _, name, _, _, _, pk in conn.execute("PRAGMA table_info(processed_actions)")
            if pk
        )
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(processed_actions)")}
    finally:
        conn.close()
    assert key == [(1, "action_id"), (2, "target_id")]
    assert "processed_actions_by_age" in indexes  # pruning stays an index range

"""`python -m bot migrate-store`: a database made by today's release (and older ones) moves to
PostgreSQL whole, opt-outs above all; a non-empty target, a missing source and bad arguments are
refused with one line."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.store import ActionCounts, GuildSettings, Partner
from bot.store.migrate import COLUMNS
from bot.store.postgres import PostgresStore
from bot.store.postgres_schema import TABLES
from bot.store.sqlite import SqliteStore
from tests.harness import ROOT
from tests.store.test_upgrade import CLAIMED, G1, G2, HISTORY, A, B, C, D, make_old_database

SECRET = "m0ve-pa55word"


async def migrate_store(*args: str) -> tuple[int, str, str]:
    """`python -m bot migrate-store ARGS` as an operator runs it: (exit code, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "migrate-store", *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def sqlite_rows(path: Path) -> dict[str, set[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: set(conn.execute(f"SELECT {', '.join(COLUMNS[table])} FROM {table}"))
            for table in TABLES
        }
    finally:
        conn.close()


async def postgres_rows(url: str) -> dict[str, set[tuple[Any, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return {
            table: {
                tuple(row)
                for row in await conn.fetch(f"SELECT {', '.join(COLUMNS[table])} FROM {table}")
            }
            for table in TABLES
        }
    finally:
        await conn.close()


def with_password(url: str) -> str:
    user, rest = url.split("://", 1)[1].split("@", 1)
    return f"postgresql://{user}:{SECRET}@{rest}"  # trust auth: the password is not checked


@pytest.mark.parametrize("version", [2, 1], ids=["today's release", "version 1"])
async def test_a_release_database_moves_whole(db_path: Path, pg_url: str, version: int) -> None:
    answered = await make_old_database(db_path, version)
    code, out, err = await migrate_store("--from", f"sqlite:///{db_path}", "--to", pg_url)
    assert (code, err) == (0, ""), err
    assert out == (
        "nekocord: copied 5 counts, 4 received totals, 6 dedupe markers, 2 return markers, "
        "1 opt-outs, 0 server settings, 5 per-day totals (6 actions counted)\n"
    )
    # Row for row what the SQLite file holds once brought to the current schema.
    assert await postgres_rows(pg_url) == sqlite_rows(db_path)

    async with await PostgresStore.open(pg_url) as store:
        assert await store.is_opted_out(D)  # the consent that must never be lost
        assert await store.opted_out_among([A, B, C, D]) == {D}
        assert await store.counts(guild_id=G1, action="hug", actor_id=A, target_id=B) == (
            ActionCounts(2, 3)
        )
        for action_id, target in CLAIMED:
            assert await store.is_returned(action_id=action_id, target_id=target)
            assert not await store.claim_return(action_id=action_id, target_id=target)
        for (action_id, target), counts in answered.items():
            # A replay of an interaction counted before the move is still recognised.
            guild, action, actor = next(h[1:4] for h in HISTORY if h[0] == action_id)
            again = await store.record_action(
                action_id=action_id, guild_id=guild, action=action, actor_id=actor,
                target_ids=[target],
            )  # fmt: skip
            assert again == [counts]
        stats = await store.user_stats(guild_id=G1, user_id=B)
        assert stats.top_partners == [Partner(A, 3), Partner(C, 1)]
        assert await store.counts(guild_id=G2, action="kiss", actor_id=D, target_id=A) == (
            ActionCounts(1, 1)
        )
        # And it goes on counting from there.
        assert await store.record_action(
            action_id=100, guild_id=G1, action="hug", actor_id=A, target_ids=[B]
        ) == [ActionCounts(3, 4)]


async def test_settings_and_several_targets_of_the_current_schema_move(
    db_path: Path, pg_url: str
) -> None:
    settings = GuildSettings(disabled={"kiss", "gif"}, channels=(7, 5), cooldown=(2, 30))
    async with await SqliteStore.open(db_path) as store:
        await store.record_action(action_id=1, guild_id=G1, action="hug", actor_id=A,
                                  target_ids=[B, C])  # fmt: skip
        await store.save_guild_settings(G1, settings)
        await store.set_opt_out(user_id=C, opted_out=True)
    code, out, _ = await migrate_store("--from", str(db_path), "--to", with_password(pg_url))
    assert code == 0 and "1 server settings" in out and "2 dedupe markers" in out, out
    assert SECRET not in out
    async with await PostgresStore.open(pg_url) as store:
        assert await store.guild_settings(G1) == settings
        assert await store.is_opted_out(C)
        assert (
            await store.record_action(
                action_id=1, guild_id=G1, action="hug", actor_id=A, target_ids=[C, B]
            )
            == [ActionCounts(1, 1)] * 2
        )


async def test_a_target_holding_data_is_refused_and_left_alone(db_path: Path, pg_url: str) -> None:
    await make_old_database(db_path, 2)
    async with await PostgresStore.open(pg_url) as store:
        await store.set_opt_out(user_id=999, opted_out=True)
    before = await postgres_rows(pg_url)
    code, out, err = await migrate_store("--from", f"sqlite:///{db_path}", "--to", pg_url)
    assert code == 2 and out == "", (out, err)
    assert err == (
        "nekocord migrate-store: the target database already holds data (table opt_outs): "
        "migrate-store only copies into an empty database\n"
    )
    assert await postgres_rows(pg_url) == before


async def test_a_missing_source_is_refused_and_not_created(tmp_path: Path, pg_url: str) -> None:
    missing = tmp_path / "nowhere" / "nekocord.db"
    code, out, err = await migrate_store("--from", f"sqlite:///{missing}", "--to", pg_url)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert not missing.exists() and not missing.parent.exists()
    conn = await asyncpg.connect(pg_url)
    try:  # the target was not even touched
        assert (
            await conn.fetchval("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "the following arguments are required: --from, --to"),
        (("--from", "x.db"), "the following arguments are required: --to"),
        (("--from", "mysql://h/db", "--to", "postgresql://h/db"), "--from must be a SQLite"),
        (("--from", "x.db", "--to", "sqlite:///y.db"), "--to must be a PostgreSQL URL"),
    ],
)
async def test_bad_arguments_exit_2(args: tuple[str, ...], expected: str) -> None:
    code, out, err = await migrate_store(*args)
    assert code == 2 and out == "", (out, err)
    assert expected in err, err


async def test_an_unreachable_target_exits_1_without_the_password(db_path: Path) -> None:
    await make_old_database(db_path, 2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = f"postgresql://nekocord:{SECRET}@127.0.0.1:{port}/nekocord"
    code, out, err = await migrate_store("--from", str(db_path), "--to", target)
    assert code == 1 and out == "", (out, err)
    assert err.startswith("nekocord migrate-store: PostgreSQL at 127.0.0.1:") and SECRET not in err

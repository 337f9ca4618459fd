"""`python -m bot migrate-store`: a database made by today's release (and older ones) moves to
PostgreSQL whole, opt-outs above all, and the source is only read; a non-empty target, a missing,
empty, corrupt or invalid source and bad arguments are refused with one line and exit 2, the
source untouched and nothing written to the target."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.store import ActionCounts, GuildSettings, Partner
from bot.store.migrate import COLUMNS, TARGET_COLUMNS
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
                tuple(tuple(v) if isinstance(v, list) else v for v in row)
                for row in await conn.fetch(
                    f"SELECT {', '.join(TARGET_COLUMNS[table])} FROM {table}"
                )
            }
            for table in TABLES
        }
    finally:
        await conn.close()


def file_state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


async def public_tables(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'")
        )
    finally:
        await conn.close()


def with_password(url: str) -> str:
    user, rest = url.split("://", 1)[1].split("@", 1)
    return f"postgresql://{user}:{SECRET}@{rest}"  # trust auth: the password is not checked


@pytest.mark.parametrize("version", [2, 1], ids=["today's release", "version 1"])
async def test_a_release_database_moves_whole(db_path: Path, pg_url: str, version: int) -> None:
    answered = await make_old_database(db_path, version)
    source = file_state(db_path)
    code, out, err = await migrate_store("--from", f"sqlite:///{db_path}", "--to", pg_url)
    assert (code, err) == (0, ""), err
    assert out == (
        "nekocord: copied 5 counts, 4 received totals, 6 dedupe markers, 2 return markers, "
        "1 opt-outs, 0 server settings, 5 per-day totals, 0 blocks (6 actions counted)\n"
    )
    assert file_state(db_path) == source  # only read, not brought to today's schema
    # Row for row what the SQLite file holds once brought to the current schema.
    current = db_path.with_name("current.db")
    shutil.copyfile(db_path, current)
    async with await SqliteStore.open(current):
        pass
    assert await postgres_rows(pg_url) == sqlite_rows(current)

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
    settings = GuildSettings(
        disabled={"kiss", "gif"}, channels=(7, 5), cooldown=(2, 30), leaderboard=False
    )
    async with await SqliteStore.open(db_path) as store:
        await store.record_action(action_id=1, guild_id=G1, action="hug", actor_id=A,
                                  target_ids=[B, C])  # fmt: skip
        await store.save_guild_settings(G1, settings)
        await store.set_opt_out(user_id=C, opted_out=True)
        await store.set_block(user_id=B, action="kiss", blocked=True)
        await store.set_block(user_id=B, action="gif", blocked=True)
    code, out, _ = await migrate_store("--from", str(db_path), "--to", with_password(pg_url))
    assert code == 0 and "1 server settings" in out and "2 dedupe markers" in out, out
    assert "2 per-day totals" in out and "2 blocks" in out, out
    assert SECRET not in out
    async with await PostgresStore.open(pg_url) as store:
        assert await store.guild_settings(G1) == settings
        week = await store.leaderboard(guild_id=G1, user_id=A, period="week")
        # The day's totals came along (C opted out: no rank).
        assert [(e.user_id, e.count) for e in week.entries] == [(B, 1)]
        assert await store.is_opted_out(C)
        assert await store.blocks_of(B) == {"kiss", "gif"}
        assert await store.opted_out_among([A, B], refusing=("kiss",)) == {B}
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
    assert await public_tables(pg_url) == 0  # the target was not even touched


def drop_table(path: Path, table: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f"DROP TABLE {table}")
    conn.close()


def insert(path: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


async def current_database(path: Path) -> None:
    async with await SqliteStore.open(path) as store:
        await store.record_action(action_id=1, guild_id=G1, action="hug", actor_id=A,
                                  target_ids=[B])  # fmt: skip
        await store.set_opt_out(user_id=C, opted_out=True)
        await store.save_guild_settings(G1, GuildSettings(pings=False))


async def empty_file(path: Path) -> None:
    path.write_bytes(b"")


async def not_sqlite(path: Path) -> None:
    path.write_bytes(b"nekocord counts\n" * 100)


async def table_missing(path: Path) -> None:
    await current_database(path)
    drop_table(path, "guild_settings")


async def table_missing_at_an_old_version(path: Path) -> None:
    await make_old_database(path, 2)
    drop_table(path, "opt_outs")


async def table_an_old_step_needs_missing(path: Path) -> None:
    await make_old_database(path, 2)
    drop_table(path, "processed_actions")  # version 3 copies it


async def text_in_an_integer_column(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO action_counts VALUES ('abc', 1, 2, 'hug', 1)")


async def an_id_past_64_bits(path: Path) -> None:
    await current_database(path)  # SQLite keeps 2**64 as a REAL
    insert(path, "INSERT INTO received_totals VALUES (1, 18446744073709551616, 'hug', 1)")


async def a_negative_id(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO returned_actions VALUES (5, 6, -7, NULL, 0)")


async def deeply_nested_settings(path: Path) -> None:
    await current_database(path)  # 100,000 levels: too long before too deep
    insert(path, "INSERT INTO guild_settings VALUES (?, ?, 0)", G2, "[" * 100_000 + "]" * 100_000)


async def nested_settings_of_ordinary_length(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO guild_settings VALUES (?, ?, 0)", G2, "[" * 10_000 + "]" * 10_000)


async def ten_megabytes_of_junk_settings(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO guild_settings VALUES (?, ?, 0)", G2, "x" * 10_000_000)


async def settings_of_the_wrong_type(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO guild_settings VALUES (?, ?, 0)", G2, '{"disabled": "hug"}')


async def a_day_that_is_text(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO daily_counts VALUES (?, 'today', 1, 2, 'hug', 1)", G2)


async def a_day_count_that_is_text(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO daily_counts VALUES (?, 20000, 1, 2, 'hug', 'many')", G2)


async def a_leaderboard_setting_that_is_no_bool(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO guild_settings VALUES (?, ?, 0)", G2, '{"leaderboard": 0}')


async def a_block_of_no_action(path: Path) -> None:
    await current_database(path)
    insert(path, "INSERT INTO action_blocks VALUES (1, X'6875', 0)")


async def a_newer_schema(path: Path) -> None:
    await current_database(path)
    insert(path, "PRAGMA user_version = 99")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("make", "said"),
    [
        (empty_file, "is empty (0 bytes)"),
        (not_sqlite, "is not a SQLite database"),
        (table_missing, "has no table guild_settings"),
        (table_missing_at_an_old_version, "has no table opt_outs"),
        (table_an_old_step_needs_missing, "processed_actions"),
        (text_in_an_integer_column, "invalid row in action_counts (row 2: guild_id 'abc'"),
        (an_id_past_64_bits, "invalid row in received_totals (row 2: target_id 1.8446"),
        (a_negative_id, "invalid row in returned_actions (row 1: guild_id -7"),
        (deeply_nested_settings, "(200,000 characters) do not decode"),
        (nested_settings_of_ordinary_length, "nested deeper than 4 levels"),
        (ten_megabytes_of_junk_settings, "(10,000,000 characters) do not decode"),
        (settings_of_the_wrong_type, "disabled is not a list of str"),
        (a_day_that_is_text, "daily_counts (row 2: day 'today' is not a day number"),
        (a_day_count_that_is_text, "daily_counts (row 2: count 'many' is not a count"),
        (a_leaderboard_setting_that_is_no_bool, "leaderboard is not true or false"),
        (a_block_of_no_action, "invalid row in action_blocks (row 1: action "),
        (a_newer_schema, "has schema version 99, newer than"),
    ],
)
async def test_a_source_that_is_not_a_valid_nekocord_database_is_refused_untouched(
    db_path: Path, pg_url: str, make: Any, said: str
) -> None:
    await make(db_path)
    before = file_state(db_path)
    code, out, err = await migrate_store("--from", f"sqlite:///{db_path}", "--to", pg_url)
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("nekocord migrate-store: ") and len(err.splitlines()) == 1, err
    assert said in err and "Traceback" not in err, err
    assert len(err) < 700, err  # never the junk itself
    assert file_state(db_path) == before  # not a byte written, not even its mtime
    assert await public_tables(pg_url) == 0  # the target was not touched


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

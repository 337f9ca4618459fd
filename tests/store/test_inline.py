"""The counter's transaction runs on the event loop's thread, and never makes the loop wait:
a database locked by someone else sends it to the database thread, and WAL checkpoints run
there too. Seen through SQLite's own statement trace on the store's connection."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.store.sqlite import SqliteStore
from tests.helpers import assert_consistent, record_one

KW = {"guild_id": 1, "action": "hug", "actor_id": 2, "target_id": 3}
# Pair, received total, day total, dedupe marker.
COUNTER_TRANSACTION = ["BEGIN", "SELECT", "INSERT", "INSERT", "INSERT", "INSERT", "COMMIT"]


@asynccontextmanager
async def traced(store: SqliteStore) -> AsyncIterator[list[tuple[int, str]]]:
    """(thread id, SQL) of every statement the store's connection runs meanwhile."""
    statements: list[tuple[int, str]] = []

    def record(sql: str) -> None:
        statements.append((threading.get_ident(), sql))

    def trace(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(record)

    def untrace(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(None)

    await store.run_on_connection(trace)
    try:
        yield statements
    finally:
        await store.run_on_connection(untrace)


def first_words(statements: list[tuple[int, str]]) -> list[str]:
    return [sql.split()[0] for _, sql in statements]


async def test_inline_commit_runs_on_the_loop_thread(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    loop_thread = threading.get_ident()
    async with traced(store) as statements:
        counts = await record_one(store, action_id=10, **KW)
        on_loop = [s for s in statements if s[0] == loop_thread]
    assert counts.pair == 1
    # The whole transaction, and nothing else (no busy_timeout switching on the hot path).
    assert first_words(on_loop) == COUNTER_TRANSACTION


async def test_a_locked_database_goes_to_the_thread_and_the_loop_keeps_running(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    store = sqlite_store
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    loop_thread = threading.get_ident()
    tick_task = asyncio.create_task(ticker())
    try:
        async with traced(store) as statements:
            pending = asyncio.create_task(record_one(store, action_id=11, **KW))
            await asyncio.sleep(0.3)
            assert not pending.done()  # waiting on the database thread, not on the loop
            assert ticks >= 15  # the loop went on meanwhile
            other.execute("COMMIT")
            counts = await asyncio.wait_for(pending, 5)
            assert counts.pair == 1
            # Tried inline once (BUSY at BEGIN IMMEDIATE, nothing written), then done whole
            # on the database thread.
            on_loop = [sql for thread, sql in statements if thread == loop_thread]
            assert on_loop == ["BEGIN IMMEDIATE"]
            on_thread = [s for s in statements if s[0] != loop_thread]
            assert [w for w in first_words(on_thread) if w != "PRAGMA"] == COUNTER_TRANSACTION
            statements.clear()
            # After the lock: inline again.
            assert (await record_one(store, action_id=12, **KW)).pair == 2
            assert first_words(statements) == COUNTER_TRANSACTION
            assert {thread for thread, _ in statements} == {loop_thread}
    finally:
        tick_task.cancel()
        other.close()


async def test_wal_is_checkpointed_in_the_background(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.store.sqlite_runner")
    store = await SqliteStore.open(db_path, checkpoint_every=20)

    def checkpoints() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("WAL checkpoint")]

    try:
        async with traced(store) as statements:
            for i in range(19):
                await record_one(store, action_id=100 + i, **KW)
            await store.run_on_connection(lambda conn: None)  # the database thread is idle
            assert not checkpoints()
            await record_one(store, action_id=200, **KW)  # the 20th queues one
            await store.run_on_connection(lambda conn: None)  # the database thread runs in order
            (checkpoint,) = checkpoints()
            assert checkpoint.threadName.startswith("nekocord-store")  # not the loop's thread
            assert checkpoint.getMessage() != "WAL checkpoint: 0 of 0 frames in the database"
            # The store's own connection never checkpoints: commits on the loop thread stay
            # short.
            assert not [sql for _, sql in statements if "checkpoint" in sql]
    finally:
        await store.close()
    assert "WAL checkpoint failed" not in caplog.text
    assert_consistent(db_path)
    reopened = await SqliteStore.open(db_path)
    try:
        assert (await reopened.counts(**KW)).pair == 20
    finally:
        await reopened.close()

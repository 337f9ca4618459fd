"""The counter's transaction runs on the event loop's thread, and never makes the loop wait:
a database locked by someone else sends it to the database thread, and WAL checkpoints run
there too."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from bot.store import sqlite as sqlite_store
from bot.store.sqlite import SqliteStore
from tests.helpers import assert_consistent

KW = {"guild_id": 1, "action": "hug", "actor_id": 2, "target_id": 3}


async def test_inline_commit_runs_on_the_loop_thread(store: SqliteStore, monkeypatch) -> None:
    threads: list[int] = []
    real = sqlite_store._in_thread

    def spy(raw, body, write):
        threads.append(threading.get_ident())
        return real(raw, body, write)

    monkeypatch.setattr(sqlite_store, "_in_thread", spy)
    counts = await store.record_action(action_id=10, **KW)
    assert counts.pair == 1
    assert threads == [threading.get_ident()]


async def test_a_locked_database_goes_to_the_thread_and_the_loop_keeps_running(
    store: SqliteStore, db_path: Path
) -> None:
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    tick_task = asyncio.create_task(ticker())
    try:
        pending = asyncio.create_task(store.record_action(action_id=11, **KW))
        await asyncio.sleep(0.3)
        assert not pending.done()  # waiting on the database thread, not on the loop
        assert ticks >= 15  # the loop went on meanwhile
        other.execute("COMMIT")
        counts = await asyncio.wait_for(pending, 5)
        assert counts.pair == 1
    finally:
        tick_task.cancel()
        other.close()
    # After the lock: inline again.
    assert (await store.record_action(action_id=12, **KW)).pair == 2


async def test_wal_is_checkpointed_in_the_background(db_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 20)
    store = await SqliteStore.open(db_path)
    checkpoints: list[int] = []
    real = store._start_checkpoint

    def spy() -> None:
        checkpoints.append(threading.get_ident())
        real()

    monkeypatch.setattr(store, "_start_checkpoint", spy)
    try:
        for i in range(19):
            await store.record_action(action_id=100 + i, **KW)
        assert checkpoints == []  # commits on the loop thread never checkpoint by themselves
        await store.record_action(action_id=200, **KW)  # the 20th starts one, in the background
        assert len(checkpoints) == 1
        await asyncio.sleep(0.2)
    finally:
        await store.close()
    assert "WAL checkpoint failed" not in caplog.text
    assert_consistent(db_path)
    reopened = await SqliteStore.open(db_path)
    try:
        assert (await reopened.counts(**KW)).pair == 20
    finally:
        await reopened.close()

"""Run-time write failures come out as StoreError, and the store keeps serving reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.store import ActionCounts, StoreError, open_store
from bot.store.sqlite import SqliteStore
from tests.helpers import assert_consistent, record_one

HUG = {"guild_id": 1, "action": "hug", "actor_id": 10, "target_id": 20}


def set_max_page_count(pages: int) -> Callable[[sqlite3.Connection], object]:
    return lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}").fetchall()


async def test_full_database_raises_store_error_and_reads_keep_working(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    store = sqlite_store
    assert await record_one(store, action_id=1, **HUG) == ActionCounts(1, 1)
    # max_page_count below the current size clamps to it: the file may not grow any more,
    # so SQLite itself reports SQLITE_FULL, as on a full disk.
    await store.run_on_connection(set_max_page_count(1))

    with pytest.raises(StoreError, match="database or disk is full") as caught:
        for i in range(2, 5000):  # a new pair each time needs new pages sooner or later
            await record_one(store, action_id=i, **{**HUG, "guild_id": i})
    assert isinstance(caught.value.__cause__, Exception)
    failed_guild = i

    # The failed action left nothing behind, earlier ones are intact, reads work.
    assert await store.counts(**{**HUG, "guild_id": failed_guild}) == ActionCounts(0, 0)
    assert await store.counts(**HUG) == ActionCounts(1, 1)
    assert await record_one(store, action_id=1, **HUG) == ActionCounts(1, 1)  # replay: a read
    await store.ping()
    assert not await store.is_opted_out(10)

    # Once there is room again, writes resume on the same store.
    await store.run_on_connection(set_max_page_count(1073741823))
    assert await record_one(store, action_id=failed_guild, **HUG) == ActionCounts(2, 2)
    await store.close()
    assert_consistent(db_path)


async def test_read_only_database_write_raises_store_error(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await record_one(store, action_id=1, **HUG)

    async with await open_store(f"sqlite:///{db_path}?mode=ro") as store:
        with pytest.raises(StoreError, match="readonly"):
            await record_one(store, action_id=2, **HUG)
        with pytest.raises(StoreError, match="readonly"):
            await store.claim_return(action_id=1, target_id=1)
        with pytest.raises(StoreError, match="readonly"):
            await store.set_opt_out(user_id=10, opted_out=True)
        # Reads are fine, and nothing was half-written.
        assert await store.counts(**HUG) == ActionCounts(1, 1)
        assert await store.user_stats(guild_id=1, user_id=10) is not None
        await store.ping()
    assert_consistent(db_path)


async def test_store_error_message_is_one_line(sqlite_store: SqliteStore, db_path: Path) -> None:
    store = sqlite_store
    # another way to refuse writes
    await store.run_on_connection(lambda conn: conn.execute("PRAGMA query_only = ON"))
    with pytest.raises(StoreError) as caught:
        await store.forget_guild(guild_id=1)
    message = str(caught.value)
    assert "\n" not in message
    assert "forget_guild" in message
    assert str(db_path) in message

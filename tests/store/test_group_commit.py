"""Group commit on SQLite: the counters that arrive during one pass of the event loop share one
transaction, and every caller is told its counts only once the COMMIT holding them succeeded.
Seen through SQLite's statement trace on the store's connection, and made to fail with TEMP
triggers on that connection (the schema on disk is untouched)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.store import ActionCounts, StoreError
from bot.store.sqlite import SqliteStore
from tests.helpers import assert_consistent, record_one
from tests.store.test_inline import traced

KW = {"guild_id": 1, "action": "hug", "actor_id": 2}
# The marker check, the pair, the received total, the day's total, the marker.
COUNTER_BODY = ["SELECT", "INSERT", "INSERT", "INSERT", "INSERT"]


def first_words(statements: list[tuple[int, str]]) -> list[str]:
    """The statements' first words, without the PRAGMAs of the tracing jobs themselves."""
    return [w for _, sql in statements if (w := sql.split()[0]) != "PRAGMA"]


def run_sql(*statements: str) -> object:
    def job(conn: sqlite3.Connection) -> None:
        for sql in statements:
            conn.execute(sql)

    return job


# A deferred foreign key the trigger breaks: nothing fails until COMMIT checks it.
FAIL_AT_COMMIT = run_sql(
    "PRAGMA foreign_keys = ON",
    "CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)",
    "CREATE TEMP TABLE child (id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
    "CREATE TEMP TRIGGER break_commit AFTER INSERT ON main.received_totals"
    " BEGIN INSERT INTO child VALUES (1); END",
)
COMMIT_WORKS = run_sql(
    "DROP TRIGGER temp.break_commit", "DELETE FROM temp.child", "PRAGMA foreign_keys = OFF"
)
# One target's write fails in its body (as a full disk or a constraint would).
REFUSE_TARGET_66 = run_sql(
    "CREATE TEMP TRIGGER refuse_66 BEFORE INSERT ON main.received_totals"
    " WHEN NEW.target_id = 66 BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
)


async def test_concurrent_actions_share_one_transaction(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    async with traced(store) as statements:
        counts = await asyncio.gather(
            *(record_one(store, action_id=100 + i, target_id=3, **KW) for i in range(6))
        )
        words = first_words(statements)
    # One BEGIN and one COMMIT for the six, each body whole, and the counts exact.
    assert words == ["BEGIN", *COUNTER_BODY * 6, "COMMIT"]
    assert sorted(c.pair for c in counts) == [1, 2, 3, 4, 5, 6]
    assert sorted(c.received_total for c in counts) == [1, 2, 3, 4, 5, 6]
    # Replays in a later group count nothing again.
    again = await asyncio.gather(
        *(record_one(store, action_id=100 + i, target_id=3, **KW) for i in range(6))
    )
    assert again == counts
    assert (await store.counts(**KW, target_id=3)).pair == 6


async def test_one_action_alone_is_its_own_transaction(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    async with traced(store) as statements:
        assert await record_one(store, action_id=1, target_id=3, **KW) == ActionCounts(1, 1)
        assert await record_one(store, action_id=2, target_id=3, **KW) == ActionCounts(2, 2)
        words = first_words(statements)
    assert words == ["BEGIN", *COUNTER_BODY, "COMMIT"] * 2


async def test_a_failing_commit_fails_every_caller_of_the_group(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    store = sqlite_store
    assert await record_one(store, action_id=1, target_id=3, **KW) == ActionCounts(1, 1)
    await store.run_on_connection(FAIL_AT_COMMIT)
    results = await asyncio.gather(
        *(record_one(store, action_id=10 + i, target_id=3 + i % 2, **KW) for i in range(5)),
        return_exceptions=True,
    )
    # Nobody is told "stored", and nothing of the group is in the database.
    assert all(isinstance(r, StoreError) for r in results), results
    assert all("FOREIGN KEY constraint failed" in str(r) for r in results)
    await store.run_on_connection(COMMIT_WORKS)
    assert await store.counts(**KW, target_id=3) == ActionCounts(1, 1)
    assert await store.counts(**KW, target_id=4) == ActionCounts(0, 0)
    # The same actions, delivered again, are counted now (no marker was left behind).
    retried = await asyncio.gather(
        *(record_one(store, action_id=10 + i, target_id=3 + i % 2, **KW) for i in range(5))
    )
    assert sorted(c.pair for c in retried) == [1, 2, 2, 3, 4]
    await store.close()
    assert_consistent(db_path)


async def test_a_failing_body_fails_alone_and_the_others_commit(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    store = sqlite_store
    await store.run_on_connection(REFUSE_TARGET_66)
    targets = [3, 66, 4, 3]
    results = await asyncio.gather(
        *(record_one(store, action_id=20 + i, target_id=t, **KW) for i, t in enumerate(targets)),
        return_exceptions=True,
    )
    failed = results[1]
    assert isinstance(failed, StoreError) and "refused for the test" in str(failed)
    assert isinstance(failed.__cause__, sqlite3.Error)
    assert [r for i, r in enumerate(results) if i != 1] == [
        ActionCounts(1, 1),
        ActionCounts(1, 1),
        ActionCounts(2, 2),
    ]
    assert await store.counts(**KW, target_id=66) == ActionCounts(0, 0)
    await store.close()
    assert_consistent(db_path)


async def test_a_cancelled_caller_only_loses_the_answer(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    waiting = asyncio.ensure_future(record_one(store, action_id=30, target_id=3, **KW))
    other = asyncio.ensure_future(record_one(store, action_id=31, target_id=3, **KW))
    await asyncio.sleep(0)  # both joined the group, not committed yet
    waiting.cancel()
    assert (await other).pair in (1, 2)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # The cancelled call was in the group: committed, and a replay answers its counts.
    assert (await store.counts(**KW, target_id=3)).pair == 2
    assert (await record_one(store, action_id=30, target_id=3, **KW)).pair in (1, 2)


async def test_a_later_call_waits_for_the_group_before_it(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    async with traced(store) as statements:
        counted = asyncio.ensure_future(record_one(store, action_id=40, target_id=3, **KW))
        await asyncio.sleep(0)  # in the group, waiting for the next pass
        assert not counted.done()
        # Called after the action: it must see it (the group runs first).
        assert (await store.counts(**KW, target_id=3)).pair == 1
        assert (await counted).pair == 1
        words = first_words(statements)
    assert words == ["BEGIN", *COUNTER_BODY, "COMMIT", "BEGIN", "SELECT", "COMMIT"]


async def test_closing_commits_the_waiting_group(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    pending = [
        asyncio.ensure_future(record_one(store, action_id=50 + i, target_id=3, **KW))
        for i in range(3)
    ]
    await asyncio.sleep(0)
    await store.close()
    assert sorted(c.pair for c in await asyncio.gather(*pending)) == [1, 2, 3]
    async with await SqliteStore.open(db_path) as reopened:
        assert (await reopened.counts(**KW, target_id=3)).pair == 3

"""Counting: exact under concurrency, idempotent by action id, durable across reopen."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.store import ActionCounts, Store, StoreError
from bot.store.sqlite import SqliteStore
from tests.helpers import assert_consistent, record_one
from tests.store.conftest import Backend

HUG = {"guild_id": 1, "action": "hug", "actor_id": 10, "target_id": 20}


async def test_first_action_counts_one(store: Store) -> None:
    assert await store.counts(**HUG) == ActionCounts(0, 0)
    assert await record_one(store, action_id=1, **HUG) == ActionCounts(1, 1)
    assert await record_one(store, action_id=2, **HUG) == ActionCounts(2, 2)
    assert await store.counts(**HUG) == ActionCounts(2, 2)


async def test_pair_and_received_total_are_separate(store: Store) -> None:
    await record_one(store, action_id=1, **HUG)
    other_actor = {**HUG, "actor_id": 11}
    assert await record_one(store, action_id=2, **other_actor) == ActionCounts(1, 2)
    # Another action, guild or direction is another counter.
    assert await record_one(store, action_id=3, **{**HUG, "action": "pat"}) == ActionCounts(1, 1)
    assert await record_one(store, action_id=4, **{**HUG, "guild_id": 2}) == ActionCounts(1, 1)
    back = {**HUG, "actor_id": 20, "target_id": 10}
    assert await record_one(store, action_id=5, **back) == ActionCounts(1, 1)
    assert await store.counts(**HUG) == ActionCounts(1, 2)


async def test_100_concurrent_record_action_are_exact(store: Store, backend: Backend) -> None:
    started = time.perf_counter()
    results = await asyncio.gather(*(record_one(store, action_id=i, **HUG) for i in range(1, 101)))
    elapsed = time.perf_counter() - started
    print(f"100 concurrent record_action: {elapsed * 1000:.1f} ms")
    # Each call saw a consistent state of its own: the returned counts are exactly 1..100.
    assert sorted(r.pair for r in results) == list(range(1, 101))
    assert all(r.pair == r.received_total for r in results)
    assert await store.counts(**HUG) == ActionCounts(100, 100)
    await backend.assert_consistent()


async def test_concurrent_actions_on_several_pairs(store: Store, backend: Backend) -> None:
    calls = [record_one(store, action_id=i, **{**HUG, "actor_id": 100 + i % 5}) for i in range(100)]
    results = await asyncio.gather(*calls)
    assert sorted(r.received_total for r in results) == list(range(1, 101))
    for actor in range(100, 105):
        assert (await store.counts(**{**HUG, "actor_id": actor})).pair == 20
    await backend.assert_consistent()


async def test_replay_returns_the_same_counts_without_counting(store: Store) -> None:
    first = await record_one(store, action_id=7, **HUG)
    await record_one(store, action_id=8, **HUG)
    # A redelivered event: same id, answered as the first time, nothing counted.
    assert await record_one(store, action_id=7, **HUG) == first == ActionCounts(1, 1)
    assert await store.counts(**HUG) == ActionCounts(2, 2)


async def test_concurrent_replays_count_once(store: Store) -> None:
    results = await asyncio.gather(*(record_one(store, action_id=42, **HUG) for _ in range(50)))
    assert set(results) == {ActionCounts(1, 1)}
    assert await store.counts(**HUG) == ActionCounts(1, 1)


async def test_counts_survive_close_and_reopen(backend: Backend) -> None:
    store = await backend.open()
    await asyncio.gather(*(record_one(store, action_id=i, **HUG) for i in range(30)))
    await store.close()
    store = await backend.open()
    assert await store.counts(**HUG) == ActionCounts(30, 30)
    # Dedupe markers survive too: a replay after a restart is still not counted.
    assert await record_one(store, action_id=0, **HUG) in {ActionCounts(n, n) for n in range(1, 31)}
    assert await record_one(store, action_id=30, **HUG) == ActionCounts(31, 31)
    await store.close()
    await backend.assert_consistent()


async def test_cancelled_caller_does_not_leave_a_half_transaction(db_path: Path) -> None:
    # On the database thread (the path taken while another process holds the lock), a call
    # runs whole once queued: a cancelled caller cannot interrupt it.
    async with await SqliteStore.open(db_path, inline=False) as store:
        tasks = [asyncio.create_task(record_one(store, action_id=i, **HUG)) for i in range(40)]
        await asyncio.sleep(0)  # every call has queued its transaction on the database thread
        for task in tasks[::2]:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[::2])
        # A cancelled caller loses the answer, not the write: each queued action commits whole.
        assert await store.counts(**HUG) == ActionCounts(40, 40)
        assert await record_one(store, action_id=99, **HUG) == ActionCounts(41, 41)
    assert_consistent(db_path)


async def test_inline_calls_are_all_or_nothing_under_cancellation(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    store = sqlite_store
    # On the loop's thread a transaction runs in one synchronous step: a call cancelled before
    # it starts writes nothing, one that started has committed.
    tasks = [asyncio.create_task(record_one(store, action_id=i, **HUG)) for i in range(40)]
    for task in tasks[::2]:
        task.cancel()  # before they start
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[::2])
    assert sorted(o.pair for o in outcomes[1::2]) == list(range(1, 21))
    assert await store.counts(**HUG) == ActionCounts(20, 20)
    assert_consistent(db_path)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "database-thread"])
async def test_close_waits_for_calls_in_flight(db_path: Path, inline: bool) -> None:
    store = await SqliteStore.open(db_path, inline=inline)
    tasks = [asyncio.create_task(record_one(store, action_id=i, **HUG)) for i in range(20)]
    await asyncio.sleep(0)
    await store.close()
    assert sorted(r.pair for r in await asyncio.gather(*tasks)) == list(range(1, 21))
    with pytest.raises(StoreError, match="closed"):
        await store.counts(**HUG)
    await store.close()  # idempotent
    async with await SqliteStore.open(db_path) as reopened:
        assert await reopened.counts(**HUG) == ActionCounts(20, 20)


async def test_close_finishes_calls_in_flight_on_every_backend(backend: Backend) -> None:
    store = await backend.open()
    tasks = [asyncio.create_task(record_one(store, action_id=i, **HUG)) for i in range(20)]
    await asyncio.sleep(0)
    await store.close()
    # Calls started before close() are finished and answered; only later calls are refused.
    assert sorted(c.pair for c in await asyncio.gather(*tasks)) == list(range(1, 21))
    with pytest.raises(StoreError, match="closed"):
        await store.counts(**HUG)
    await store.close()  # idempotent
    reopened = await backend.open()
    assert await reopened.counts(**HUG) == ActionCounts(20, 20)


@pytest.mark.parametrize(
    "bad",
    [
        {"action_id": -1},
        {"action_id": 2**63},
        {"guild_id": True},
        {"actor_id": "10"},
        {"action": ""},
    ],
)
async def test_unstorable_arguments_are_value_errors(store: Store, bad: dict) -> None:
    with pytest.raises(ValueError):
        await record_one(store, **{"action_id": 1, **HUG, **bad})


async def test_largest_snowflake_round_trips(store: Store) -> None:
    big = 2**63 - 1
    args = {"guild_id": big, "action": "hug", "actor_id": big - 1, "target_id": big - 2}
    assert await record_one(store, action_id=big, **args) == ActionCounts(1, 1)
    assert await store.claim_return(action_id=big, target_id=big)
    stats = await store.user_stats(guild_id=big, user_id=big - 1)
    assert stats.top_partners[0].user_id == big - 2

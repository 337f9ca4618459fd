"""record_action with several targets: one transaction, dedupe per (interaction, target)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.store import ActionCounts, Store, StoreError
from bot.store.sqlite import SqliteStore
from tests.helpers import assert_consistent
from tests.store.conftest import Backend

GUILD, ACTOR = 1, 10
B, C, D = 20, 30, 40


async def hug(store: Store, action_id: int, *targets: int) -> list[ActionCounts]:
    return await store.record_action(
        action_id=action_id, guild_id=GUILD, action="hug", actor_id=ACTOR, target_ids=targets
    )


def processed_rows(path: Path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT action_id, target_id FROM processed_actions ORDER BY 1, 2")
        return [(int(a), int(t)) for a, t in rows]
    finally:
        conn.close()


async def processed(backend: Backend) -> list[tuple[int, int]]:
    rows = await backend.rows("SELECT action_id, target_id FROM processed_actions ORDER BY 1, 2")
    return [(int(a), int(t)) for a, t in rows]


async def test_every_target_counts_once_in_order(store: Store, backend: Backend) -> None:
    await hug(store, 1, C)
    assert await hug(store, 2, B, C, D) == [
        ActionCounts(1, 1),
        ActionCounts(2, 2),
        ActionCounts(1, 1),
    ]
    for target, pair in ((B, 1), (C, 2), (D, 1)):
        counts = await store.counts(guild_id=GUILD, action="hug", actor_id=ACTOR, target_id=target)
        assert counts == ActionCounts(pair, pair)
    assert await processed(backend) == [(1, C), (2, B), (2, C), (2, D)]
    await backend.assert_consistent()


async def test_a_repeated_target_counts_once_and_answers_in_both_places(
    store: Store,
) -> None:
    await hug(store, 1, B)
    b, c = ActionCounts(2, 2), ActionCounts(1, 1)
    assert await hug(store, 2, B, C, B) == [b, c, b]
    counts = await store.counts(guild_id=GUILD, action="hug", actor_id=ACTOR, target_id=B)
    assert counts == ActionCounts(2, 2)


async def test_a_replay_answers_the_first_counts_without_counting(store: Store) -> None:
    first = await hug(store, 5, B, C)
    await hug(store, 6, B, C)  # counts move on
    assert await hug(store, 5, B, C) == first == [ActionCounts(1, 1), ActionCounts(1, 1)]
    assert await hug(store, 5, C, B) == first[::-1]  # order follows the call
    counts = await store.counts(guild_id=GUILD, action="hug", actor_id=ACTOR, target_id=B)
    assert counts == ActionCounts(2, 2)


async def test_a_replay_with_further_targets_counts_only_those(store: Store) -> None:
    assert await hug(store, 5, B) == [ActionCounts(1, 1)]
    assert await hug(store, 5, B, C) == [ActionCounts(1, 1), ActionCounts(1, 1)]
    assert await hug(store, 5, C, D) == [ActionCounts(1, 1), ActionCounts(1, 1)]
    for target in (B, C, D):
        counts = await store.counts(guild_id=GUILD, action="hug", actor_id=ACTOR, target_id=target)
        assert counts == ActionCounts(1, 1)


async def test_concurrent_replays_of_several_targets_count_once(store: Store) -> None:
    results = await asyncio.gather(*(hug(store, 42, B, C, D) for _ in range(30)))
    assert all(r == [ActionCounts(1, 1)] * 3 for r in results)


async def test_no_targets_counts_nothing(store: Store, backend: Backend) -> None:
    assert await hug(store, 1) == []
    assert await processed(backend) == []
    with pytest.raises(ValueError):
        await hug(store, 1, B, -1)  # every id is checked before anything is written
    assert await processed(backend) == []


async def test_all_targets_or_none(sqlite_store: SqliteStore, db_path: Path) -> None:
    store = sqlite_store

    def refuse_d(conn: sqlite3.Connection) -> None:
        # A failure at the third target, after two were written in the same transaction.
        conn.execute(
            "CREATE TEMP TRIGGER refuse_d BEFORE INSERT ON main.received_totals"
            f" WHEN NEW.target_id = {D} BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
        )

    await store.run_on_connection(refuse_d)
    with pytest.raises(StoreError):
        await hug(store, 1, B, C, D)
    assert processed_rows(db_path) == []
    for target in (B, C):
        counts = await store.counts(guild_id=GUILD, action="hug", actor_id=ACTOR, target_id=target)
        assert counts == ActionCounts(0, 0)
    await store.run_on_connection(lambda conn: conn.execute("DROP TRIGGER temp.refuse_d"))
    assert await hug(store, 1, B, C, D) == [ActionCounts(1, 1)] * 3
    assert_consistent(db_path)


async def test_several_targets_are_one_inline_transaction(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    statements: list[str] = []

    def trace(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(lambda sql: statements.append(sql.split(None, 1)[0].upper()))

    await store.run_on_connection(trace)
    try:
        await hug(store, 1, B, C, D)
    finally:
        await store.run_on_connection(lambda conn: conn.set_trace_callback(None))
    # (PRAGMAs: run_on_connection's own, around the tracing switches)
    transaction = [word for word in statements if word != "PRAGMA"]
    # Per target: pair, received total, day total, dedupe marker.
    assert transaction == ["BEGIN", "SELECT"] + ["INSERT"] * 12 + ["COMMIT"]


async def test_each_target_claims_their_return_and_forget_guild_deletes_them(
    store: Store, backend: Backend
) -> None:
    await hug(store, 1, B, C)
    assert await store.claim_return(action_id=1, target_id=B)
    assert await store.claim_return(action_id=1, target_id=C)
    assert not await store.claim_return(action_id=1, target_id=C)
    rows = await backend.rows(
        "SELECT target_id, guild_id, actor_id FROM returned_actions ORDER BY 1"
    )
    assert rows == [(B, GUILD, ACTOR), (C, GUILD, ACTOR)]  # so forgetting finds them
    await store.forget_guild(guild_id=GUILD)
    assert not await store.is_returned(action_id=1, target_id=B)
    assert not await store.is_returned(action_id=1, target_id=C)
    assert await processed(backend) == []


async def test_forget_user_drops_their_rows_of_a_shared_action(
    store: Store, backend: Backend
) -> None:
    await hug(store, 1, B, C)
    await store.forget_user(user_id=C, keep_opt_out=True)
    assert await processed(backend) == [(1, B)]
    assert await hug(store, 1, B, C) == [ActionCounts(1, 1), ActionCounts(1, 1)]  # B: a replay
    await store.forget_user(user_id=ACTOR, keep_opt_out=True)  # the actor named every row
    assert await processed(backend) == []
    await backend.assert_consistent()

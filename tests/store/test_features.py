"""Hug-back markers, stats, opt-outs, forgetting users and guilds, pruning."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bot.store import ActionCounts, ActionStat, Partner, Store, UserStats
from bot.store.sqlite import DEDUPE_TTL, RETURNED_TTL, SqliteStore
from bot.store.sqlite_schema import MIGRATIONS
from tests.helpers import assert_consistent, record_one
from tests.store.conftest import Backend

A, B, C = 1001, 1002, 1003
G1, G2 = 1, 2


async def act(store: Store, action_id: int, guild: int, action: str, actor: int, target: int):
    return await record_one(
        store, action_id=action_id, guild_id=guild, action=action, actor_id=actor, target_id=target
    )


# ---------------------------------------------------------------- hug back


async def test_claim_return_once_under_concurrent_clicks(store: Store) -> None:
    await act(store, 5, G1, "hug", A, B)
    assert not await store.is_returned(action_id=5, target_id=B)
    claims = (store.claim_return(action_id=5, target_id=B) for _ in range(50))
    results = await asyncio.gather(*claims)
    assert results.count(True) == 1
    assert await store.is_returned(action_id=5, target_id=B)
    # Any id works, also one never recorded (e.g. an opted-out pair was not counted).
    assert await store.claim_return(action_id=6, target_id=B)
    assert not await store.claim_return(action_id=6, target_id=B)


async def test_each_target_claims_only_their_own_return(store: Store) -> None:
    await act(store, 5, G1, "hug", A, B)
    assert await store.claim_return(action_id=5, target_id=C)  # a forged button naming C
    assert not await store.is_returned(action_id=5, target_id=B)  # B's return is untouched
    assert await store.claim_return(action_id=5, target_id=B)
    assert not await store.claim_return(action_id=5, target_id=B)


async def test_a_version_1_marker_without_target_still_counts(db_path: Path) -> None:
    async with await SqliteStore.open(db_path, migrations=MIGRATIONS[:1]):
        pass
    raw = sqlite3.connect(db_path)
    with raw:  # a return claimed by the previous release after its dedupe row was pruned
        raw.execute(
            "INSERT INTO returned_actions (action_id, created_at) VALUES (9, ?)",
            (int(time.time()),),
        )
    raw.close()
    async with await SqliteStore.open(db_path) as store:
        assert await store.is_returned(action_id=9, target_id=B)
        assert not await store.claim_return(action_id=9, target_id=B)
    assert_consistent(db_path)


async def test_claim_return_holds_after_reopen(backend: Backend) -> None:
    async with await backend.open() as store:
        assert await store.claim_return(action_id=77, target_id=B)
    async with await backend.open() as store:
        assert await store.is_returned(action_id=77, target_id=B)
        assert not await store.claim_return(action_id=77, target_id=B)


# ---------------------------------------------------------------- stats


async def test_user_stats_actions_and_top_partners(store: Store) -> None:
    ids = iter(range(1, 1000))
    for _ in range(3):
        await act(store, next(ids), G1, "hug", A, B)
    for _ in range(2):
        await act(store, next(ids), G1, "hug", B, A)
    await act(store, next(ids), G1, "pat", A, C)
    await act(store, next(ids), G1, "pat", C, A)
    await act(store, next(ids), G1, "pat", C, A)
    await act(store, next(ids), G1, "poke", A, A)  # self: counts, but is nobody's partner
    await act(store, next(ids), G2, "hug", A, C)  # another guild: not in G1's stats

    stats = await store.user_stats(guild_id=G1, user_id=A)
    assert stats == UserStats(
        actions=[
            ActionStat("hug", given=3, received=2),
            ActionStat("pat", given=1, received=2),
            ActionStat("poke", given=1, received=1),
        ],
        top_partners=[Partner(B, 5), Partner(C, 3)],
    )
    assert (await store.user_stats(guild_id=G1, user_id=A, top=1)).top_partners == [Partner(B, 5)]
    assert (await store.user_stats(guild_id=G1, user_id=A, top=0)).top_partners == []
    assert await store.user_stats(guild_id=G1, user_id=9999) == UserStats([], [])
    with pytest.raises(ValueError):
        await store.user_stats(guild_id=G1, user_id=A, top=-1)


async def test_partner_ties_are_ordered_by_user_id(store: Store) -> None:
    for i, partner in enumerate((30, 10, 20)):
        await act(store, i, G1, "hug", A, partner)
    partners = (await store.user_stats(guild_id=G1, user_id=A)).top_partners
    assert partners == [Partner(10, 1), Partner(20, 1), Partner(30, 1)]


# ---------------------------------------------------------------- opt-out


async def test_opt_out_round_trip(store: Store) -> None:
    assert not await store.is_opted_out(A)
    await store.set_opt_out(user_id=A, opted_out=True)
    await store.set_opt_out(user_id=A, opted_out=True)  # idempotent
    assert await store.is_opted_out(A)
    assert await store.opted_out_among([A, B, A]) == {A}
    await store.set_opt_out(user_id=A, opted_out=False)
    await store.set_opt_out(user_id=A, opted_out=False)
    assert not await store.is_opted_out(A)
    assert await store.opted_out_among([]) == set()


async def test_opted_out_among_many_ids(store: Store) -> None:
    for uid in (3, 700, 1499):
        await store.set_opt_out(user_id=uid, opted_out=True)
    assert await store.opted_out_among(range(1500)) == {3, 700, 1499}


async def test_an_opt_out_whose_caller_was_cancelled_still_applies(db_path: Path) -> None:
    # On the database thread the write goes on without its caller, and so does the in-memory
    # copy every action consults.
    async with await SqliteStore.open(db_path, inline=False) as store:
        task = asyncio.create_task(store.set_opt_out(user_id=A, opted_out=True))
        await asyncio.sleep(0)  # queued
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.ping()  # after the opt-out: the database thread runs in order
        assert await store.is_opted_out(A)
        assert await store.opted_out_among([A, B]) == {A}
    async with await SqliteStore.open(db_path) as reopened:
        assert await reopened.is_opted_out(A)


# ---------------------------------------------------------------- forgetting


async def _populate(store: Store) -> None:
    await act(store, 1, G1, "hug", A, B)
    await act(store, 2, G1, "hug", A, B)
    await act(store, 3, G1, "hug", C, B)
    await act(store, 4, G1, "hug", B, A)
    await act(store, 5, G1, "pat", A, A)
    await act(store, 6, G2, "hug", A, B)
    await act(store, 7, G2, "pat", C, B)
    assert await store.claim_return(action_id=1, target_id=B)  # names A
    assert await store.claim_return(action_id=3, target_id=B)  # C → B only
    assert await store.claim_return(action_id=7, target_id=B)  # in G2
    await store.set_opt_out(user_id=A, opted_out=True)


async def test_forget_user_deletes_given_and_received_everywhere(
    store: Store, backend: Backend
) -> None:
    await _populate(store)
    await store.forget_user(user_id=A, keep_opt_out=True)

    for guild in (G1, G2):
        assert await store.user_stats(guild_id=guild, user_id=A) == UserStats([], [])
    # B's totals lose what A gave, keep what C gave.
    assert await store.counts(guild_id=G1, action="hug", actor_id=C, target_id=B) == (
        ActionCounts(1, 1)
    )
    assert await store.counts(guild_id=G2, action="hug", actor_id=A, target_id=B) == (
        ActionCounts(0, 0)
    )
    assert (await store.user_stats(guild_id=G1, user_id=B)).top_partners == [Partner(C, 1)]
    # Markers naming A are gone; others stay.
    assert not await store.is_returned(action_id=1, target_id=B)
    assert await store.is_returned(action_id=3, target_id=B)
    # A's dedupe rows are gone too: nothing keeps their ids around.
    assert await act(store, 4, G1, "hug", B, A) == ActionCounts(1, 1)
    assert await store.is_opted_out(A)
    await backend.assert_consistent()


async def test_forget_user_can_drop_the_opt_out(store: Store) -> None:
    await _populate(store)
    await store.forget_user(user_id=A, keep_opt_out=False)
    assert not await store.is_opted_out(A)


async def test_forget_user_leaves_nothing_naming_them(store: Store, backend: Backend) -> None:
    await _populate(store)
    await store.forget_user(user_id=A, keep_opt_out=False)
    for table, columns in {
        "action_counts": ("actor_id", "target_id"),
        "received_totals": ("target_id",),
        "processed_actions": ("actor_id", "target_id"),
        "returned_actions": ("actor_id", "target_id"),
        "opt_outs": ("user_id",),
    }.items():
        where = " OR ".join(f"{c} = ?" for c in columns)
        found = await backend.rows(
            f"SELECT COUNT(*) FROM {table} WHERE {where}", *[A] * len(columns)
        )
        assert found == [(0,)], table


async def test_forget_guild(store: Store, backend: Backend) -> None:
    await _populate(store)
    await store.forget_guild(guild_id=G1)
    assert await store.user_stats(guild_id=G1, user_id=A) == UserStats([], [])
    assert await store.user_stats(guild_id=G1, user_id=B) == UserStats([], [])
    assert await store.counts(guild_id=G2, action="hug", actor_id=A, target_id=B) == (
        ActionCounts(1, 1)
    )
    assert not await store.is_returned(action_id=1, target_id=B)
    assert not await store.is_returned(action_id=3, target_id=B)
    assert await store.is_returned(action_id=7, target_id=B)
    assert await store.is_opted_out(A)  # opt-outs are global
    await backend.assert_consistent()


# ---------------------------------------------------------------- pruning


async def test_markers_expire_on_schedule(backend: Backend) -> None:
    now = [1_700_000_000.0]
    clock = lambda: now[0]  # noqa: E731

    async with await backend.open(clock=clock) as store:
        await act(store, 1, G1, "hug", A, B)
        assert await store.claim_return(action_id=1, target_id=B)

    now[0] += DEDUPE_TTL - 60  # within a day: a replay is still recognised
    async with await backend.open(clock=clock) as store:
        assert await act(store, 1, G1, "hug", A, B) == ActionCounts(1, 1)

    now[0] += 2 * DEDUPE_TTL  # dedupe row pruned at open; the hug-back marker lives on
    async with await backend.open(clock=clock) as store:
        assert await store.is_returned(action_id=1, target_id=B)
        assert await act(store, 1, G1, "hug", A, B) == ActionCounts(2, 2)

    now[0] += RETURNED_TTL
    async with await backend.open(clock=clock) as store:
        assert not await store.is_returned(action_id=1, target_id=B)


async def test_pruning_also_runs_while_open(backend: Backend) -> None:
    now = [1_700_000_000.0]
    store = await backend.open(clock=lambda: now[0])
    try:
        for i in range(10):
            await act(store, i, G1, "hug", A, B)
        now[0] += 2 * DEDUPE_TTL
        await act(store, 100, G1, "hug", A, B)  # schedules a background prune
    finally:
        await store.close()  # waits for it
    assert await backend.rows("SELECT action_id FROM processed_actions") == [(100,)]


async def test_sqlite_leaves_replays_to_the_one_process_memory(sqlite_store: SqliteStore) -> None:
    # One process per SQLite file: the tree remembers the interactions it answered.
    assert await sqlite_store.first_delivery(5) and await sqlite_store.first_delivery(5)
    with pytest.raises(ValueError):
        await sqlite_store.first_delivery(-5)

"""Blocks (one action refused as a target) on both backends: set and lifted, the limit, the
gate `opted_out_among(..., refusing=...)` from memory and from the database, /forgetme,
/mydata, a restart, and (PostgreSQL) another process's blocks reaching the cache."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.store import Store
from bot.store.blocks import MAX_BLOCKS, KeptBlock, TooManyBlocks
from tests.store.conftest import Backend, PostgresBackend

A, B, C = 10, 20, 30
HUG = ("hug", "gif")  # what a /hug asks: its category and its kind
PAT = ("pat", "gif")


async def test_a_block_refuses_that_action_only(store: Store) -> None:
    assert await store.blocks_of(A) == frozenset()
    assert await store.set_block(user_id=A, action="hug", blocked=True) == {"hug"}
    assert await store.set_block(user_id=A, action="hug", blocked=True) == {"hug"}  # idempotent
    assert await store.opted_out_among([A, B], refusing=HUG) == {A}
    assert await store.opted_out_among([A, B], refusing=PAT) == set()
    assert await store.opted_out_among([A, B]) == set()  # not an opt-out
    assert not await store.is_opted_out(A)
    assert await store.blocks_of(A) == {"hug"}
    assert await store.set_block(user_id=A, action="hug", blocked=False) == frozenset()
    assert await store.opted_out_among([A], refusing=HUG) == set()


async def test_a_kind_blocks_every_action_of_it(store: Store) -> None:
    await store.set_block(user_id=A, action="gif", blocked=True)
    assert await store.opted_out_among([A], refusing=HUG) == {A}
    assert await store.opted_out_among([A], refusing=PAT) == {A}
    await store.set_opt_out(user_id=B, opted_out=True)  # an opt-out still refuses everything
    assert await store.opted_out_among([A, B, C], refusing=PAT) == {A, B}


async def test_at_most_max_blocks_per_member(store: Store) -> None:
    for n in range(MAX_BLOCKS):
        await store.set_block(user_id=A, action=f"a{n}", blocked=True)
    with pytest.raises(TooManyBlocks):
        await store.set_block(user_id=A, action="one-more", blocked=True)
    assert len(await store.blocks_of(A)) == MAX_BLOCKS
    assert await store.opted_out_among([A], refusing=("one-more",)) == set()
    # One already there is still fine; once one is lifted, another fits.
    assert len(await store.set_block(user_id=A, action="a0", blocked=True)) == MAX_BLOCKS
    await store.set_block(user_id=A, action="a0", blocked=False)
    assert "one-more" in await store.set_block(user_id=A, action="one-more", blocked=True)
    assert await store.opted_out_among([A], refusing=("one-more",)) == {A}
    assert await store.set_block(user_id=B, action="a1", blocked=True) == {"a1"}  # per member


async def test_blocks_survive_a_restart_and_go_with_forgetme(backend: Backend) -> None:
    store = await backend.open()
    await store.set_block(user_id=A, action="hug", blocked=True)
    await store.set_block(user_id=B, action="hug", blocked=True)
    await store.close()
    again = await backend.open()
    assert await again.opted_out_among([A, B, C], refusing=HUG) == {A, B}
    await again.forget_user(user_id=A, keep_opt_out=True)
    assert await again.blocks_of(A) == frozenset()
    assert await again.opted_out_among([A, B], refusing=HUG) == {B}
    assert await backend.rows("SELECT user_id FROM action_blocks") == [(B,)]


async def test_the_database_answers_the_gate_when_memory_cannot(store: Store) -> None:
    await store.set_block(user_id=A, action="hug", blocked=True)
    await store.set_opt_out(user_id=B, opted_out=True)
    store._known_blocks = lambda: None  # memory unsure (the listener lost, a failed write)
    assert await store.opted_out_among([A, B, C], refusing=HUG) == {A, B}
    assert await store.opted_out_among([A, B, C], refusing=PAT) == {B}
    assert await store.opted_out_among([A, B, C]) == {B}


async def test_user_data_lists_the_blocks(store: Store) -> None:
    await store.set_block(user_id=A, action="pat", blocked=True)
    await store.set_block(user_id=A, action="hug", blocked=True)
    data = await store.user_data(A)
    assert [b.action for b in data.blocks] == ["hug", "pat"]
    assert all(isinstance(b, KeptBlock) and b.created_at > 0 for b in data.blocks)
    assert (await store.user_data(B)).blocks == []


async def test_a_block_whose_caller_was_cancelled_still_applies(sqlite_store: Store) -> None:
    # SQLite's memory is settled by the write's end, not by its caller (as for opt-outs).
    store = sqlite_store
    task = asyncio.create_task(store.set_block(user_id=A, action="hug", blocked=True))
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):  # SQLite may have finished inline
        await task

    async def blocked() -> bool:
        return await store.opted_out_among([A], refusing=HUG) == {A}

    await eventually(blocked)


# -- PostgreSQL: several processes ---------------------------------------------------------


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(pg_url)
    try:
        yield backend
    finally:
        await backend.close_all()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the change never arrived"
        await asyncio.sleep(0.01)


async def test_a_block_made_in_one_process_is_honoured_by_another(pg: PostgresBackend) -> None:
    here, elsewhere = await pg.open(), await pg.open()
    assert await here.opted_out_among([A, B], refusing=HUG) == set()
    assert here._known_blocks() == {}  # live: answered from memory

    async def refused(expected: set[int], refusing: tuple[str, ...] = HUG) -> bool:
        return await here.opted_out_among([A, B], refusing=refusing) == expected

    await elsewhere.set_block(user_id=A, action="hug", blocked=True)
    await eventually(lambda: refused({A}))
    assert here._known_blocks() == {A: {"hug"}}  # from memory, not the database
    assert await refused(set(), PAT)
    await elsewhere.set_block(user_id=B, action="gif", blocked=True)
    await eventually(lambda: refused({B}, PAT))
    # Lifted (a deletion: the topic is read whole again) and forgotten.
    await elsewhere.set_block(user_id=A, action="hug", blocked=False)
    await eventually(lambda: refused({B}))
    await elsewhere.forget_user(user_id=B, keep_opt_out=False)
    await eventually(lambda: refused(set()))
    assert here._known_blocks() == {}


async def test_the_limit_holds_under_concurrent_writers(pg: PostgresBackend) -> None:
    one, two = await pg.open(), await pg.open()
    for n in range(MAX_BLOCKS - 1):
        await one.set_block(user_id=A, action=f"a{n}", blocked=True)
    results = await asyncio.gather(
        one.set_block(user_id=A, action="x", blocked=True),
        two.set_block(user_id=A, action="y", blocked=True),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["TooManyBlocks", "frozenset"], results
    assert await pg.rows("SELECT COUNT(*) FROM action_blocks") == [(MAX_BLOCKS,)]

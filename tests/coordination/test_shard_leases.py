"""Shard leases of PostgresCoordinator (two coordinators: two processes of the bot on one
database): all or none, renewed while held, released on close, taken over after a holder died,
and given up (`on_lost`) when another process took them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from bot.coordination import CoordinationError, LocalCoordinator, PostgresCoordinator
from tests.coordination.conftest import CoordinatorFactory

LEASE = 1.0
HANG_GUARD = 30.0


def never_lost() -> None:
    raise AssertionError("a lease was lost")


async def claim_within(coordinator: PostgresCoordinator, shards: list[int], timeout: float) -> None:
    """Claim until it succeeds (a holder that died: its lease must expire first)."""

    async def attempts() -> None:
        while True:
            if await coordinator.claim_shards(shards, 4, lease=LEASE, on_lost=never_lost):
                return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(attempts(), timeout)


async def test_all_or_none_renewed_and_released(
    open_coordinator: CoordinatorFactory, pg_url: str
) -> None:
    first, second = await open_coordinator(), await open_coordinator()
    assert await first.claim_shards([0, 1], 4, lease=LEASE, on_lost=never_lost)
    assert await first.claim_shards([0, 1], 4, lease=LEASE, on_lost=never_lost)  # ours already
    # Shard 1 is held: the second gets neither, not even the free shard 2.
    assert not await second.claim_shards([1, 2], 4, lease=LEASE, on_lost=never_lost)
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT shard, holder FROM coord_shard_leases ORDER BY shard")
        assert [(r["shard"], r["holder"]) for r in rows] == [
            (0, first.process_id),
            (1, first.process_id),
        ]
        # Several lease times later the first still holds them: it renews.
        await asyncio.sleep(LEASE * 3)
        assert not await second.claim_shards([0], 4, lease=LEASE, on_lost=never_lost)
        assert await second.claim_shards([2, 3], 4, lease=LEASE, on_lost=never_lost)
        await first.close()  # a clean stop: released at once
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM coord_shard_leases WHERE holder = $1", first.process_id
            )
            == 0
        )
    finally:
        await conn.close()


async def test_a_dead_holders_shards_are_taken_over_after_the_lease(
    open_coordinator: CoordinatorFactory,
) -> None:
    dead, heir = await open_coordinator(), await open_coordinator()
    assert await dead.claim_shards([0], 4, lease=LEASE, on_lost=never_lost)
    # As kill -9: no renewal, no release.
    renewer = dead._leases._renewer
    assert renewer is not None
    renewer.cancel()
    assert not await heir.claim_shards([0], 4, lease=LEASE, on_lost=never_lost)
    await claim_within(heir, [0], timeout=HANG_GUARD)


async def test_a_holder_whose_lease_was_taken_gives_its_shards_up(
    open_coordinator: CoordinatorFactory, pg_url: str
) -> None:
    holder = await open_coordinator()
    lost = asyncio.Event()
    assert await holder.claim_shards([0, 1], 4, lease=LEASE, on_lost=lost.set)
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("UPDATE coord_shard_leases SET holder = 'another' WHERE shard = 1")
    finally:
        await conn.close()
    await asyncio.wait_for(lost.wait(), HANG_GUARD)


async def test_one_process_alone_needs_no_lease(tmp_path: Path) -> None:
    local = LocalCoordinator(tmp_path)
    assert await local.claim_shards([0, 1], 2, lease=LEASE, on_lost=never_lost)
    assert await local.claim_shards([0, 1], 2, lease=LEASE, on_lost=never_lost)


async def test_a_database_that_does_not_answer_is_not_taken_for_a_holder(
    open_coordinator: CoordinatorFactory,
) -> None:
    """A claim that cannot reach PostgreSQL raises (the bot waits and says why) instead of
    answering "held" (which SHARD_CLAIM=exit would turn into exit 2)."""
    coordinator = await open_coordinator()
    coordinator._pool.terminate()  # every connection gone, as with the server away
    with pytest.raises(CoordinationError) as raised:
        await coordinator.claim_shards([0], 1, lease=LEASE, on_lost=never_lost)
    assert str(raised.value).startswith("PostgreSQL did not answer: ")
    assert "\n" not in str(raised.value)

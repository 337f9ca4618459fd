"""PostgresCoordinator against a real PostgreSQL: two coordinators on one database are two
processes of the bot (each its own pool and connections)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from bot.coordination import (
    CoordinationError,
    LocalCoordinator,
    PostgresCoordinator,
    open_coordinator,
)
from bot.coordination.postgres import IDENTIFY_CLASS
from bot.coordination.postgres_schema import MIGRATIONS
from tests.coordination.conftest import CoordinatorFactory
from tests.pg import PostgresCluster

HANG_GUARD = 30.0  # a lock that is never released would otherwise hang until the test timeout


# -- opening --------------------------------------------------------------------------------


async def test_open_coordinator_picks_postgres_by_scheme(
    pg_cluster: PostgresCluster, tmp_path: Path
) -> None:
    for scheme in ("postgresql", "postgres"):
        name = pg_cluster.create_database().rsplit("/", 1)[1]
        url = pg_cluster.url(name, scheme=scheme)
        async with await open_coordinator(url, tmp_path) as coordinator:
            assert isinstance(coordinator, PostgresCoordinator)
    local = await open_coordinator(str(tmp_path / "nekocord.db"), tmp_path)
    assert isinstance(local, LocalCoordinator)
    assert local.budget is None


async def test_concurrent_opens_migrate_once(pg_url: str) -> None:
    first, second, third = await asyncio.gather(
        *(PostgresCoordinator.open(pg_url) for _ in range(3))
    )
    try:
        conn = await asyncpg.connect(pg_url)
        try:
            versions = await conn.fetch("SELECT version FROM coord_schema_version")
            live = await conn.fetchval("SELECT count(*) FROM coord_processes")
        finally:
            await conn.close()
        assert [row["version"] for row in versions] == list(range(1, len(MIGRATIONS) + 1))
        assert live == 3
    finally:
        for coordinator in (first, second, third):
            await coordinator.close()


async def test_unreachable_database_is_one_line_without_the_url(
    pg_cluster: PostgresCluster,
) -> None:
    url = f"postgresql://nekocord:hunter2@127.0.0.1:{pg_cluster.port}/no_such_database"
    with pytest.raises(CoordinationError) as raised:
        await PostgresCoordinator.open(url)
    message = str(raised.value)
    assert "no_such_database" in message or "does not exist" in message
    assert "hunter2" not in message and "\n" not in message


# -- IDENTIFY pacing ------------------------------------------------------------------------


async def test_same_bucket_is_paced_across_processes(open_coordinator: CoordinatorFactory) -> None:
    first, second = await open_coordinator(), await open_coordinator()
    window = 1.0
    await first.before_identify(0, window)
    identified = time.monotonic()
    await asyncio.wait_for(second.before_identify(0, window), HANG_GUARD)
    # The lock is held `window` seconds after the first returned (a little tolerance for the
    # instant between scheduling the release and reading the clock here).
    assert time.monotonic() - identified >= window - 0.05


async def test_other_buckets_do_not_wait(open_coordinator: CoordinatorFactory) -> None:
    first, second = await open_coordinator(), await open_coordinator()
    await first.before_identify(0, 600.0)
    # Held for ten minutes in bucket 0: bucket 1 must not wait for it.
    await asyncio.wait_for(second.before_identify(1, 600.0), HANG_GUARD)
    await asyncio.wait_for(first.before_identify(2, 600.0), HANG_GUARD)


async def test_a_dead_process_releases_its_lock(
    open_coordinator: CoordinatorFactory, pg_url: str
) -> None:
    doomed, survivor = await open_coordinator(), await open_coordinator()
    await doomed.before_identify(3, 600.0)
    admin = await asyncpg.connect(pg_url)
    try:
        holder = await admin.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = $1::int::oid AND objid = 3 AND objsubid = 2",
            IDENTIFY_CLASS,
        )
        assert holder is not None
        # The process dies: PostgreSQL ends its session, and with it the lock.
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", holder)
    finally:
        await admin.close()
    await asyncio.wait_for(survivor.before_identify(3, 600.0), HANG_GUARD)


async def test_lost_database_falls_back_to_local_pacing(
    open_coordinator: CoordinatorFactory, pg_cluster: PostgresCluster
) -> None:
    coordinator = await open_coordinator()
    pg_cluster.stop()
    try:
        window = 0.5
        await asyncio.wait_for(coordinator.before_identify(0, window), HANG_GUARD)
        identified = time.monotonic()
        # Still paced within this process while the database is away.
        await asyncio.wait_for(coordinator.before_identify(0, window), HANG_GUARD)
        assert time.monotonic() - identified >= window - 0.05
        # Nothing is registered without the database, and nothing is claimed to be.
        calls: list[str] = []

        async def register() -> None:
            calls.append("register")

        assert not await coordinator.register_commands("global", "ddd", register)
        assert calls == []
        assert await coordinator.registered_digest("global") is None
    finally:
        pg_cluster.restart()


# -- command registration -------------------------------------------------------------------


async def test_one_registration_for_one_digest(open_coordinator: CoordinatorFactory) -> None:
    first, second = await open_coordinator(), await open_coordinator()
    calls: list[str] = []

    async def register() -> None:
        calls.append("register")
        await asyncio.sleep(0.2)  # long enough for the other process to queue on the lock

    ran = await asyncio.gather(
        first.register_commands("global", "aaa", register),
        second.register_commands("global", "aaa", register),
    )
    assert sorted(ran) == [False, True]
    assert calls == ["register"]
    assert await second.registered_digest("global") == "aaa"
    assert await first.registered_digest("guild:1") is None

    assert await second.register_commands("global", "bbb", register)
    assert calls == ["register", "register"]
    assert await first.registered_digest("global") == "bbb"


async def test_failed_registration_stores_nothing(open_coordinator: CoordinatorFactory) -> None:
    first, second = await open_coordinator(), await open_coordinator()

    async def broken() -> None:
        raise RuntimeError("Discord said no")

    with pytest.raises(RuntimeError, match="Discord said no"):
        await first.register_commands("global", "ccc", broken)
    assert await second.registered_digest("global") is None

    async def works() -> None:
        pass

    # The lock was released with the failed transaction: the other process gets it at once.
    assert await asyncio.wait_for(second.register_commands("global", "ccc", works), HANG_GUARD)
    assert await first.registered_digest("global") == "ccc"

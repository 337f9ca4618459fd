"""What only the shared PostgreSQL backend must get right: several processes (here: several
stores, each with its own pool) on one database, migrations started at once, a replay racing its
original, a server restart under load, and start-up errors told apart (retry or exit 2)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg
import pytest

from bot.coordination import PostgresCoordinator
from bot.store import (
    ActionCounts,
    GuildSettings,
    SettingsChange,
    Store,
    StoreError,
    StoreUnreachable,
)
from bot.store import postgres_queries as queries
from bot.store.postgres import LISTENER_NAME, QUERY_TIMEOUT, RETRY_SECONDS, PostgresStore
from bot.store.postgres_schema import MIGRATIONS, VERSION_TABLE, PgMigration
from tests.faults.netns import FaultProxy, Loopback
from tests.helpers import record_one
from tests.pg import SUPERUSER, PostgresCluster
from tests.store.conftest import PostgresBackend

GUILD, ACTOR, B, C = 1, 10, 20, 30
HUG = {"guild_id": GUILD, "action": "hug", "actor_id": ACTOR}


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(pg_url)
    try:
        yield backend
    finally:
        await backend.close_all()


async def waiting_on_locks(url: str, count: int) -> None:
    """Until `count` sessions of the database wait on a lock (no sleep-and-hope)."""
    conn = await asyncpg.connect(url)
    try:
        query = (
            "SELECT COUNT(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        while True:
            if await conn.fetchval(query) >= count:
                return
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def test_close_lets_calls_queued_for_a_connection_finish(pg: PostgresBackend) -> None:
    # Two connections for 30 calls: most wait in the pool's queue when close() starts. asyncpg's
    # Pool.close() alone closed a connection a queued call had just taken, mid-COMMIT: the call
    # failed although its row was stored (CI saw "answered 1, stored 2").
    store = await pg.open(pool_size=2)
    tasks = [
        asyncio.create_task(record_one(store, action_id=i, target_id=B, **HUG)) for i in range(30)
    ]
    await asyncio.sleep(0)
    await store.close()
    assert sorted(c.pair for c in await asyncio.gather(*tasks)) == list(range(1, 31))
    reopened = await pg.open()
    assert await reopened.counts(target_id=B, **HUG) == ActionCounts(30, 30)


# ---------------------------------------------------------------- several processes


async def test_two_processes_count_the_same_interactions_exactly(pg: PostgresBackend) -> None:
    first, second = await pg.open(pool_size=5), await pg.open(pool_size=5)

    async def record(store: Store, action_id: int) -> list[ActionCounts]:
        return await store.record_action(action_id=action_id, **HUG, target_ids=[B, C])

    # Every interaction delivered to both processes (a replay after a shard moved), at once.
    calls = [record(store, i) for i in range(1, 61) for store in (first, second)]
    results = await asyncio.gather(*calls)
    for i in range(0, len(results), 2):
        assert results[i] == results[i + 1]  # both deliveries answer the same counts
    assert sorted(r[0].pair for r in results[::2]) == list(range(1, 61))
    for target in (B, C):
        assert await first.counts(**HUG, target_id=target) == ActionCounts(60, 60)
    await pg.assert_consistent()

    claims = [
        store.claim_return(action_id=i, target_id=B)
        for i in range(1, 61)
        for store in (first, second, first)
    ]
    won = await asyncio.gather(*claims)
    assert sum(won) == 60  # each return claimed exactly once across both processes
    assert [sum(won[i : i + 3]) for i in range(0, len(won), 3)] == [1] * 60


async def test_a_replay_racing_its_original_answers_its_counts(pg: PostgresBackend) -> None:
    first, second = await pg.open(), await pg.open()
    await first.record_action(action_id=1, **HUG, target_ids=[B])
    blocker = await asyncpg.connect(pg.url)
    try:
        # Hold B's received total so the original stops right after its marker and pair count.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT * FROM received_totals FOR UPDATE")
        original = asyncio.create_task(first.record_action(action_id=2, **HUG, target_ids=[B]))
        await waiting_on_locks(pg.url, 1)
        replay = asyncio.create_task(second.record_action(action_id=2, **HUG, target_ids=[B]))
        await waiting_on_locks(pg.url, 2)  # the replay waits on the original's marker
        await transaction.rollback()
    finally:
        await blocker.close()
    assert await original == await replay == [ActionCounts(2, 2)]
    assert await second.counts(**HUG, target_id=B) == ActionCounts(2, 2)
    await pg.assert_consistent()


async def test_each_interaction_is_first_delivered_to_one_process_only(
    pg: PostgresBackend,
) -> None:
    now = [1_700_000_000.0]
    first, second = await pg.open(clock=lambda: now[0]), await pg.open(clock=lambda: now[0])
    deliveries = [store.first_delivery(i) for i in range(1, 101) for store in (first, second)]
    results = await asyncio.gather(*deliveries)
    assert [results[i] + results[i + 1] for i in range(0, 200, 2)] == [1] * 100
    assert not await first.first_delivery(1) and not await second.first_delivery(100)
    with pytest.raises(ValueError):
        await first.first_delivery(-1)
    # Remembered for a day (replays come within minutes), then pruned.
    now[0] += 2 * 24 * 3600
    await (await pg.open(clock=lambda: now[0])).close()  # prunes at open
    assert await pg.rows("SELECT COUNT(*) FROM seen_interactions") == [(0,)]


async def test_first_delivery_whose_answer_was_lost_is_still_first_on_its_retry(
    pg: PostgresBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The marker commits, then the connection goes before its answer arrives (a network cut:
    # tests/faults/test_partitions.py saw it through its fault proxy). The retry on a new
    # connection found the marker and took the interaction for another process's: it was
    # never answered.
    store = await pg.open()
    real = queries.first_delivery
    lost: list[int] = []

    async def answer_lost(conn: asyncpg.Connection, **arguments: int) -> bool:
        result = await real(conn, **arguments)
        if not lost:
            lost.append(arguments["interaction_id"])
            conn.terminate()
            raise asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation")
        return result

    monkeypatch.setattr(queries, "first_delivery", answer_lost)
    assert await store.first_delivery(7)
    assert lost == [7]
    assert await pg.rows("SELECT COUNT(*) FROM seen_interactions") == [(1,)]
    # Another delivery of it (a replay, here or in another process) is still not first.
    assert not await store.first_delivery(7)
    assert not await (await pg.open()).first_delivery(7)


@pytest.fixture
async def cut_link(pg_cluster: PostgresCluster) -> AsyncIterator[FaultProxy]:
    """A relay on loopback to the test cluster that can black-hole its connections."""
    proxy = FaultProxy(Loopback(), ("127.0.0.1", pg_cluster.port))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def test_a_cut_link_fails_calls_instead_of_hanging(pg_url: str, cut_link: FaultProxy) -> None:
    # A partition drops packets: nothing fails, a statement waits for its answer until TCP gives
    # up, minutes later (tests/faults/test_partitions.py: every interaction went unanswered).
    url = pg_url.replace(f":{urlsplit(pg_url).port}/", f":{cut_link.port}/")
    store = await PostgresStore.open(url)
    coordinator = await PostgresCoordinator.open(url)
    try:
        assert await record_one(store, action_id=1, target_id=B, **HUG) == ActionCounts(1, 1)
        cut_link.black_hole()
        # The store gives up after RETRY_SECONDS (its last attempt may take QUERY_TIMEOUT):
        # the bound is that with room for a loaded machine. Before the fix the call hung for
        # over 30 s, and an interaction waiting on it went unanswered.
        bound = 3 * (RETRY_SECONDS + QUERY_TIMEOUT)
        action = asyncio.ensure_future(record_one(store, action_id=2, target_id=B, **HUG))
        take = asyncio.ensure_future(coordinator.budget.take("hug", 10, 60.0))
        # Not wait_for: cancelling the call would end it by itself.
        _, pending = await asyncio.wait({action, take}, timeout=bound)
        for task in pending:
            task.cancel()
        assert not pending, "a call on the cut link hangs"
        assert isinstance(action.exception(), StoreError), action.exception()
        assert take.result() is None  # the shared budget grants the take without the database
        cut_link.heal()
        # Back by itself. The failed action may still land: what its dropped connection had
        # sent arrives when the link heals, as TCP retransmits it (stored <= sent).
        after = await record_one(store, action_id=3, target_id=B, **HUG)
        assert after.pair == after.received_total and after.pair in (2, 3), after
    finally:
        cut_link.heal()
        await coordinator.close()
        await store.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Until `check()` holds: another process's change arrives as a notification."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the change never arrived"
        await asyncio.sleep(0.01)


async def test_opt_outs_and_settings_written_elsewhere_reach_the_cache(
    pg: PostgresBackend,
) -> None:
    here, elsewhere = await pg.open(), await pg.open()
    assert await here.opted_out_among([B, C]) == set()
    assert await here.guild_settings(GUILD) == GuildSettings()  # now cached here
    await elsewhere.set_opt_out(user_id=B, opted_out=True)
    await elsewhere.save_guild_settings(GUILD, GuildSettings(pings=False))
    await eventually(lambda: here.is_opted_out(B))
    assert await here.opted_out_among([B, C]) == {B}

    async def pings_off() -> bool:
        return await here.guild_settings(GUILD) == GuildSettings(pings=False)

    await eventually(pings_off)
    await elsewhere.forget_user(user_id=B, keep_opt_out=False)
    await elsewhere.forget_guild(guild_id=GUILD)

    async def forgotten() -> bool:
        return not await here.is_opted_out(B) and not await pings_off()

    await eventually(forgotten)
    await here.close()
    await elsewhere.close()


async def test_without_its_listener_a_store_reads_the_database(pg: PostgresBackend) -> None:
    here, elsewhere = await pg.open(), await pg.open()
    assert await here.guild_settings(GUILD) == GuildSettings()
    # Cut every listener but the writer's: `here` cannot hear changes any more.
    await pg.rows(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        LISTENER_NAME,
    )
    cache = here._cache  # the listener's state; it listens again 0.5 s after the loss
    assert cache is not None

    async def lost() -> bool:
        return not cache.live

    await eventually(lost)
    # Right after the commit, without waiting for any notification.
    await elsewhere.set_opt_out(user_id=B, opted_out=True)
    await elsewhere.save_guild_settings(GUILD, GuildSettings(pings=False))
    assert await here.is_opted_out(B)
    assert await here.guild_settings(GUILD) == GuildSettings(pings=False)
    # The listener comes back (opt-outs read again) and later changes arrive again.
    await elsewhere.set_opt_out(user_id=C, opted_out=True)
    await eventually(lambda: here.is_opted_out(C))
    await here.close()
    await elsewhere.close()


async def test_a_write_whose_change_cannot_be_read_back_drops_the_cache(
    pg: PostgresBackend, caplog: pytest.LogCaptureFixture
) -> None:
    store = await pg.open()
    assert await store.guild_settings(GUILD) == GuildSettings()  # cached
    blocker = await asyncpg.connect(pg.url)
    try:
        # The read of changes (it reads opt_outs too) now waits; the settings write does not.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE opt_outs IN ACCESS EXCLUSIVE MODE")
        changed = await store.change_guild_settings(GUILD, SettingsChange(pings=False))
        assert changed == GuildSettings(pings=False)
        assert not store._cache.live  # type: ignore[attr-defined]
        assert await store.guild_settings(GUILD) == changed  # from the database
        await transaction.rollback()
    finally:
        await blocker.close()
    assert "Reading changes is slow: listening again" in caplog.text

    async def back() -> bool:
        return bool(store._cache.live)  # type: ignore[attr-defined]

    await eventually(back, timeout=30)
    assert await store.guild_settings(GUILD) == GuildSettings(pings=False)


# ---------------------------------------------------------------- migrations


async def versions(url: str) -> list[tuple[int, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(f"SELECT version, description FROM {VERSION_TABLE} ORDER BY 1")
        return [(int(v), str(d)) for v, d in rows]
    finally:
        await conn.close()


async def test_concurrent_opens_migrate_once(pg: PostgresBackend) -> None:
    stores = await asyncio.gather(*(pg.open(pool_size=2) for _ in range(8)))
    assert len(stores) == 8
    assert await versions(pg.url) == [(m.version, m.description) for m in MIGRATIONS]
    await stores[0].record_action(action_id=1, **HUG, target_ids=[B])
    assert await stores[-1].counts(**HUG, target_id=B) == ActionCounts(1, 1)


async def test_a_version_1_database_is_brought_to_the_current_schema(pg: PostgresBackend) -> None:
    async with await pg.open(migrations=MIGRATIONS[:1]) as old:
        # Rows as version 1's code wrote them (today's record_action needs version 3, today's
        # opt-outs version 4).
        await old.run_in_transaction(write_version_1_rows)
    assert [v for v, _ in await versions(pg.url)] == [1]
    async with await pg.open() as store:
        assert [v for v, _ in await versions(pg.url)] == [m.version for m in MIGRATIONS]
        assert await store.counts(**HUG, target_id=B) == ActionCounts(1, 1)
        assert await store.is_opted_out(C)
        assert await store.first_delivery(1) and not await store.first_delivery(1)
        # The old marker still dedupes; a new action counts through the new function.
        assert await store.record_action(action_id=1, **HUG, target_ids=[B]) == [ActionCounts(1, 1)]
        assert await store.record_action(action_id=2, **HUG, target_ids=[B]) == [ActionCounts(2, 2)]


async def test_version_3_settings_become_columns_and_unreadable_ones_are_left_out(
    pg: PostgresBackend, caplog: pytest.LogCaptureFixture
) -> None:
    good = GuildSettings(
        disabled=frozenset({"kiss", "gif"}), channels=(7, 5), cooldown=(2, 30), pings=False
    )
    rows = {
        1: '{"channels":[7,5],"cooldown":[2,30],"disabled":["gif","kiss"],"pings":false}',
        2: '{"pings": false}',  # written by an older release: the rest are defaults
        3: "[" * 100_000 + "]" * 100_000,
        4: "x" * 10_000_000,
        5: '{"channels": ["a"]}',
        6: '{"cooldown": [3]}',
    }
    async with await pg.open(migrations=MIGRATIONS[:3]) as old:

        async def write(conn: asyncpg.Connection) -> None:
            for guild, text in rows.items():
                await conn.execute("INSERT INTO guild_settings VALUES ($1, $2, 0)", guild, text)
            await conn.execute("INSERT INTO opt_outs VALUES ($1, 0)", C)

        await old.run_in_transaction(write)
    with caplog.at_level(logging.WARNING, logger="bot.store.postgres_schema"):
        store = await pg.open()
    assert await store.guild_settings(1) == good
    assert await store.guild_settings(2) == GuildSettings(pings=False)
    for guild in (3, 4, 5, 6):
        assert await store.guild_settings(guild) == GuildSettings()
    assert await pg.rows("SELECT guild_id FROM guild_settings ORDER BY 1") == [(1,), (2,)]
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert [m.split(" left out")[0] for m in left_out] == [
        f"Unreadable settings of guild {guild}" for guild in (3, 4, 5, 6)
    ]
    assert all(len(m) < 400 for m in left_out)
    # Opt-outs of version 3 are in the cache, and changes go on from there.
    assert await store.is_opted_out(C)
    await store.change_guild_settings(2, SettingsChange(enable=frozenset({"x"}), pings=True))
    assert await store.guild_settings(2) == GuildSettings()


async def write_version_1_rows(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO processed_actions VALUES ($1, $2, $3, $4, 'hug', 1, 1, $5)",
        *(1, B, GUILD, ACTOR, int(time.time())),
    )
    await conn.execute("INSERT INTO action_counts VALUES ($1, $2, $3, 'hug', 1)", GUILD, ACTOR, B)
    await conn.execute("INSERT INTO received_totals VALUES ($1, $2, 'hug', 1)", GUILD, B)
    await conn.execute("INSERT INTO opt_outs VALUES ($1, $2)", C, int(time.time()))


async def test_a_later_version_migrates_an_older_database_and_reopening_is_a_no_op(
    pg: PostgresBackend,
) -> None:
    async with await pg.open() as store:
        await store.record_action(action_id=1, **HUG, target_ids=[B])
        await store.set_opt_out(user_id=C, opted_out=True)
    later = (
        *MIGRATIONS,
        PgMigration(
            MIGRATIONS[-1].version + 1,
            "a later release's step",
            ("ALTER TABLE opt_outs ADD COLUMN reason TEXT",),
        ),
    )
    async with await pg.open(migrations=later) as store:
        assert await store.counts(**HUG, target_id=B) == ActionCounts(1, 1)
        assert await store.is_opted_out(C)
    async with await pg.open(migrations=later):
        pass  # nothing left to apply
    assert await versions(pg.url) == [(m.version, m.description) for m in later]
    assert await pg.rows("SELECT user_id, reason FROM opt_outs") == [(C, None)]
    # This release meeting the later one's database refuses it rather than guess.
    with pytest.raises(StoreError, match="newer than this nekocord supports"):
        await pg.open()


async def test_a_failing_step_is_rolled_back_whole(pg: PostgresBackend) -> None:
    async with await pg.open():
        pass
    broken = (
        *MIGRATIONS,
        PgMigration(99, "broken", ("CREATE TABLE half (n int)", "SELECT * FROM nowhere")),
    )
    with pytest.raises(StoreError, match="schema version 99"):
        await pg.open(migrations=broken)
    assert await pg.rows("SELECT to_regclass('half') IS NULL") == [(True,)]
    assert [v for v, _ in await versions(pg.url)] == [m.version for m in MIGRATIONS]


# ---------------------------------------------------------------- failures


async def answered_at_least(answered: dict[int, ActionCounts], count: int) -> None:
    while True:
        if len(answered) >= count:
            return
        await asyncio.sleep(0.01)


@pytest.mark.timeout(120)
async def test_a_server_restart_under_load_loses_nothing_acknowledged(
    pg: PostgresBackend, pg_cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    store = await pg.open(pool_size=4)
    answered: dict[int, ActionCounts] = {}
    failed: list[int] = []
    next_id = iter(range(1, 1_000_000))
    restarted = asyncio.Event()

    async def worker() -> None:
        while not restarted.is_set():
            action_id = next(next_id)
            try:
                (answered[action_id],) = await store.record_action(
                    action_id=action_id, **HUG, target_ids=[B]
                )
            except StoreError:
                failed.append(action_id)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    await answered_at_least(answered, 50)
    await asyncio.to_thread(pg_cluster.restart)
    await answered_at_least(answered, len(answered) + 50)  # the pool reconnected by itself
    restarted.set()
    await asyncio.gather(*workers)
    print(f"{len(answered)} answered, {len(failed)} failed across the restart")
    retries = [r for r in caplog.records if "retrying on a new connection" in r.getMessage()]
    assert len(retries) == 1, retries  # the outage was met, and logged once (a minute)

    rows = dict(await pg.rows("SELECT action_id, pair_count FROM processed_actions"))
    # Every acknowledged action is in the database, once, with the counts it answered.
    assert all(rows.get(i) == counts.pair for i, counts in answered.items())
    total = (await store.counts(**HUG, target_id=B)).pair
    assert total == len(rows) >= len(answered)
    assert sorted(rows.values()) == list(range(1, total + 1))
    # A failed call may have committed before its connection died: retried, it is a replay.
    for action_id in failed:
        await store.record_action(action_id=action_id, **HUG, target_ids=[B])
    assert (await store.counts(**HUG, target_id=B)).pair == len(answered) + len(failed)
    await pg.assert_consistent()


async def test_a_call_while_the_server_is_down_fails_within_its_retry_time(
    pg: PostgresBackend, pg_cluster: PostgresCluster
) -> None:
    store = await pg.open(retry_seconds=0.5)
    pg_cluster.stop()
    try:
        with pytest.raises(StoreError) as caught:
            await store.record_action(action_id=1, **HUG, target_ids=[B])
        assert "\n" not in str(caught.value)
    finally:
        pg_cluster.restart()
    (counts,) = await store.record_action(action_id=1, **HUG, target_ids=[B])
    assert counts == ActionCounts(1, 1)


# ---------------------------------------------------------------- opening


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_start_up_errors_are_told_apart(pg_cluster: PostgresCluster) -> None:
    secret = "pa55-w0rd-never-shown"
    closed = f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(StoreUnreachable) as unreachable:
        await PostgresStore.open(closed, connect_timeout=2)
    port = pg_cluster.port
    for url in (
        f"postgresql://nobody:{secret}@127.0.0.1:{port}/postgres",
        f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{port}/no_such_database",
    ):
        with pytest.raises(StoreError) as rejected:
            await PostgresStore.open(url)
        assert not isinstance(rejected.value, StoreUnreachable), rejected.value
        assert secret not in str(rejected.value)
    assert secret not in str(unreachable.value)

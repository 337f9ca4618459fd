"""The PostgreSQL backend (asyncpg): several bot processes may share one database.

Every call is one transaction or statement (`bot.store.postgres_queries`) on a connection of a
bounded pool. Counts stay exact across processes because every counter is an upsert that locks
its row until commit, and a replay is recognised by its dedupe marker, inserted first (see the
queries module).

Opt-outs and server settings, read by every command, are answered from memory and kept true
across processes with LISTEN/NOTIFY (`bot.store.postgres_cache`): a stale opt-out would ping or
count a member who said no, exactly what consent exists to prevent. A call that is one statement
runs without BEGIN/COMMIT, and `record_action` is one server-side function call: a burst of
commands queues on the pool, so every round trip counts (docs/postgres.md).

A lost connection (a server restart, a network cut) fails the transaction in flight, which
then never committed or committed whole. A cut link fails nothing but hangs, so an attempt's
connection is dropped after `QUERY_TIMEOUT` (`bot.store.postgres_deadline`). The call is
retried on a fresh connection for a few seconds (`RETRY_SECONDS`), so the answer still goes out
in Discord's time; a retried `record_action` or `first_delivery` that had committed finds its
own markers and answers as the first attempt would have. After that it raises `StoreError`;
the pool reconnects by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from bot.store import postgres_queries as queries
from bot.store.base import (
    DAILY_KEEP_DAYS,
    DAY,
    ActionCounts,
    GuildSettings,
    Leaderboard,
    Store,
    StoreError,
    StoreUnreachable,
    UserData,
    UserStats,
)
from bot.store.postgres_cache import SharedCache
from bot.store.postgres_deadline import dropped_after
from bot.store.postgres_schema import MIGRATIONS, PgMigration, migrate
from bot.store.settings_cache import SETTINGS_CACHE_SIZE

__all__ = ["LISTENER_NAME", "POOL_SIZE", "RETRY_SECONDS", "PostgresStore", "describe_url"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Body = Callable[[asyncpg.Connection], Awaitable[T]]

POOL_SIZE = 10  # connections per process at most
CONNECT_TIMEOUT = 5.0  # seconds for one connection attempt
RETRY_SECONDS = 4.0  # how long one call keeps retrying a lost connection
# Seconds one attempt's statements may take before its connection is dropped (a cut link fails
# nothing: it hangs until TCP gives up, minutes later).
QUERY_TIMEOUT = 2.0
LOG_EVERY = 60.0  # at most one warning a minute about lost connections
DEDUPE_TTL = 24 * 3600.0
RETURNED_TTL = 30 * 24 * 3600.0
PRUNE_INTERVAL = 3600.0
CLOSE_TIMEOUT = 10.0  # seconds close() waits for calls in flight, then for the pool
LISTENER_NAME = "nekocord listener"  # the listening connection's application_name

# Worth another try on a fresh connection: the connection or the server went away, the server
# is starting or stopping, or (deadlock, serialization) the transaction lost a race.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # asyncpg's protocol state on a connection that died mid-operation.
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
# What only the configuration can fix.
REJECTED: tuple[type[BaseException], ...] = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)


def describe_url(url: str) -> str:
    """`host:port/database` for messages: never the user name or password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "(PostgreSQL)"
    database = parts.path.lstrip("/") or "(default)"
    return f"{host}:{port}/{database}"


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


async def _release(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: no transaction left open. (asyncpg's
    default reset also drops session state this store never sets, a round trip per call.)"""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PostgresStore(Store):
    """The PostgreSQL `Store`. Open with `await PostgresStore.open(url)` or
    `bot.store.open_store`."""

    _queries = queries
    _block_queries = queries

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        listen: Callable[[], Awaitable[asyncpg.Connection]],
        where: str,
        clock: Callable[[], float],
        retry_seconds: float,
        dedupe_ttl: float,
        returned_ttl: float,
        settings_cache: int = SETTINGS_CACHE_SIZE,
    ) -> None:
        self._pool = pool
        self._where = where
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._dedupe_ttl = dedupe_ttl
        self._returned_ttl = returned_ttl
        self._closed = False
        self._last_prune = float("-inf")
        self._last_warning = float("-inf")
        self._background: set[asyncio.Task[None]] = set()
        # Calls inside `_run`. close() waits for them itself: asyncpg's Pool.close() only waits
        # for connections already acquired, so it would close one that a queued call has just
        # taken, mid-COMMIT, and that call would fail although it committed.
        self._in_flight = 0
        self._settled = asyncio.Event()
        self._settled.set()
        self._cache = SharedCache(listen, capacity=settings_cache)
        self._known_settings = self._cache.settings
        self._known_opt_outs = self._cache.opt_outs
        self._known_blocks = self._cache.blocks

    def __repr__(self) -> str:
        return f"<PostgresStore {self._where} {'closed' if self._closed else 'open'}>"

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        clock: Callable[[], float] = time.time,
        retry_seconds: float = RETRY_SECONDS,
        connect_timeout: float = CONNECT_TIMEOUT,
        dedupe_ttl: float = DEDUPE_TTL,
        returned_ttl: float = RETURNED_TTL,
        migrations: Sequence[PgMigration] = MIGRATIONS,
        settings_cache: int = SETTINGS_CACHE_SIZE,
    ) -> PostgresStore:
        """Connect a pool of at most `pool_size` connections, migrate, prune.

        Raises `StoreUnreachable` when the server cannot be reached (yet): refused, timed out,
        starting up; `StoreError` for anything else (rejected credentials, an unknown database,
        a malformed URL, a failed migration). Messages name host, port and database only."""
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        where = describe_url(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=connect_timeout,
                # Transactions are short; a connection idle this long is closed (and reopened
                # on demand), so an idle bot does not pin server slots.
                max_inactive_connection_lifetime=300.0,
                reset=_release,
            )
        except REJECTED as exc:
            raise StoreError(
                f"PostgreSQL at {where} refused the connection: {_reason(exc)}"
            ) from exc
        except TRANSIENT as exc:
            raise StoreUnreachable(
                f"PostgreSQL at {where} is not reachable: {_reason(exc)}"
            ) from exc
        except (asyncpg.PostgresError, ValueError) as exc:
            # asyncpg words a malformed URL with the URL itself: never repeat it.
            reason = _reason(exc) if isinstance(exc, asyncpg.PostgresError) else "malformed URL"
            raise StoreError(f"Cannot connect to PostgreSQL at {where}: {reason}") from exc
        store = cls(
            pool,
            listen=lambda: asyncpg.connect(
                url, timeout=connect_timeout, server_settings={"application_name": LISTENER_NAME}
            ),
            where=where,
            clock=clock,
            retry_seconds=retry_seconds,
            dedupe_ttl=dedupe_ttl,
            returned_ttl=returned_ttl,
            settings_cache=settings_cache,
        )
        try:
            async with pool.acquire() as conn:
                await migrate(conn, where=where, migrations=migrations)
        except TRANSIENT as exc:
            await pool.close()
            raise StoreUnreachable(f"PostgreSQL at {where} went away: {_reason(exc)}") from exc
        except BaseException:
            await pool.close()
            raise
        with contextlib.suppress(StoreError):  # maintenance must not stop the start
            await store._prune()
        await store._cache.start()
        return store

    # ------------------------------------------------------------------ running transactions

    async def _run(
        self,
        what: str,
        body: Body[T],
        *,
        isolation: str = "read_committed",
        readonly: bool = False,
        maintenance: bool = False,
        single: bool = False,
    ) -> T:
        """`body` in one transaction, retried on a fresh connection while the failure is
        transient and `retry_seconds` last; `StoreError` after that or for any other failure.
        `maintenance`: work started before `close()`, which waits for it, so it still runs.
        `single`: `body` is one statement, atomic by itself: no BEGIN and COMMIT round trips."""
        if self._closed and not maintenance:
            raise StoreError(f"The database {self._where} is closed")
        self._in_flight += 1
        self._settled.clear()
        try:
            return await self._attempt(what, body, isolation, readonly, maintenance, single)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._settled.set()

    async def _attempt(
        self,
        what: str,
        body: Body[T],
        isolation: str,
        readonly: bool,
        maintenance: bool,
        single: bool,
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry_seconds
        delay = 0.05
        while True:
            try:
                async with self._pool.acquire(timeout=CONNECT_TIMEOUT) as conn:
                    # A cut link would hang the call: past QUERY_TIMEOUT the connection is
                    # dropped, and the call retried on another.
                    with dropped_after(conn, QUERY_TIMEOUT):
                        if single:
                            return await body(conn)
                        async with conn.transaction(isolation=isolation, readonly=readonly):
                            return await body(conn)
            except TRANSIENT as exc:
                if (self._closed and not maintenance) or loop.time() + delay > deadline:
                    raise StoreError(
                        f"Cannot {what} in the database {self._where}: {_reason(exc)}"
                    ) from exc
                self._warn(what, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            except asyncpg.PostgresError as exc:
                raise StoreError(
                    f"Cannot {what} in the database {self._where}: {_reason(exc)}"
                ) from exc

    def _warn(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= LOG_EVERY:
            self._last_warning = now
            log.warning(
                "PostgreSQL at %s: %s failed (%s), retrying on a new connection",
                self._where,
                what,
                _reason(exc),
            )

    # ------------------------------------------------------------------ maintenance

    async def _prune(self) -> None:
        now = self._clock()
        self._last_prune = now
        body = partial(
            queries.prune,
            processed_before=int(now - self._dedupe_ttl),
            returned_before=int(now - self._returned_ttl),
            daily_before=int(now) // DAY - (DAILY_KEEP_DAYS - 1),
        )
        await self._run("prune old markers", body, maintenance=True)

    def _maybe_prune(self) -> None:
        # In the background, so no caller waits for maintenance; close() waits for it.
        if self._closed or self._clock() - self._last_prune < PRUNE_INTERVAL:
            return
        self._last_prune = self._clock()

        async def prune() -> None:
            try:
                await self._prune()
            except StoreError as exc:
                log.warning("Pruning old markers failed: %s", exc)

        task = asyncio.create_task(prune(), name="nekocord-store-prune")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ running the queries
    # `Store` has checked the arguments and bound them to `queries`; what is PostgreSQL's own
    # is how each runs (`single`: one statement, no BEGIN/COMMIT round trips; else a
    # transaction of the isolation it needs) and what the shared cache learns from it.

    async def _run_first_delivery(self, interaction_id: int) -> bool:
        query = partial(
            queries.first_delivery,
            interaction_id=interaction_id,
            now=int(self._clock()),
            claim=secrets.randbits(63),  # this call's: its retries recognise their own row
        )
        return await self._run("record an interaction", query, single=True)

    async def _run_record_action(self, query: Body[list[ActionCounts]]) -> list[ActionCounts]:
        counts = await self._run("record an action", query, single=True)
        self._maybe_prune()
        return counts

    async def _run_counts(self, query: Body[ActionCounts]) -> ActionCounts:
        return await self._run("read counts", query, single=True)

    async def _run_claim_return(self, query: Body[bool]) -> bool:
        claimed = await self._run("record a return", query)
        self._maybe_prune()
        return claimed

    async def _run_is_returned(self, query: Body[bool]) -> bool:
        return await self._run("read returns", query, single=True)

    async def _run_user_stats(self, query: Body[UserStats]) -> UserStats:
        # Both queries see one snapshot, as SQLite's one transaction does.
        return await self._run("read stats", query, isolation="repeatable_read", readonly=True)

    async def _run_leaderboard(self, query: Body[Leaderboard]) -> Leaderboard:
        return await self._run("read a leaderboard", query, single=True)

    async def _run_user_data(self, query: Body[UserData]) -> UserData:
        # The four reads see one snapshot, as SQLite's one transaction does.
        return await self._run(
            "read a member's data", query, isolation="repeatable_read", readonly=True
        )

    async def _run_set_opt_out(self, query: Body[None], user_id: int, opted_out: bool) -> None:
        await self._run("record an opt-out", query)
        await self._cache.catch_up()

    async def _run_set_block(
        self, query: Body[list[str]], user_id: int, action: str, blocked: bool
    ) -> list[str]:
        blocks = await self._run("record a block", query)
        await self._cache.catch_up()
        return blocks

    async def _run_blocks_of(self, query: Body[list[str]]) -> list[str]:
        return await self._run("read blocks", query, single=True)

    async def _run_opted_out_among(self, query: Body[set[int]]) -> set[int]:
        return await self._run("read opt-outs", query, single=True)

    async def _run_forget_user(self, query: Body[None], user_id: int, keep_opt_out: bool) -> None:
        await self._run("delete a member's data", query)
        await self._cache.catch_up()

    async def _run_forget_guild(self, query: Body[None], guild_id: int) -> None:
        await self._settings_written("delete a server's data", query, guild_id)

    async def _run_guild_settings(self, query: Body[GuildSettings], guild_id: int) -> GuildSettings:
        ticket = self._cache.ticket()
        settings = await self._run("read server settings", query, single=True)
        self._cache.fill(guild_id, settings, ticket)
        return settings

    async def _run_save_guild_settings(
        self, query: Body[None], guild_id: int, settings: GuildSettings
    ) -> None:
        await self._settings_written("save server settings", query, guild_id)

    async def _run_change_guild_settings(
        self, query: Body[GuildSettings], guild_id: int
    ) -> GuildSettings:
        # One statement, and safe to repeat (see the query).
        return await self._settings_written("change server settings", query, guild_id, single=True)

    async def _settings_written(
        self, what: str, query: Body[T], guild_id: int, *, single: bool = False
    ) -> T:
        """Run a write of the guild's settings; once it returns, this process reads them anew
        (the read of changes that follows its notification is waited for)."""
        try:
            written = await self._run(what, query, single=single)
        finally:
            self._cache.forget_settings(guild_id)  # committed or not: ask the database
        await self._cache.catch_up()
        return written

    # ------------------------------------------------------------------ lifecycle

    async def run_in_transaction(self, job: Body[T]) -> T:
        """Run `job` with a pooled connection inside one transaction (retried like every call).

        For tests and operators' tools (inspecting rows, `migrate-store`); asyncpg errors
        become `StoreError`."""
        return await self._run("run a job", job)

    def _require_open(self) -> None:
        if self._closed:
            raise StoreError(f"The database {self._where} is closed")

    async def ping(self) -> None:
        async def select_one(conn: asyncpg.Connection) -> Any:
            return await conn.fetchval("SELECT 1")

        await self._run("reach", select_one, single=True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # new calls are refused from here on
        await self._cache.close()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        try:
            # Calls in flight finish first (their retries give up once closed), then the
            # pool closes its idle connections.
            await asyncio.wait_for(self._settled.wait(), timeout=CLOSE_TIMEOUT)
            await asyncio.wait_for(self._pool.close(), timeout=CLOSE_TIMEOUT)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._pool.terminate()

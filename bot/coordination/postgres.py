"""The coordinator of a bot whose processes share one PostgreSQL database.

- IDENTIFY pacing: a session-level advisory lock per bucket, on a connection of its own, held
  `window` seconds after `before_identify` returns. The lock belongs to the session, so a
  process that dies releases it with its connection.
- Command registration: under a transaction-level advisory lock per scope; the digest is stored
  in `coord_command_digests` in the same transaction, after `register()` succeeded.
- nekos.best budgets: `PostgresBudget` (its own module), fed by a heartbeat that counts the
  live processes.
- Shard leases: `ShardLeases` (its own module), one process at a time per shard.

Every advisory lock uses the two-int form with class ids of our own (see `postgres_schema`).
A database failure is logged once and answered safely: IDENTIFYs fall back to in-process
pacing, a registration is skipped (retried at the next change), a budget take is granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import asyncpg

from bot.coordination.base import CoordinationError, Coordinator
from bot.coordination.local import LocalPacing
from bot.coordination.pg_budget import BACKEND_ERRORS, PostgresBudget
from bot.coordination.pg_leases import ShardLeases
from bot.coordination.postgres_schema import LOCK_CLASS, migrate

__all__ = ["IDENTIFY_CLASS", "REGISTER_CLASS", "PostgresCoordinator", "scope_key"]

log = logging.getLogger(__name__)

IDENTIFY_CLASS = LOCK_CLASS + 1  # second int: the bucket
REGISTER_CLASS = LOCK_CLASS + 2  # second int: `scope_key(scope)`
APPLICATION_NAME = "nekocord-coordinator"  # shows in pg_stat_activity
_QUERY_TIMEOUT = 5.0  # one statement; a longer silence means the connection is gone
_POLL = 0.1  # seconds between attempts at a held IDENTIFY lock
_OPEN_ERRORS: tuple[type[BaseException], ...] = (*BACKEND_ERRORS, ValueError)  # + a bad URL


def scope_key(scope: str) -> int:
    """A stable signed 32-bit lock key for a registration scope."""
    crc = zlib.crc32(scope.encode("utf-8"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _describe(exc: BaseException) -> str:
    """One line about a failure, without the URL: PostgreSQL's own message (it never echoes
    the connection string), otherwise the kind of error only."""
    if isinstance(exc, asyncpg.PostgresError):
        return exc.args[0] if exc.args else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class PostgresCoordinator(Coordinator):
    """Coordination through PostgreSQL. Open with `await PostgresCoordinator.open(url)`."""

    def __init__(self, url: str, pool: asyncpg.Pool, *, heartbeat: float = 10.0) -> None:
        self._url = url  # for IDENTIFY connections; never logged
        self._pool = pool
        self.process_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.heartbeat = heartbeat
        self._budget = PostgresBudget(pool, self.process_id, stale=heartbeat * 3)
        self._leases = ShardLeases(pool, self.process_id)
        self._local = LocalPacing()  # while the database is away
        # IDENTIFY locks being held, with the timer that lets each go.
        self._held: dict[asyncpg.Connection, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned: set[str] = set()
        self._beat: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, *, heartbeat: float = 10.0) -> PostgresCoordinator:
        """Connect (a small pool), create or migrate the `coord_` tables, start the heartbeat.
        Raises `CoordinationError` with one line (never the URL)."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=4,
                timeout=10.0,
                command_timeout=_QUERY_TIMEOUT * 2,
                server_settings={"application_name": APPLICATION_NAME},
            )
        except _OPEN_ERRORS as exc:
            raise CoordinationError(f"cannot connect to PostgreSQL: {_describe(exc)}") from None
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            coordinator = cls(url, pool, heartbeat=heartbeat)
            await coordinator._beat_once()  # counted as live before its first budget take
        except BACKEND_ERRORS as exc:
            pool.terminate()
            raise CoordinationError(
                f"cannot prepare the coordination tables: {_describe(exc)}"
            ) from None
        coordinator._beat = asyncio.get_running_loop().create_task(
            coordinator._heartbeat(), name="coordinator-heartbeat"
        )
        return coordinator

    @property
    def budget(self) -> PostgresBudget:
        return self._budget

    # -- IDENTIFY ----------------------------------------------------------------------------

    async def before_identify(self, bucket: int, window: float) -> None:
        try:
            conn = await asyncio.wait_for(self._connect(), _QUERY_TIMEOUT * 2)
        except BACKEND_ERRORS as exc:
            self._degraded("IDENTIFY pacing", exc)
            await self._local.wait(bucket, window)
            return
        try:
            await self._lock_bucket(conn, bucket, poll=max(min(_POLL, window / 10), 0.01))
        except BACKEND_ERRORS as exc:
            conn.terminate()
            self._degraded("IDENTIFY pacing", exc)
            await self._local.wait(bucket, window)
            return
        except BaseException:
            conn.terminate()  # cancelled while waiting: the session (and any lock) ends now
            raise
        # Held `window` seconds after this IDENTIFY; ending the session releases the lock.
        self._held[conn] = asyncio.get_running_loop().call_later(
            window, lambda: self._spawn(self._let_go(conn))
        )

    @staticmethod
    async def _lock_bucket(conn: asyncpg.Connection, bucket: int, *, poll: float) -> None:
        # Polled rather than a blocking pg_advisory_lock: each attempt is a short statement
        # with a timeout, so a connection that silently died is noticed instead of waited on.
        while True:
            if await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)",
                IDENTIFY_CLASS,
                bucket,
                timeout=_QUERY_TIMEOUT,
            ):
                return
            await asyncio.sleep(poll)

    async def _connect(self) -> asyncpg.Connection:
        # A connection of its own, not the pool's: the lock lives as long as this session.
        return await asyncpg.connect(
            self._url, timeout=10.0, server_settings={"application_name": APPLICATION_NAME}
        )

    async def _let_go(self, conn: asyncpg.Connection) -> None:
        timer = self._held.pop(conn, None)
        if timer is not None:
            timer.cancel()
        try:
            await conn.close(timeout=_QUERY_TIMEOUT)
        except BACKEND_ERRORS:
            conn.terminate()

    # -- shard leases -----------------------------------------------------------------------

    async def claim_shards(
        self,
        shards: Sequence[int],
        shard_count: int,
        *,
        lease: float,
        on_lost: Callable[[], None],
    ) -> bool:
        try:
            return await self._leases.claim(shards, shard_count, lease, on_lost)
        except BACKEND_ERRORS as exc:
            raise CoordinationError(f"PostgreSQL did not answer: {_describe(exc)}") from None

    # -- command registration ---------------------------------------------------------------

    async def register_commands(
        self, scope: str, digest: str, register: Callable[[], Awaitable[Any]]
    ) -> bool:
        stage = "checking"
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)", REGISTER_CLASS, scope_key(scope)
                )
                stored = await conn.fetchval(
                    "SELECT digest FROM coord_command_digests WHERE scope = $1", scope
                )
                if stored == digest:
                    return False
                stage = "registering"
                await register()
                stage = "registered"
                await conn.execute(
                    "INSERT INTO coord_command_digests (scope, digest, registered_at) "
                    "VALUES ($1, $2, now()) ON CONFLICT (scope) DO UPDATE "
                    "SET digest = EXCLUDED.digest, registered_at = EXCLUDED.registered_at",
                    scope,
                    digest,
                )
                return True
        except BACKEND_ERRORS as exc:
            if stage == "registering":
                raise  # register()'s own failure (e.g. Discord unreachable): the caller's
            self._degraded("command registration", exc)
            # Registered but not recorded: the next start registers once more, harmlessly.
            return stage == "registered"

    async def registered_digest(self, scope: str) -> str | None:
        try:
            async with self._pool.acquire() as conn:
                value = await conn.fetchval(
                    "SELECT digest FROM coord_command_digests WHERE scope = $1",
                    scope,
                    timeout=_QUERY_TIMEOUT,
                )
        except BACKEND_ERRORS as exc:
            self._degraded("the registered command set", exc)
            return None
        return str(value) if value is not None else None

    # -- liveness and shutdown --------------------------------------------------------------

    async def _beat_once(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO coord_processes (id, seen_at) VALUES ($1, now()) "
                "ON CONFLICT (id) DO UPDATE SET seen_at = now()",
                self.process_id,
                timeout=_QUERY_TIMEOUT,
            )
            # Rows of processes that died without saying goodbye.
            await conn.execute(
                "DELETE FROM coord_processes WHERE seen_at < now() - interval '1 day'",
                timeout=_QUERY_TIMEOUT,
            )
            await conn.execute(
                "DELETE FROM coord_nekos_shares AS s WHERE NOT EXISTS "
                "(SELECT 1 FROM coord_processes AS p WHERE p.id = s.process)",
                timeout=_QUERY_TIMEOUT,
            )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._beat_once()
            except BACKEND_ERRORS as exc:
                self._degraded("the process heartbeat", exc)

    async def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
            self._beat = None
        await self._budget.aclose()
        await self._leases.release()
        with contextlib.suppress(*BACKEND_ERRORS):
            async with asyncio.timeout(_QUERY_TIMEOUT), self._pool.acquire() as conn:
                await conn.execute("DELETE FROM coord_processes WHERE id = $1", self.process_id)
                await conn.execute(
                    "DELETE FROM coord_nekos_shares WHERE process = $1", self.process_id
                )
        for conn in list(self._held):  # IDENTIFY locks: this process identifies no more
            await self._let_go(conn)
        for task in list(self._tasks):
            task.cancel()
        try:
            await asyncio.wait_for(self._pool.close(), _QUERY_TIMEOUT)
        except BACKEND_ERRORS:
            self._pool.terminate()

    # -- helpers ----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _degraded(self, what: str, exc: BaseException) -> None:
        """Log a backend failure: a warning the first time for each concern, then debug."""
        if what not in self._warned:
            self._warned.add(what)
            log.warning("PostgreSQL coordination failed (%s): %s", what, _describe(exc))
        else:
            log.debug("PostgreSQL coordination failed (%s): %r", what, exc)

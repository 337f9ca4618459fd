"""The embedded SQLite backend (aiosqlite): one connection, WAL, one short transaction per call.

Why one connection: aiosqlite runs it in its own thread, SQLite allows a single writer anyway, and
serializing every call through an `asyncio.Lock` makes counts exact and each call's returned
counts consistent (100 concurrent `record_action` return pair counts 1..100). A call's
transaction runs in a shielded task, so a caller cancelled mid-call (an interaction timing out)
never leaves a half-done transaction on the shared connection: it commits or rolls back whole.

Opt-outs are read once at open and kept in memory in step with this store's own writes, so the
check every action makes costs no database trip (another process writing opt-outs into the same
file is seen after a restart).

Durability: WAL with `synchronous=NORMAL` makes a commit survive a crash or `kill -9` of the
process (the WAL is written before COMMIT returns); only an OS crash or power loss may drop the
last few commits, never corrupt the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote

import aiosqlite

from bot.store.base import (
    ActionCounts,
    ActionStat,
    Partner,
    Store,
    StoreError,
    UserStats,
    check_action,
    check_id,
)

__all__ = [
    "DEDUPE_TTL",
    "MIGRATIONS",
    "RETURNED_TTL",
    "Migration",
    "SqliteStore",
    "SqliteTarget",
    "parse_sqlite_url",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Conn = aiosqlite.Connection

# Gateway redeliveries after a resume come within minutes; a day is ample.
DEDUPE_TTL = 24 * 3600.0
# Hug-back buttons must work once for as long as anyone might click them.
RETURNED_TTL = 30 * 24 * 3600.0
# Pruning runs at open and then at most this often, piggy-backed on writes.
PRUNE_INTERVAL = 3600.0
BUSY_TIMEOUT = 5.0
# Short synchronous transactions (the counter every action commits) run on the event loop's
# thread: about 70 µs, cheaper than a hand-off to the database thread under GIL contention.
# They never wait: with the WAL checkpoint moved to the database thread and busy_timeout 0,
# a transaction that would block (another process holds the lock) goes to the thread instead.
CHECKPOINT_EVERY = 500  # inline commits between two background WAL checkpoints
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
# RETURNING and upserts with RETURNING need 3.35 (2021).
MIN_SQLITE = (3, 35, 0)
_IN_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. Statements run in one transaction together with the `user_version`
    bump, so a step is applied whole or not at all and never twice."""

    version: int
    description: str
    statements: tuple[str, ...]


# Append only: never edit a released step, add a new one. `user_version` = last applied version.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "counters, dedupe and hug-back markers, opt-outs",
        (
            # One row per (guild, actor, target, action). The key leads with (guild, actor) so
            # user_stats' given side and forget_guild are prefix scans.
            """CREATE TABLE action_counts (
                guild_id  INTEGER NOT NULL,
                actor_id  INTEGER NOT NULL,
                target_id INTEGER NOT NULL,
                action    TEXT    NOT NULL,
                count     INTEGER NOT NULL CHECK (count > 0),
                PRIMARY KEY (guild_id, actor_id, target_id, action)
            ) WITHOUT ROWID""",
            # The received side of user_stats, and forget_user's received side.
            "CREATE INDEX action_counts_by_target ON action_counts (target_id, guild_id)",
            # forget_user's given side (all guilds).
            "CREATE INDEX action_counts_by_actor ON action_counts (actor_id)",
            # Kept in step with action_counts in the same transaction, so record_action reads
            # the received total in O(1) instead of summing over every actor.
            """CREATE TABLE received_totals (
                guild_id  INTEGER NOT NULL,
                target_id INTEGER NOT NULL,
                action    TEXT    NOT NULL,
                count     INTEGER NOT NULL CHECK (count > 0),
                PRIMARY KEY (guild_id, target_id, action)
            ) WITHOUT ROWID""",
            "CREATE INDEX received_totals_by_target ON received_totals (target_id)",
            # Dedupe by interaction id; the counts are kept so a replay answers the same.
            """CREATE TABLE processed_actions (
                action_id      INTEGER PRIMARY KEY,
                guild_id       INTEGER NOT NULL,
                actor_id       INTEGER NOT NULL,
                target_id      INTEGER NOT NULL,
                action         TEXT    NOT NULL,
                pair_count     INTEGER NOT NULL,
                received_total INTEGER NOT NULL,
                created_at     INTEGER NOT NULL
            )""",
            "CREATE INDEX processed_actions_by_age ON processed_actions (created_at)",
            # Who took part is copied from processed_actions at claim time (when known), only
            # so forget_user / forget_guild can delete the markers naming them.
            """CREATE TABLE returned_actions (
                action_id  INTEGER PRIMARY KEY,
                guild_id   INTEGER,
                actor_id   INTEGER,
                target_id  INTEGER,
                created_at INTEGER NOT NULL
            )""",
            "CREATE INDEX returned_actions_by_age ON returned_actions (created_at)",
            """CREATE TABLE opt_outs (
                user_id    INTEGER PRIMARY KEY,
                created_at INTEGER NOT NULL
            )""",
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class SqliteTarget:
    """Where a DATABASE_URL points: a filesystem path (or ":memory:") and the open mode."""

    path: str
    mode: str = "rwc"  # SQLite URI mode: ro, rw (must exist) or rwc (create)


def parse_sqlite_url(url: str) -> SqliteTarget:
    """Read `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (SQLAlchemy's
    convention: what follows the third slash is the path) or a plain filesystem path.

    URLs may carry `?mode=ro|rw|rwc`. Raises `StoreError` for anything else."""
    text = url.strip()
    if not text.lower().startswith("sqlite:"):
        if not text:
            raise StoreError("DATABASE_URL is empty: set it to sqlite:///path/to/nekocord.db")
        return SqliteTarget(text)  # a plain path, taken literally (it may contain '?')
    rest = text[len("sqlite:") :]
    if not rest.startswith("///"):
        raise StoreError(
            f"DATABASE_URL {text!r} is not a SQLite URL: use sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    path, _, query = rest[3:].partition("?")
    if not path:
        raise StoreError(f"DATABASE_URL {text!r} names no database file")
    mode = "rwc"
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "mode" or value not in ("ro", "rw", "rwc"):
            raise StoreError(
                f"DATABASE_URL parameter {key}={value!r} is not supported "
                "(supported: mode=ro|rw|rwc)"
            )
        mode = value
    return SqliteTarget(path, mode)


def _prepare_file(path: str | Path, mode: str) -> tuple[str, str]:
    """(absolute path for messages, SQLite URI), creating the parent directory for rwc."""
    file = Path(path).expanduser().absolute()
    where = str(file)
    if mode == "rwc":
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the directory for the database {where!r}: {exc.strerror or exc}"
            ) from exc
    # A URI so `mode` is honoured; quote() keeps '?', '#' and '%' in a path literal.
    return where, f"file:{quote(where)}?mode={mode}"


def _log_prune_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("Pruning old markers failed: %s", task.exception())


def _log_checkpoint_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("WAL checkpoint failed: %s", task.exception())


def _in_thread(raw: sqlite3.Connection, body: Callable[[sqlite3.Connection], T], write: bool) -> T:
    """BEGIN, body, COMMIT (ROLLBACK on failure), run on aiosqlite's connection thread."""
    raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = body(raw)
        raw.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            raw.execute("ROLLBACK")
        raise
    return result


async def _fetch_one(conn: Conn, sql: str, params: Iterable[Any] = ()) -> Any:
    """The first column of the first row (one thread round trip)."""
    rows = await conn.execute_fetchall(sql, tuple(params))
    return next(iter(rows))[0]


class SqliteStore(Store):
    """The SQLite `Store`. Open with `await SqliteStore.open(path)` or `bot.store.open_store`."""

    def __init__(
        self,
        conn: Conn,
        *,
        where: str,
        read_only: bool,
        clock: Callable[[], float],
        dedupe_ttl: float,
        returned_ttl: float,
    ) -> None:
        self._conn: Conn | None = conn
        self._where = where
        self._read_only = read_only
        self._clock = clock
        self._dedupe_ttl = dedupe_ttl
        self._returned_ttl = returned_ttl
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._last_prune = float("-inf")
        self._inline = False  # set by _setup for WAL databases (see CHECKPOINT_EVERY)
        self._busy_ms = int(BUSY_TIMEOUT * 1000)
        self._inline_commits = 0
        # Every opted-out user id, read at open (None: not read, or unsure: ask the database).
        self._opt_outs: set[int] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SqliteStore {self._where!r} {state}>"

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open_url(cls, url: str, **options: Any) -> SqliteStore:
        """Open the database a `sqlite:` DATABASE_URL (or plain path) names."""
        target = parse_sqlite_url(url)
        return await cls.open(target.path, mode=target.mode, **options)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        mode: str = "rwc",
        clock: Callable[[], float] = time.time,
        dedupe_ttl: float = DEDUPE_TTL,
        returned_ttl: float = RETURNED_TTL,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> SqliteStore:
        """Open (creating it and its directory if needed), set WAL, migrate, prune.

        Raises `StoreError` with one sentence if any of that fails."""
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old: nekocord needs "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer"
            )
        if mode not in ("ro", "rw", "rwc"):
            raise ValueError(f"mode must be ro, rw or rwc, not {mode!r}")
        memory = str(path) == ":memory:"
        if memory:
            where, database = ":memory:", ":memory:"
        else:
            where, database = await asyncio.to_thread(_prepare_file, path, mode)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (sqlite3's implicit
            # transactions would start DEFERRED and commit at surprising times).
            conn = await aiosqlite.connect(
                database,
                uri=not memory,
                isolation_level=None,
                timeout=busy_timeout,
                # Used from the loop's thread too (_run_inline), never concurrently: every use
                # is serialized by the store's lock.
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the database {where!r}: {exc}") from exc

        read_only = mode == "ro"
        store = cls(
            conn,
            where=where,
            read_only=read_only,
            clock=clock,
            dedupe_ttl=dedupe_ttl,
            returned_ttl=returned_ttl,
        )
        try:
            await store._setup(memory=memory, busy_timeout=busy_timeout)
        except BaseException:
            await store._close_quietly()
            raise
        return store

    async def _setup(self, *, memory: bool, busy_timeout: float) -> None:
        conn = self._require_conn()
        step = "open"
        try:
            self._busy_ms = int(busy_timeout * 1000)
            await conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if memory or self._read_only:
                # Reading the header here turns "not a database" into an error at open.
                await _fetch_one(conn, "PRAGMA journal_mode")
            else:
                journal = await _fetch_one(conn, "PRAGMA journal_mode = WAL")
                if str(journal).lower() != "wal":
                    # e.g. a filesystem without shared memory: still correct, just slower.
                    log.warning("SQLite refused WAL mode for %s (got %s)", self._where, journal)
            # NORMAL is durable against process crashes in WAL mode, and saves an fsync.
            await conn.execute("PRAGMA synchronous = NORMAL")
            if not memory and not self._read_only and str(journal).lower() == "wal":
                # Checkpoints happen on the database thread only, never inside an inline commit.
                await conn.execute("PRAGMA wal_autocheckpoint = 0")
                self._inline = True
            step = "migrate"
            await self._migrate(conn)
            step = "read opt-outs from"
            rows = await conn.execute_fetchall("SELECT user_id FROM opt_outs")
            self._opt_outs = {int(uid) for (uid,) in rows}
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot {step} the database {self._where!r}: {exc}") from exc
        if not self._read_only:
            # Maintenance only: a failure (a full disk) is logged and must not stop the start.
            with contextlib.suppress(StoreError):
                await self._start_prune()

    async def _migrate(self, conn: Conn) -> None:
        latest = MIGRATIONS[-1].version
        current = int(await _fetch_one(conn, "PRAGMA user_version"))
        if current > latest:
            raise StoreError(
                f"The database {self._where!r} has schema version {current}, newer than this "
                f"nekocord supports ({latest}): upgrade nekocord or use another database"
            )
        pending = [m for m in MIGRATIONS if m.version > current]
        if pending and self._read_only:
            raise StoreError(
                f"The database {self._where!r} is opened read-only but needs migrating "
                f"from schema version {current} to {latest}"
            )
        for migration in pending:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated meanwhile.
                if int(await _fetch_one(conn, "PRAGMA user_version")) >= migration.version:
                    await conn.execute("COMMIT")
                    continue
                for statement in migration.statements:
                    await conn.execute(statement)
                # user_version lives in the header page, so it commits with the schema.
                await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
                await conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(
                        f"Cannot migrate the database {self._where!r} to schema version "
                        f"{migration.version} ({migration.description}): {exc}"
                    ) from exc
                raise
            log.info("Migrated %s to schema version %d", self._where, migration.version)

    # ------------------------------------------------------------------ plumbing

    def _require_conn(self) -> Conn:
        if self._closed or self._conn is None:
            raise StoreError("The store is closed")
        return self._conn

    def _start(
        self, what: str, body: Callable[[Conn], Awaitable[T]], *, write: bool
    ) -> asyncio.Future[T]:
        """Queue `body` as a transaction task now (so close() waits for it) and return it."""
        self._require_conn()
        task = asyncio.ensure_future(self._transaction(what, body, write))
        self._inflight.add(task)
        task.add_done_callback(self._task_done)
        return task

    async def _run(
        self, what: str, body: Callable[[Conn], Awaitable[T]], *, write: bool = True
    ) -> T:
        """Run `body` in one transaction, serialized with every other call, and commit before
        returning. sqlite3 errors come out as `StoreError`."""
        if self._inline and not self._lock.locked() and not inspect.iscoroutinefunction(body):
            # The hot path: nothing else is using the connection, so run it right here (no
            # task, no wait). Synchronous, so no other call can interleave.
            conn = self._require_conn()
            try:
                done, result = self._run_inline(conn, body, write)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite {what} failed on {self._where!r}: {exc}") from exc
            if done:
                return result  # type: ignore[return-value]
        # Shielded: if the caller is cancelled, the transaction still finishes whole.
        return await asyncio.shield(self._start(what, body, write=write))

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here too: a cancelled caller never will

    async def _transaction(self, what: str, body: Callable[[Conn], Awaitable[T]], write: bool) -> T:
        async with self._lock:
            # Not _require_conn(): close() refuses new calls but lets started ones finish.
            conn = self._conn
            if conn is None:
                raise StoreError("The store is closed")
            try:
                if not inspect.iscoroutinefunction(body):
                    if self._inline:
                        done, result = self._run_inline(conn, body, write)
                        if done:
                            return result
                    # A synchronous body: the whole transaction in one hop to aiosqlite's thread
                    # (one event-loop wake-up per call, not one per statement).
                    return await conn._execute(_in_thread, conn._conn, body, write)
                # IMMEDIATE takes the write lock up front (waiting busy_timeout for another
                # process) rather than failing on upgrade halfway through.
                await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = await body(conn)
                    await conn.execute("COMMIT")
                except BaseException:
                    # After some errors (SQLITE_FULL at COMMIT) SQLite has rolled back already.
                    with contextlib.suppress(sqlite3.Error):
                        await conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite {what} failed on {self._where!r}: {exc}") from exc
            return result

    def _run_inline(
        self, conn: Conn, body: Callable[[sqlite3.Connection], T], write: bool
    ) -> tuple[bool, T | None]:
        """Run a short transaction here, on the loop's thread, unless it would have to wait for
        a lock: (False, None) then, and the caller sends it to the database thread. Safe because
        every use of the connection is serialized by `self._lock` and the thread is idle."""
        raw = conn._conn
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            result = _in_thread(raw, body, write)
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _BUSY_CODES:
                return False, None  # rolled back: the thread retries it whole, waiting
            raise
        finally:
            raw.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        if write:
            self._inline_commits += 1
            if self._inline_commits >= CHECKPOINT_EVERY:
                self._inline_commits = 0
                self._start_checkpoint()
        return True, result

    def _start_checkpoint(self) -> None:
        """Copy the WAL into the database on the database thread, in the background (PASSIVE:
        never waits for readers or writers; outside any transaction, as SQLite requires)."""

        async def run() -> None:
            async with self._lock:
                conn = self._conn
                if conn is None:
                    return
                raw = conn._conn
                await conn._execute(
                    lambda: raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                )

        task = asyncio.ensure_future(run())
        self._inflight.add(task)
        task.add_done_callback(self._task_done)
        task.add_done_callback(_log_checkpoint_failure)

    def _start_prune(self) -> asyncio.Future[None]:
        """Queue the deletion of dedupe and hug-back markers past their lifetime (index range
        deletes on created_at)."""
        now = self._clock()
        self._last_prune = now

        async def body(conn: Conn) -> None:
            await conn.execute(
                "DELETE FROM processed_actions WHERE created_at < ?", (int(now - self._dedupe_ttl),)
            )
            await conn.execute(
                "DELETE FROM returned_actions WHERE created_at < ?",
                (int(now - self._returned_ttl),),
            )

        task = self._start("prune", body, write=True)
        task.add_done_callback(_log_prune_failure)
        return task

    def _maybe_prune(self) -> None:
        # In the background, so no caller waits for (or is cancelled during) maintenance.
        if not self._closed and self._clock() - self._last_prune >= PRUNE_INTERVAL:
            self._start_prune()

    # ------------------------------------------------------------------ counters

    async def record_action(
        self, *, action_id: int, guild_id: int, action: str, actor_id: int, target_id: int
    ) -> ActionCounts:
        check_id("action_id", action_id)
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        check_id("target_id", target_id)
        check_action(action)
        now = int(self._clock())

        def body(raw: sqlite3.Connection) -> ActionCounts:
            # Synchronous: the whole transaction is one hop to the database thread.
            seen = raw.execute(
                "SELECT pair_count, received_total FROM processed_actions WHERE action_id = ?",
                (action_id,),
            ).fetchall()
            if seen:  # a replay: answer what the first delivery answered
                ((pair_count, received_total),) = seen
                return ActionCounts(pair=int(pair_count), received_total=int(received_total))
            # fetchall() steps each RETURNING statement to its end before the next one.
            ((pair,),) = raw.execute(
                "INSERT INTO action_counts (guild_id, actor_id, target_id, action, count)"
                " VALUES (?, ?, ?, ?, 1)"
                " ON CONFLICT (guild_id, actor_id, target_id, action)"
                " DO UPDATE SET count = count + 1 RETURNING count",
                (guild_id, actor_id, target_id, action),
            ).fetchall()
            ((total,),) = raw.execute(
                "INSERT INTO received_totals (guild_id, target_id, action, count)"
                " VALUES (?, ?, ?, 1)"
                " ON CONFLICT (guild_id, target_id, action)"
                " DO UPDATE SET count = count + 1 RETURNING count",
                (guild_id, target_id, action),
            ).fetchall()
            raw.execute(
                "INSERT INTO processed_actions (action_id, guild_id, actor_id, target_id, action,"
                " pair_count, received_total, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (action_id, guild_id, actor_id, target_id, action, pair, total, now),
            )
            return ActionCounts(pair=int(pair), received_total=int(total))

        counts = await self._run("record_action", body)
        self._maybe_prune()
        return counts

    async def counts(
        self, *, guild_id: int, action: str, actor_id: int, target_id: int
    ) -> ActionCounts:
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        check_id("target_id", target_id)
        check_action(action)

        async def body(conn: Conn) -> ActionCounts:
            pair, total = next(
                iter(
                    await conn.execute_fetchall(
                        "SELECT"
                        " (SELECT count FROM action_counts WHERE guild_id = ? AND actor_id = ?"
                        "  AND target_id = ? AND action = ?),"
                        " (SELECT count FROM received_totals WHERE guild_id = ?"
                        "  AND target_id = ? AND action = ?)",
                        (guild_id, actor_id, target_id, action, guild_id, target_id, action),
                    )
                )
            )
            return ActionCounts(pair=int(pair or 0), received_total=int(total or 0))

        return await self._run("counts", body, write=False)

    # ------------------------------------------------------------------ hug back

    async def claim_return(self, *, action_id: int) -> bool:
        check_id("action_id", action_id)
        now = int(self._clock())

        async def body(conn: Conn) -> bool:
            # WHERE true: SQLite's required disambiguation for INSERT … SELECT … ON CONFLICT.
            rows = await conn.execute_fetchall(
                "INSERT INTO returned_actions"
                " (action_id, guild_id, actor_id, target_id, created_at)"
                " SELECT ?, p.guild_id, p.actor_id, p.target_id, ?"
                " FROM (SELECT 1) LEFT JOIN processed_actions AS p ON p.action_id = ?"
                " WHERE true ON CONFLICT (action_id) DO NOTHING RETURNING action_id",
                (action_id, now, action_id),
            )
            return bool(list(rows))

        claimed = await self._run("claim_return", body)
        self._maybe_prune()
        return claimed

    async def is_returned(self, *, action_id: int) -> bool:
        check_id("action_id", action_id)

        async def body(conn: Conn) -> bool:
            rows = await conn.execute_fetchall(
                "SELECT 1 FROM returned_actions WHERE action_id = ?", (action_id,)
            )
            return bool(list(rows))

        return await self._run("is_returned", body, write=False)

    # ------------------------------------------------------------------ stats

    async def user_stats(self, *, guild_id: int, user_id: int, top: int = 5) -> UserStats:
        check_id("guild_id", guild_id)
        check_id("user_id", user_id)
        if not isinstance(top, int) or top < 0:
            raise ValueError(f"top must be a non-negative int, not {top!r}")

        async def body(conn: Conn) -> UserStats:
            actions = await conn.execute_fetchall(
                "SELECT action, SUM(given) AS g, SUM(received) AS r FROM ("
                " SELECT action, count AS given, 0 AS received FROM action_counts"
                "  WHERE guild_id = ? AND actor_id = ?"
                " UNION ALL"
                " SELECT action, 0, count FROM received_totals"
                "  WHERE guild_id = ? AND target_id = ?"
                ") GROUP BY action ORDER BY g + r DESC, action",
                (guild_id, user_id, guild_id, user_id),
            )
            partners = await conn.execute_fetchall(
                "SELECT partner, SUM(n) AS total FROM ("
                " SELECT target_id AS partner, count AS n FROM action_counts"
                "  WHERE guild_id = ? AND actor_id = ? AND target_id != ?"
                " UNION ALL"
                " SELECT actor_id, count FROM action_counts"
                "  WHERE guild_id = ? AND target_id = ? AND actor_id != ?"
                ") GROUP BY partner ORDER BY total DESC, partner LIMIT ?",
                (guild_id, user_id, user_id, guild_id, user_id, user_id, top),
            )
            return UserStats(
                actions=[ActionStat(str(a), int(g), int(r)) for a, g, r in actions],
                top_partners=[Partner(int(p), int(n)) for p, n in partners],
            )

        return await self._run("user_stats", body, write=False)

    # ------------------------------------------------------------------ privacy

    async def set_opt_out(self, *, user_id: int, opted_out: bool) -> None:
        check_id("user_id", user_id)
        now = int(self._clock())

        async def body(conn: Conn) -> None:
            if opted_out:
                # DO NOTHING keeps the first opt-out's timestamp.
                await conn.execute(
                    "INSERT INTO opt_outs (user_id, created_at) VALUES (?, ?)"
                    " ON CONFLICT (user_id) DO NOTHING",
                    (user_id, now),
                )
            else:
                await conn.execute("DELETE FROM opt_outs WHERE user_id = ?", (user_id,))

        await self._write_opt_out("set_opt_out", body, user_id, opted_out)

    async def _write_opt_out(
        self, what: str, body: Callable[[Conn], Awaitable[None]], user_id: int, opted_out: bool
    ) -> None:
        """Run the write, then bring the in-memory opt-outs in step (also when the caller was
        cancelled meanwhile: the transaction goes on, and so does this update)."""
        task = self._start(what, body, write=True)

        def done(task: asyncio.Future[None]) -> None:
            if self._opt_outs is None:
                return
            if task.cancelled() or task.exception() is not None:
                self._opt_outs = None  # unsure what was committed: ask the database from now on
            elif opted_out:
                self._opt_outs.add(user_id)
            else:
                self._opt_outs.discard(user_id)

        task.add_done_callback(done)
        await asyncio.shield(task)

    async def is_opted_out(self, user_id: int) -> bool:
        check_id("user_id", user_id)
        self._require_conn()
        if self._opt_outs is not None:
            return user_id in self._opt_outs  # every action asks: no database trip

        def body(raw: sqlite3.Connection) -> bool:  # one hop (see _in_thread)
            rows = raw.execute("SELECT 1 FROM opt_outs WHERE user_id = ?", (user_id,)).fetchall()
            return bool(rows)

        return await self._run("is_opted_out", body, write=False)

    async def opted_out_among(self, user_ids: Iterable[int]) -> set[int]:
        ids = sorted({check_id("user_id", uid) for uid in user_ids})
        if not ids:
            return set()
        self._require_conn()
        if self._opt_outs is not None:
            return {uid for uid in ids if uid in self._opt_outs}

        async def body(conn: Conn) -> set[int]:
            found: set[int] = set()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = await conn.execute_fetchall(
                    f"SELECT user_id FROM opt_outs WHERE user_id IN ({marks})", chunk
                )
                found.update(int(uid) for (uid,) in rows)
            return found

        return await self._run("opted_out_among", body, write=False)

    async def forget_user(self, *, user_id: int, keep_opt_out: bool) -> None:
        check_id("user_id", user_id)
        u = {"u": user_id}

        async def body(conn: Conn) -> None:
            # Targets first lose what this user gave them, so received totals keep equalling
            # the sums of the pair counts. Rows that would reach zero are deleted rather than
            # updated (CHECK (count > 0) is checked row by row).
            given = (
                "(guild_id, target_id, action) IN"
                " (SELECT guild_id, target_id, action FROM action_counts WHERE actor_id = :u)"
            )
            given_sum = (
                "(SELECT SUM(ac.count) FROM action_counts AS ac WHERE ac.actor_id = :u"
                " AND ac.guild_id = received_totals.guild_id"
                " AND ac.target_id = received_totals.target_id"
                " AND ac.action = received_totals.action)"
            )
            await conn.execute(
                f"DELETE FROM received_totals WHERE {given} AND count <= {given_sum}", u
            )
            await conn.execute(
                f"UPDATE received_totals SET count = count - {given_sum} WHERE {given}", u
            )
            await conn.execute("DELETE FROM received_totals WHERE target_id = :u", u)
            await conn.execute("DELETE FROM action_counts WHERE actor_id = :u OR target_id = :u", u)
            await conn.execute(
                "DELETE FROM processed_actions WHERE actor_id = :u OR target_id = :u", u
            )
            await conn.execute(
                "DELETE FROM returned_actions WHERE actor_id = :u OR target_id = :u", u
            )
            if not keep_opt_out:
                await conn.execute("DELETE FROM opt_outs WHERE user_id = :u", u)

        if keep_opt_out:
            await self._run("forget_user", body)
        else:
            await self._write_opt_out("forget_user", body, user_id, False)

    async def forget_guild(self, *, guild_id: int) -> None:
        check_id("guild_id", guild_id)

        async def body(conn: Conn) -> None:
            for table in ("action_counts", "received_totals", "processed_actions"):
                await conn.execute(f"DELETE FROM {table} WHERE guild_id = ?", (guild_id,))
            # Markers claimed after their action's dedupe row was pruned have no guild: they
            # name nobody and expire with the other markers.
            await conn.execute("DELETE FROM returned_actions WHERE guild_id = ?", (guild_id,))

        await self._run("forget_guild", body)

    # ------------------------------------------------------------------ lifecycle

    async def ping(self) -> None:
        async def body(conn: Conn) -> None:
            await conn.execute_fetchall("SELECT 1")

        await self._run("ping", body, write=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # new calls are refused from here on
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not self._read_only:
                # Cheap, and keeps the planner's statistics fresh for long-lived databases.
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("PRAGMA optimize")
            await conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot close the database {self._where!r}: {exc}") from exc

    async def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self.close()

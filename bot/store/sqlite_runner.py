"""How the SQLite store runs its transactions: one connection, one database thread, and every
transaction one plain synchronous `sqlite3` function.

A transaction runs inline, on the event loop's thread, when no other work on the connection is
queued for the database thread: a short transaction (the counter every action commits, ≈ 70 µs)
costs less than the hand-off to another thread and the GIL contention it causes. It never makes
the loop wait: its busy_timeout is 0, and a database locked by another process (SQLITE_BUSY or
SQLITE_LOCKED, rolled back at once) sends it to the database thread instead, which waits for
the lock. WAL checkpoints (the fsyncs) run on the database thread only, on a connection of their
own, so no inline commit does one or waits for one (a PASSIVE checkpoint blocks no writer).

Whatever runs on the database thread runs there whole and in order: once submitted, a caller's
cancellation only loses the answer, never half a transaction. Calls made while anything is queued
go to the thread too, so calls are applied in the order they were made.

Group commit (`run_grouped`, the counter every action commits; `bot.store.sqlite_group_commit`):
the calls made during one pass of the event loop share one transaction and one COMMIT. Any other
call first runs the group waiting before it, so the order of calls is kept.

Deleted data leaves no copy behind: `secure_delete` zeroes the cells and pages a deletion
frees, and a run with `scrub=True` (forgetting a member or a server) also rewrites the database
and empties the WAL before it returns (see `_scrub`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from bot.store import sqlite_group_commit as grouped
from bot.store.base import StoreError
from bot.store.sqlite_group_commit import Member, Outcome, held_elsewhere

__all__ = ["BUSY_TIMEOUT", "CHECKPOINT_EVERY", "SqliteRunner", "transaction"]

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT = 5.0  # how long the database thread waits for another process's lock
CHECKPOINT_EVERY = 500  # callers' commits between two background WAL checkpoints
SCRUB_WAIT = 1.0  # how long a scrub waits for another process's readers to leave the WAL


def transaction(
    conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T], *, write: bool
) -> T:
    """BEGIN, body, COMMIT; ROLLBACK if anything fails (the connection is in autocommit mode,
    `isolation_level=None`, so these statements are the only transaction control)."""
    # IMMEDIATE takes the write lock up front rather than failing on upgrade halfway through.
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = body(conn)
        conn.execute("COMMIT")
    except BaseException:
        # After some errors (SQLITE_FULL at COMMIT, BUSY at BEGIN) there is nothing to undo.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


class _WouldWait(Exception):
    """An inline transaction met another process's lock and was rolled back."""


def _log_failure(what: str) -> Callable[[asyncio.Future[Any]], None]:
    def done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("%s failed: %s", what, future.exception())

    return done


class SqliteRunner:
    """Owns the store's connection and its database thread. Create it, `await connect(...)`,
    then `run` transactions and `call` other work; `close()` finishes everything queued."""

    def __init__(
        self,
        *,
        where: str,
        busy_timeout: float = BUSY_TIMEOUT,
        checkpoint_every: int = CHECKPOINT_EVERY,
        inline: bool = True,
    ) -> None:
        self._where = where
        self._busy_ms = int(busy_timeout * 1000)
        self._checkpoint_every = checkpoint_every
        self._inline_allowed = inline
        self._inline = False  # decided at connect: WAL (or in-memory) databases only
        self._on_disk = False  # a writable database file: scrubbing applies
        # WAL with checkpoints of our own (wal_autocheckpoint = 0), on this second connection.
        self._checkpointer: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nekocord-store")
        self._conn: sqlite3.Connection | None = None
        self._queued: set[asyncio.Future[Any]] = set()  # work that keeps calls off the loop
        self._background: set[asyncio.Future[Any]] = set()  # checkpoints: close() waits for them
        self._closing = False
        self._commits = 0
        # A scrub met a reader: every commit retries emptying the WAL until one succeeds.
        self._scrub_pending = False
        # Group commit: the calls waiting for the next pass of the loop (`run_grouped`).
        self._group = grouped.CommitGroup()

    # ------------------------------------------------------------------ opening

    async def connect(self, database: str, *, uri: bool, memory: bool, read_only: bool) -> None:
        """Open the connection on the database thread: WAL, synchronous=NORMAL, checkpoints
        ours. Raises `StoreError` ("Cannot open the database …") if that fails."""
        open_it = partial(self._open_connection, database, uri, memory, read_only)
        self._conn = await self._submit(open_it)

    def _open_connection(
        self, database: str, uri: bool, memory: bool, read_only: bool
    ) -> sqlite3.Connection:
        conn = self._connect(database, uri)
        try:
            wal = self._configure(conn, memory=memory, read_only=read_only)
            self._inline = self._inline_allowed and (wal or memory)
            self._on_disk = not (memory or read_only)
            # At rest the connection never waits (inline use); the database thread allows
            # waiting for the length of each job (`_waiting_allowed`).
            conn.execute(f"PRAGMA busy_timeout = {0 if self._inline else self._busy_ms}")
            if wal:
                self._checkpointer = self._connect(database, uri)
                self._checkpointer.execute("PRAGMA synchronous = NORMAL")
                self._checkpointer.execute("PRAGMA secure_delete = ON")
                # Its retries of a scrub hold up the database thread only briefly (our own
                # commits take well under this; another process's reader may stay for long).
                self._checkpointer.execute("PRAGMA busy_timeout = 50")
        except BaseException as exc:
            conn.close()
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"Cannot open the database {self._where!r}: {exc}") from exc
            raise
        return conn

    def _connect(self, database: str, uri: bool) -> sqlite3.Connection:
        try:
            # isolation_level=None: `transaction` issues BEGIN/COMMIT itself (sqlite3's implicit
            # transactions start DEFERRED and commit at surprising times). check_same_thread:
            # used from the loop's thread too, never concurrently (see `run`).
            return sqlite3.connect(
                database,
                uri=uri,
                isolation_level=None,
                timeout=self._busy_ms / 1000,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the database {self._where!r}: {exc}") from exc

    def _configure(self, conn: sqlite3.Connection, *, memory: bool, read_only: bool) -> bool:
        """Set the journal and sync modes; True if the database is writable in WAL mode (and
        ours to checkpoint)."""
        if memory or read_only:
            # Reading the header here turns "not a database" into an error at open.
            conn.execute("PRAGMA journal_mode").fetchall()
            wal = False
        else:
            ((journal,),) = conn.execute("PRAGMA journal_mode = WAL").fetchall()
            wal = str(journal).lower() == "wal"
            if not wal:
                # e.g. a filesystem without shared memory: still correct, just slower.
                log.warning("SQLite refused WAL mode for %s (got %s)", self._where, journal)
        # NORMAL is durable against process crashes in WAL mode, and saves an fsync per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        # Freed pages and cells are zeroed: deleted rows leave no trace in the database file or
        # its freelist (some builds default to it, not all).
        conn.execute("PRAGMA secure_delete = ON")
        if wal:
            # Ours, on the database thread (see CHECKPOINT_EVERY), never inside a commit.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        return wal

    # ------------------------------------------------------------------ running

    def require_open(self) -> sqlite3.Connection:
        if self._closing or self._conn is None:
            raise StoreError("The store is closed")
        return self._conn

    async def run(
        self,
        what: str,
        body: Callable[[sqlite3.Connection], T],
        *,
        write: bool,
        inline: bool = True,
        settle: Callable[[bool], None] | None = None,
        scrub: bool = False,
    ) -> T:
        """Run `body` in one transaction and return its result once committed; sqlite3 errors
        come out as `StoreError` naming `what`. `inline=False` keeps long transactions off the
        loop's thread. `settle(committed)`, if given, is called on the loop's thread when the
        transaction is over, also if the caller was cancelled meanwhile. `scrub`: once
        committed, empty the WAL so no file keeps what `body` deleted (on the database thread,
        in the same job: a cancelled caller does not skip it)."""
        conn = self.require_open()
        if self._group:
            self._commit_group()  # called before this one: committed before it
        if inline and not scrub and self._inline and not self._queued:
            # Nothing else is using the connection and this runs to its end without yielding,
            # so nothing can interleave.
            try:
                result = self._transaction(conn, what, body, write, on_thread=False)
            except _WouldWait:
                pass  # rolled back: the database thread runs it whole, waiting for the lock
            except BaseException:
                if settle is not None:
                    settle(False)
                raise
            else:
                if write:
                    self._committed()
                if settle is not None:
                    settle(True)
                return result
        job = partial(self._transaction, conn, what, body, write, True)
        if scrub:
            job = partial(self._scrubbed, job, conn)
        future = self._submit(job)
        if write:
            future.add_done_callback(self._committed_on_thread)
        if settle is not None:
            future.add_done_callback(
                lambda done: settle(not done.cancelled() and done.exception() is None)
            )
        return await asyncio.shield(future)

    async def run_grouped(self, what: str, body: Callable[[sqlite3.Connection], T]) -> T:
        """Like `run(what, body, write=True)`, but in one transaction with the other calls
        made during this pass of the event loop (group commit, `bot.store.sqlite_group_commit`).
        Returns once the COMMIT holding `body` succeeded. A cancelled caller only loses the
        answer: its body is committed with the group."""
        self.require_open()
        return await self._group.join(what, body, self._commit_group)

    def _commit_group(self) -> None:
        """Run the waiting group: inline when the connection is free, else as one job on the
        database thread (also when another process holds the lock)."""
        group = self._group.take()
        conn = self._conn
        if not group:
            return
        if conn is None:
            self._settle_group(group, grouped.failed(group, StoreError("The store is closed")))
            return
        if self._inline and not self._queued:
            try:
                outcomes = self._group_transaction(conn, group, on_thread=False)
            except _WouldWait:
                pass  # rolled back whole: the database thread runs the group, waiting
            else:
                self._settle_group(group, outcomes)
                return
        future = self._submit(partial(self._group_transaction, conn, group, on_thread=True))
        future.add_done_callback(partial(self._group_done, group))

    def _group_done(self, group: list[Member], done: asyncio.Future[dict[int, Outcome]]) -> None:
        self._settle_group(group, grouped.outcomes_of(group, done))

    def _settle_group(self, group: list[Member], outcomes: dict[int, Outcome]) -> None:
        if any(ok for ok, _ in outcomes.values()):
            self._committed()
        grouped.settle(group, outcomes)

    def _group_transaction(
        self, conn: sqlite3.Connection, group: list[Member], on_thread: bool
    ) -> dict[int, Outcome]:
        """`run_group`. Inline, another process's lock raises `_WouldWait` (rolled back:
        nothing of the group is written, the database thread runs it whole)."""
        if on_thread:
            with self._waiting_allowed(conn):
                return grouped.run_group(conn, group, inline=False, failure=self._failure)
        try:
            return grouped.run_group(conn, group, inline=True, failure=self._failure)
        except sqlite3.OperationalError as exc:  # only the lock is raised inline
            raise _WouldWait from exc

    def start(
        self, what: str, body: Callable[[sqlite3.Connection], T], *, write: bool, purpose: str
    ) -> asyncio.Future[T]:
        """Queue `body` as a transaction on the database thread without waiting for it (for
        maintenance such as pruning); a failure is logged as "`purpose` failed: …"."""
        if self._group:
            self._commit_group()
        future = self._submit(
            partial(self._transaction, self.require_open(), what, body, write, True)
        )
        future.add_done_callback(_log_failure(purpose))
        return future

    async def call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` with the connection on the database thread, in order with every
        transaction and outside any; its exceptions pass through unchanged."""
        conn = self.require_open()
        if self._group:
            self._commit_group()

        def with_waiting() -> T:
            with self._waiting_allowed(conn):
                return job(conn)

        return await asyncio.shield(self._submit(with_waiting))

    def _transaction(
        self,
        conn: sqlite3.Connection,
        what: str,
        body: Callable[[sqlite3.Connection], T],
        write: bool,
        on_thread: bool,
    ) -> T:
        """`transaction` with sqlite3 errors as `StoreError`. Inline (not `on_thread`), a lock
        held by another process raises `_WouldWait` (rolled back) rather than waiting."""
        try:
            if on_thread:
                with self._waiting_allowed(conn):
                    return transaction(conn, body, write=write)
            return transaction(conn, body, write=write)
        except sqlite3.OperationalError as exc:
            if not on_thread and held_elsewhere(exc):
                raise _WouldWait from exc
            raise self._failure(what, exc) from exc
        except sqlite3.Error as exc:
            raise self._failure(what, exc) from exc

    def _scrubbed(self, transact: Callable[[], T], conn: sqlite3.Connection) -> T:
        result = transact()
        if self._on_disk:
            self._scrub(conn)
        return result

    def _scrub(self, conn: sqlite3.Connection) -> None:
        """On the database thread, after a deletion committed, so that no file keeps a copy of
        the deleted rows. secure_delete is not enough: when SQLite rebalances a b-tree it moves
        cells between pages and leaves stale copies in the pages' unused space, which no later
        deletion zeroes. VACUUM rewrites every page whole (≈ 10 ms per MB); then the WAL, which
        holds the older versions of every page, is copied in and truncated (`_empty_wal`). Without
        WAL, the rollback journal is deleted at each commit."""
        try:
            with self._waiting_allowed(conn):
                conn.execute("VACUUM")
        except sqlite3.Error as exc:  # e.g. a full disk: VACUUM needs the database's size again
            log.warning(
                "Could not rewrite %s after deleting data (%s): stale copies of deleted rows "
                "may stay in unused space of its pages until the next deletion's rewrite",
                self._where,
                exc,
            )
        if self._checkpointer is not None:  # WAL mode
            self._empty_wal(conn)

    def _empty_wal(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL into the database and truncate it to zero bytes. Nothing of ours runs
        meanwhile; another process's reader can block it: retried for up to SCRUB_WAIT, then
        logged and retried after each later commit (the rows are deleted either way; only old
        copies remain in the -wal file meanwhile)."""
        ((previous,),) = conn.execute("PRAGMA busy_timeout").fetchall()
        conn.execute("PRAGMA busy_timeout = 100")
        deadline = time.monotonic() + SCRUB_WAIT
        try:
            while True:
                problem = _truncate_wal(conn)
                if problem is None:
                    self._scrub_pending = False
                    return
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(previous)}")
        self._scrub_pending = True
        log.warning(
            "Could not empty the WAL of %s after deleting data (%s): old copies of the deleted "
            "rows stay in its -wal file until a later commit can empty it",
            self._where,
            problem,
        )

    @contextlib.contextmanager
    def _waiting_allowed(self, conn: sqlite3.Connection) -> Iterator[None]:
        """On the database thread: wait up to busy_timeout for another process's lock."""
        if not self._inline:
            yield  # waiting is the connection's setting at rest
            return
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        try:
            yield
        finally:
            conn.execute("PRAGMA busy_timeout = 0")

    def _failure(self, what: str, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"SQLite {what} failed on {self._where!r}: {exc}")

    def _submit(self, job: Callable[[], T], *, uses_connection: bool = True) -> asyncio.Future[T]:
        """Queue `job` on the database thread; the returned future is never cancelled by us.
        Nothing runs inline until a job that `uses_connection` is done."""
        future = asyncio.wrap_future(self._executor.submit(job))
        pending = self._queued if uses_connection else self._background
        pending.add(future)
        future.add_done_callback(pending.discard)
        future.add_done_callback(_retrieve)
        return future

    # ------------------------------------------------------------------ checkpoints

    def _committed_on_thread(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._committed()

    def _committed(self) -> None:
        self._commits += 1
        checkpointer = self._checkpointer
        if not checkpointer or self._closing:
            return
        if self._scrub_pending and not self._background:
            # One retry at a time, each waiting at most the checkpointer's busy_timeout.
            retry = self._submit(partial(self._retry_scrub, checkpointer), uses_connection=False)
            retry.add_done_callback(_log_failure("Emptying the WAL"))
        elif self._commits >= self._checkpoint_every:
            self._commits = 0
            job = partial(_checkpoint, checkpointer)
            checkpoint = self._submit(job, uses_connection=False)
            checkpoint.add_done_callback(_log_failure("WAL checkpoint"))

    def _retry_scrub(self, checkpointer: sqlite3.Connection) -> None:
        if self._scrub_pending and _truncate_wal(checkpointer) is None:
            self._scrub_pending = False
            self._commits = 0
            log.info("Emptied the WAL of %s: no old copy of deleted data is left", self._where)

    # ------------------------------------------------------------------ closing

    async def close(self, *, optimize: bool) -> None:
        """Refuse new work, finish what is queued, close the connection and stop the thread.
        `optimize`: refresh the planner's statistics first (writable databases)."""
        self._closing = True
        try:
            self._commit_group()  # accepted before closing: committed (or failed) first
            while self._queued or self._background:
                pending = self._queued | self._background
                await asyncio.gather(*pending, return_exceptions=True)
            conn, self._conn = self._conn, None
            checkpointer, self._checkpointer = self._checkpointer, None
            if conn is not None:
                job = partial(_close_connections, conn, checkpointer, optimize)
                try:
                    await asyncio.shield(self._submit(job))
                except sqlite3.Error as exc:
                    raise StoreError(f"Cannot close the database {self._where!r}: {exc}") from exc
        finally:
            self._executor.shutdown(wait=True)  # the thread is idle: this only joins it


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved here too: a cancelled caller never will


def _checkpoint(checkpointer: sqlite3.Connection) -> None:
    """Copy the WAL into the database (PASSIVE: waits for nobody, and writers on the store's
    connection go on meanwhile)."""
    ((_busy, frames, copied),) = checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    log.debug("WAL checkpoint: %s of %s frames in the database", copied, frames)


def _truncate_wal(conn: sqlite3.Connection) -> str | None:
    """A TRUNCATE checkpoint: None once the WAL is in the database and zero bytes long, else
    what stopped it."""
    try:
        ((busy, frames, copied),) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    if busy:
        return f"another connection is using it ({copied} of {frames} frames copied)"
    return None


def _close_connections(
    conn: sqlite3.Connection, checkpointer: sqlite3.Connection | None, optimize: bool
) -> None:
    if checkpointer is not None:
        checkpointer.close()  # first: the last connection to close checkpoints the WAL whole
    if optimize:
        # Cheap, and keeps the planner's statistics fresh for long-lived databases.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA optimize")
    conn.close()

"""The embedded SQLite backend: WAL, one connection for every call, one short transaction per call.

Every call is one plain synchronous transaction (`bot.store.sqlite_queries`) run by
`SqliteRunner` (`bot.store.sqlite_runner`): inline on the event loop's thread when the connection
is free and the transaction would not wait, else on the store's one database thread. Calls are
serialized, which makes counts exact and each call's returned counts consistent (100 concurrent
`record_action` return pair counts 1..100); a caller cancelled mid-call never leaves a half-done
transaction: it commits or rolls back whole.

Opt-outs are read once at open and kept in memory in step with this store's own writes, so the
check every action makes costs no database trip (another process writing opt-outs into the same
file is seen after a restart). Guild settings are cached the same way, read through a bounded
least-recently-used cache (`bot.store.settings_cache`): there may be many more guilds than
opted-out users, and settings of guilds nobody uses need not sit in memory.

Durability: WAL with `synchronous=NORMAL` makes a commit survive a crash or `kill -9` of the
process (the WAL is written before COMMIT returns); only an OS crash or power loss may drop the
last few commits, never corrupt the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bot.store import sqlite_queries as queries
from bot.store.base import (
    DAILY_KEEP_DAYS,
    DAY,
    ActionCounts,
    GuildSettings,
    Leaderboard,
    Store,
    StoreError,
    UserData,
    UserStats,
)
from bot.store.blocks import MAX_BLOCKS
from bot.store.settings_cache import SETTINGS_CACHE_SIZE, SettingsCache
from bot.store.sqlite_runner import BUSY_TIMEOUT, CHECKPOINT_EVERY, SqliteRunner
from bot.store.sqlite_schema import (
    MIGRATIONS,
    MIN_SQLITE,
    Migration,
    migrate,
    parse_sqlite_url,
    prepare_file,
)

__all__ = ["DEDUPE_TTL", "PRUNE_INTERVAL", "RETURNED_TTL", "SqliteStore"]

T = TypeVar("T")
# One of `queries`, bound to its arguments, run with the store's connection.
Body = Callable[[sqlite3.Connection], T]

# Gateway redeliveries after a resume come within minutes; a day is ample.
DEDUPE_TTL = 24 * 3600.0
# Hug-back buttons must work once for as long as anyone might click them.
RETURNED_TTL = 30 * 24 * 3600.0
# Pruning runs at open and then at most this often, piggy-backed on writes.
PRUNE_INTERVAL = 3600.0


class SqliteStore(Store):
    """The SQLite `Store`. Open with `await SqliteStore.open(path)` or `bot.store.open_store`."""

    _queries = queries
    _block_queries = queries

    def __init__(
        self,
        runner: SqliteRunner,
        *,
        where: str,
        read_only: bool,
        clock: Callable[[], float],
        dedupe_ttl: float,
        returned_ttl: float,
        settings_cache: int = SETTINGS_CACHE_SIZE,
    ) -> None:
        self._runner = runner
        self._where = where
        self._read_only = read_only
        self._closed = False
        self._clock = clock
        self._dedupe_ttl = dedupe_ttl
        self._returned_ttl = returned_ttl
        self._last_prune = float("-inf")
        # Every opted-out user id, read at open (None: not read, or unsure: ask the database).
        self._opt_outs: set[int] | None = None
        self._blocks: dict[int, frozenset[str]] | None = None  # likewise, every member's blocks
        self._settings = SettingsCache(settings_cache)
        self._require_open = runner.require_open
        self._known_settings = self._settings.get

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
        checkpoint_every: int = CHECKPOINT_EVERY,
        inline: bool = True,
        migrations: Sequence[Migration] = MIGRATIONS,
        settings_cache: int = SETTINGS_CACHE_SIZE,
    ) -> SqliteStore:
        """Open (creating it and its directory if needed), set WAL, migrate, prune.

        `busy_timeout`: seconds the database thread waits for another process's lock.
        `checkpoint_every`: commits between two WAL checkpoints. `inline=False` runs every
        transaction on the database thread (as for databases not in WAL mode). `migrations`:
        the schema steps (tests add steps of their own). `settings_cache`: how many guilds'
        settings are kept in memory (least recently used out).

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
            where, database = await asyncio.to_thread(prepare_file, path, mode)
        read_only = mode == "ro"
        runner = SqliteRunner(
            where=where, busy_timeout=busy_timeout, checkpoint_every=checkpoint_every, inline=inline
        )
        lifetimes = {"dedupe_ttl": dedupe_ttl, "returned_ttl": returned_ttl}
        store = cls(
            runner,
            where=where,
            read_only=read_only,
            clock=clock,
            settings_cache=settings_cache,
            **lifetimes,
        )
        try:
            await runner.connect(database, uri=not memory, memory=memory, read_only=read_only)
            store._opt_outs, store._blocks = await runner.call(partial(store._prepare, migrations))
        except BaseException:
            await runner.close(optimize=False)
            raise
        if not read_only:
            # Maintenance only: a failure (a full disk) is logged and must not stop the start.
            with contextlib.suppress(StoreError):
                await asyncio.shield(store._start_prune())
        return store

    def _prepare(
        self, migrations: Sequence[Migration], conn: sqlite3.Connection
    ) -> tuple[set[int], dict[int, frozenset[str]]]:
        """On the database thread at open: migrate, then read the opt-outs and blocks."""
        step = "migrate"
        try:
            migrate(conn, where=self._where, read_only=self._read_only, migrations=migrations)
            step = "read opt-outs from"
            return queries.read_opt_outs(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot {step} the database {self._where!r}: {exc}") from exc

    async def run_on_connection(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` with the store's own `sqlite3.Connection` on its database thread, after the
        calls made before and before the calls made after, outside any transaction.

        For tests and operators' tools (PRAGMAs, staging a full disk, inspecting the schema):
        whatever `job` changes is its own responsibility. sqlite3 errors pass through as they
        are."""
        return await self._runner.call(job)

    # ------------------------------------------------------------------ maintenance

    def _start_prune(self) -> asyncio.Future[None]:
        """Queue the deletion of dedupe and hug-back markers past their lifetime."""
        now = self._clock()
        self._last_prune = now
        body = partial(
            queries.prune,
            processed_before=int(now - self._dedupe_ttl),
            returned_before=int(now - self._returned_ttl),
            daily_before=int(now) // DAY - (DAILY_KEEP_DAYS - 1),
        )
        return self._runner.start("prune", body, write=True, purpose="Pruning old markers")

    def _maybe_prune(self) -> None:
        # In the background, so no caller waits for (or is cancelled during) maintenance.
        if not self._closed and self._clock() - self._last_prune >= PRUNE_INTERVAL:
            self._start_prune()

    # ------------------------------------------------------------------ running the queries
    # `Store` has checked the arguments and bound them to `queries`; what is SQLite's own is
    # how each runs (`SqliteRunner.run`: write or read, inline or on the database thread,
    # scrubbed) and how memory is kept in step (`settle`, called also for a cancelled caller).

    async def _run_record_action(self, query: Body[list[ActionCounts]]) -> list[ActionCounts]:
        # Grouped: actions arriving together share one commit (each still waits for it).
        counts = await self._runner.run_grouped("record_action", query)
        self._maybe_prune()
        return counts

    async def _run_counts(self, query: Body[ActionCounts]) -> ActionCounts:
        return await self._runner.run("counts", query, write=False)

    async def _run_claim_return(self, query: Body[bool]) -> bool:
        claimed = await self._runner.run("claim_return", query, write=True)
        self._maybe_prune()
        return claimed

    async def _run_is_returned(self, query: Body[bool]) -> bool:
        return await self._runner.run("is_returned", query, write=False)

    async def _run_user_stats(self, query: Body[UserStats]) -> UserStats:
        return await self._runner.run("user_stats", query, write=False)

    async def _run_leaderboard(self, query: Body[Leaderboard]) -> Leaderboard:
        return await self._runner.run("leaderboard", query, write=False)

    async def _run_user_data(self, query: Body[UserData]) -> UserData:
        return await self._runner.run("user_data", query, write=False)

    async def _run_set_opt_out(self, query: Body[None], user_id: int, opted_out: bool) -> None:
        settle = self._opt_out_settler(user_id, opted_out)
        await self._runner.run("set_opt_out", query, write=True, settle=settle)

    def _opt_out_settler(self, user_id: int, opted_out: bool) -> Callable[[bool], None]:
        """Brings the in-memory opt-outs in step once the write is over (also when the caller
        was cancelled meanwhile: the transaction goes on, and so does this update)."""

        def settle(committed: bool) -> None:
            if self._opt_outs is None:
                return
            if not committed:
                self._opt_outs = None  # unsure what was committed: ask the database from now on
            elif opted_out:
                self._opt_outs.add(user_id)
            else:
                self._opt_outs.discard(user_id)

        return settle

    def _known_opt_outs(self) -> set[int] | None:
        return self._opt_outs

    def _known_blocks(self) -> dict[int, frozenset[str]] | None:
        return self._blocks

    async def _run_set_block(
        self, query: Body[list[str]], user_id: int, action: str, blocked: bool
    ) -> list[str]:
        def settle(committed: bool) -> None:
            # The query's own rule, on memory that mirrors the table (one writer at a time).
            if self._blocks is None:
                return
            if not committed:
                self._blocks = None  # unsure what was committed: ask the database from now on
                return
            now = self._blocks.get(user_id, frozenset())
            if blocked and (action in now or len(now) < MAX_BLOCKS):
                self._blocks[user_id] = now | {action}
            elif not blocked and action in now:
                self._blocks[user_id] = now - {action}

        return await self._runner.run("set_block", query, write=True, settle=settle)

    async def _run_blocks_of(self, query: Body[list[str]]) -> list[str]:
        return await self._runner.run("blocks_of", query, write=False)

    async def _run_opted_out_among(self, query: Body[set[int]]) -> set[int]:
        return await self._runner.run("opted_out_among", query, write=False)

    async def _run_forget_user(self, query: Body[None], user_id: int, keep_opt_out: bool) -> None:
        # On the database thread: a long-time user's rows may take a while to delete. Scrubbed:
        # once this returns, no file holds the user's id (unless another process blocks it).
        opt_out = None if keep_opt_out else self._opt_out_settler(user_id, False)

        def settle(committed: bool) -> None:
            if opt_out is not None:
                opt_out(committed)
            if self._blocks is not None:
                if committed:
                    self._blocks.pop(user_id, None)
                else:
                    self._blocks = None

        await self._runner.run(
            "forget_user", query, write=True, inline=False, settle=settle, scrub=True
        )

    async def _run_forget_guild(self, query: Body[None], guild_id: int) -> None:
        # On the database thread: a whole guild's rows may take a while to delete. Scrubbed,
        # as forget_user.
        await self._runner.run(
            "forget_guild",
            query,
            write=True,
            inline=False,
            scrub=True,
            settle=lambda _committed: self._settings.forget(guild_id),
        )

    async def _run_guild_settings(self, query: Body[GuildSettings], guild_id: int) -> GuildSettings:
        ticket = self._settings.ticket()
        settings = await self._runner.run("guild_settings", query, write=False)
        self._settings.fill(guild_id, settings, ticket)
        return settings

    async def _run_save_guild_settings(
        self, query: Body[None], guild_id: int, settings: GuildSettings
    ) -> None:
        def settle(committed: bool) -> None:
            if committed:
                self._settings.store(guild_id, settings)
            else:
                self._settings.forget(guild_id)  # unsure what was committed

        await self._runner.run("save_guild_settings", query, write=True, settle=settle)

    async def _run_change_guild_settings(
        self, query: Body[GuildSettings], guild_id: int
    ) -> GuildSettings:
        changed: list[GuildSettings] = []

        def change(conn: sqlite3.Connection) -> GuildSettings:
            changed.append(query(conn))
            return changed[-1]

        def settle(committed: bool) -> None:
            if committed:
                self._settings.store(guild_id, changed[-1])
            else:
                self._settings.forget(guild_id)  # unsure what was committed

        return await self._runner.run("change_guild_settings", change, write=True, settle=settle)

    # ------------------------------------------------------------------ lifecycle

    async def ping(self) -> None:
        await self._runner.run("ping", queries.ping, write=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # new calls are refused from here on
        await self._runner.close(optimize=not self._read_only)

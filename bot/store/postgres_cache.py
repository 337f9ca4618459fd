"""What the PostgreSQL store answers from memory: guild settings and the set of opted-out users,
kept true across processes with LISTEN/NOTIFY.

Every command reads both, so reading them from the database would cost two round trips per
command, which is what a burst of commands queues on. Instead every write of either sends a
notification in its own transaction (delivered at commit, `notify_*` below) and every process
listens on one connection of its own. The cache answers only while that connection is up:
when it drops (a server restart, a network cut), the cache is emptied and the store reads the
database until the listener is back and the opt-outs are read again. Another process's change is
seen once its notification arrives: milliseconds after its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from bot.store.base import GuildSettings
from bot.store.settings_cache import SETTINGS_CACHE_SIZE, SettingsCache

__all__ = ["CHANNEL", "SharedCache", "notify_opt_out", "notify_settings"]

log = logging.getLogger(__name__)

CHANNEL = "nekocord_changes"
RECONNECT_CAP = 5.0


async def notify_settings(conn: asyncpg.Connection, guild_id: int) -> None:
    """Inside the writing transaction: every process forgets the guild's cached settings."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"s:{guild_id}")


async def notify_opt_out(conn: asyncpg.Connection, user_id: int, opted_out: bool) -> None:
    """Inside the writing transaction: every process learns the user's opt-out state."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"o:{user_id}:{int(opted_out)}")


class SharedCache:
    """Settings and opt-outs, valid only while the listener is connected (`opt_outs()` and
    `settings()` return None otherwise: ask the database)."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        load_opt_outs: Callable[[], Awaitable[set[int]]],
        *,
        capacity: int = SETTINGS_CACHE_SIZE,
    ) -> None:
        self._connect = connect
        self._load_opt_outs = load_opt_outs
        self._capacity = capacity
        self._settings = SettingsCache(capacity)
        self._opt_outs: set[int] | None = None
        self._opt_out_changes = 0  # notifications seen: a load they raced is read again
        self._conn: asyncpg.Connection | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def live(self) -> bool:
        return self._conn is not None and self._opt_outs is not None

    # -- reads ------------------------------------------------------------------------------
    def opt_outs(self) -> set[int] | None:
        return self._opt_outs if self.live else None

    def settings(self, guild_id: int) -> GuildSettings | None:
        return self._settings.get(guild_id) if self.live else None

    def ticket(self) -> int:
        return self._settings.ticket()

    def fill(self, guild_id: int, settings: GuildSettings, ticket: int) -> None:
        if self.live:
            self._settings.fill(guild_id, settings, ticket)

    # -- this process's own committed writes (the notification follows) --------------------
    def stored_settings(self, guild_id: int, settings: GuildSettings) -> None:
        self._settings.store(guild_id, settings)

    def forget_settings(self, guild_id: int) -> None:
        self._settings.forget(guild_id)

    def stored_opt_out(self, user_id: int, opted_out: bool) -> None:
        self._apply_opt_out(user_id, opted_out)

    # -- the listener -----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen now, or keep trying in the background: the store works meanwhile."""
        try:
            await self._listen()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("Cannot listen for changes (%s): reading from the database", _name(exc))
            self._reconnect_later()

    async def _listen(self) -> None:
        conn = await self._connect()
        try:
            conn.add_termination_listener(self._lost)
            await conn.add_listener(CHANNEL, self._notified)
            while True:  # listening first: a change during the load is then seen, read again
                seen = self._opt_out_changes
                loaded = await self._load_opt_outs()
                if seen == self._opt_out_changes:
                    break
        except BaseException:
            conn.terminate()
            raise
        self._settings = SettingsCache(self._capacity)
        self._opt_outs = loaded
        self._conn = conn

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        kind, _, rest = str(payload).partition(":")
        try:
            if kind == "s":
                self._settings.forget(int(rest))
            elif kind == "o":
                user, _, state = rest.partition(":")
                self._apply_opt_out(int(user), state == "1")
        except ValueError:
            log.warning("Ignoring a malformed change notification")

    def _apply_opt_out(self, user_id: int, opted_out: bool) -> None:
        self._opt_out_changes += 1
        if self._opt_outs is not None:
            if opted_out:
                self._opt_outs.add(user_id)
            else:
                self._opt_outs.discard(user_id)

    def _lost(self, conn: object) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        self._opt_outs = None  # unsure from here on: the database answers
        if not self._closed:
            log.warning("Lost the change listener: reading from the database until it is back")
            self._reconnect_later()

    def _reconnect_later(self) -> None:
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.create_task(self._reconnect(), name="nekocord-listen")

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                delay = min(delay * 2, RECONNECT_CAP)
                continue
            if self._closed:  # closed while connecting
                await self.close()
            else:
                log.info("Listening for changes again")
            return

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None and self._reconnecting is not asyncio.current_task():
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnecting
        conn, self._conn = self._conn, None
        self._opt_outs = None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()


def _name(exc: BaseException) -> str:
    return type(exc).__name__

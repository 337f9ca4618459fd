"""What the PostgreSQL store answers from memory: guild settings and the set of opted-out users,
kept true across processes with LISTEN/NOTIFY and change counters.

Every command reads both, so reading them from the database would cost two round trips per
command, which is what a burst of commands queues on. Instead every process listens on one
connection of its own, and every write of either takes the next version of its topic in
`nekocord_changes` (schema version 4), stamps the rows it writes with it and sends an empty
notification (delivered at commit, `bump` below).

The notification says only that something changed. PostgreSQL has no permissions on channels:
any role that can connect may NOTIFY on ours or LISTEN to it. So nothing is taken from a
notification: on one, the process reads, on its listening connection, the rows stamped past
the version it saw last, from tables only the bot's role can read (opt-outs added: their ids;
settings changed: those guilds are forgotten, read again when asked). A deletion leaves no row
to find, so it also marks its topic `removed`: the opt-outs are read whole again, the cached
settings all forgotten. A forged notification costs one such read and changes nothing; bursts
of notifications share reads (one in flight, at most one more queued).

The cache answers only while the listener is up: when it drops (a server restart, a network
cut) or a read of changes fails, the cache is emptied and the store reads the database until
the listener is back and the opt-outs are read again. Another process's change is seen once its
notification arrives and the changes are read: milliseconds after its commit; this process's
own writes wait for that read before they return (`catch_up`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from bot.store.base import GuildSettings
from bot.store.settings_cache import SETTINGS_CACHE_SIZE, SettingsCache

__all__ = ["CHANNEL", "OPT_OUTS", "SETTINGS", "SharedCache", "bump", "mark_removed"]

log = logging.getLogger(__name__)

CHANNEL = "nekocord_changes"
OPT_OUTS, SETTINGS = "opt_outs", "settings"  # the topics of nekocord_changes
RECONNECT_CAP = 5.0
READ_TIMEOUT = 10.0  # seconds a read of changes may take before the listener is dropped
# Seconds a write waits for the read of its own change: past that the cache is dropped (the
# database answers) rather than the command waiting out Discord's window.
CATCH_UP_TIMEOUT = 2.0

# The version this write stamps on its rows. First in the writing transaction: the topic's row
# lock orders writers, so versions become visible in order and a reader that saw version n has
# seen every version before it. The notification is empty: it says only "read the changes".
BUMP = (
    f"UPDATE nekocord_changes SET version = version + 1 WHERE topic = $1"
    f" RETURNING version, pg_notify('{CHANNEL}', '')"
)

# At (re)connection: every opted-out id and the versions they are current to, in one snapshot.
_LOAD = (
    "SELECT o.version, s.version, ARRAY(SELECT user_id FROM opt_outs),"
    " ARRAY(SELECT user_id FROM action_blocks ORDER BY user_id, action),"
    " ARRAY(SELECT action FROM action_blocks ORDER BY user_id, action)"
    " FROM nekocord_changes AS o, nekocord_changes AS s"
    " WHERE o.topic = 'opt_outs' AND s.topic = 'settings'"
)
# Blocks (schema version 7) ride on the opt-outs' topic: their rows in _CHANGES' last two arrays,
# pairwise (one statement: one snapshot, one order).
_BLOCKS_SINCE = (
    "  SELECT user_id, action FROM action_blocks WHERE o.removed > $1"
    "  UNION ALL SELECT user_id, action FROM action_blocks"
    "  WHERE o.removed <= $1 AND version > $1"
)
# After a notification, in one snapshot: what changed since the versions seen ($1, $2). A
# topic marked removed since is read whole (opt-outs) or forgotten whole (settings).
_CHANGES = (
    "SELECT o.version, o.removed > $1, ARRAY("
    "  SELECT user_id FROM opt_outs WHERE o.removed > $1"
    "  UNION ALL SELECT user_id FROM opt_outs WHERE o.removed <= $1 AND version > $1),"
    " s.version, s.removed > $2, ARRAY("
    "  SELECT guild_id FROM guild_settings WHERE s.removed <= $2 AND version > $2),"
    f" ARRAY(SELECT user_id FROM ({_BLOCKS_SINCE}) AS b ORDER BY user_id, action),"
    f" ARRAY(SELECT action FROM ({_BLOCKS_SINCE}) AS b ORDER BY user_id, action)"
    " FROM nekocord_changes AS o, nekocord_changes AS s"
    " WHERE o.topic = 'opt_outs' AND s.topic = 'settings'"
)


async def bump(conn: asyncpg.Connection, topic: str) -> int:
    """Inside the writing transaction, before any row of `topic` is written: its version."""
    return int((await conn.fetchrow(BUMP, topic))[0])


async def mark_removed(conn: asyncpg.Connection, topic: str, version: int) -> None:
    """After `bump`, when the transaction deleted rows of `topic`."""
    await conn.execute("UPDATE nekocord_changes SET removed = $2 WHERE topic = $1", topic, version)


class SharedCache:
    """Settings, opt-outs and blocks, valid only while the listener is connected (`opt_outs()` and
    `settings()` return None otherwise: ask the database)."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        capacity: int = SETTINGS_CACHE_SIZE,
    ) -> None:
        self._connect = connect
        self._capacity = capacity
        self._settings = SettingsCache(capacity)
        self._opt_outs: set[int] | None = None
        self._blocks: dict[int, frozenset[str]] = {}  # current while `_opt_outs` is
        self._seen = (0, 0)  # the versions of (opt-outs, settings) read
        self._conn: asyncpg.Connection | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        # Reads of changes asked for (notifications, this process's writes) and done: one runs
        # at a time, and asks made meanwhile are all answered by the next.
        self._asked = 0
        self._answered = 0
        self._reading: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closed = False

    @property
    def live(self) -> bool:
        return self._conn is not None and self._opt_outs is not None

    # -- reads ------------------------------------------------------------------------------
    def opt_outs(self) -> set[int] | None:
        return self._opt_outs if self.live else None

    def blocks(self) -> dict[int, frozenset[str]] | None:
        return self._blocks if self.live else None

    def settings(self, guild_id: int) -> GuildSettings | None:
        return self._settings.get(guild_id) if self.live else None

    def ticket(self) -> int:
        return self._settings.ticket()

    def fill(self, guild_id: int, settings: GuildSettings, ticket: int) -> None:
        if self.live:
            self._settings.fill(guild_id, settings, ticket)

    # -- this process's own writes ------------------------------------------------------------
    def forget_settings(self, guild_id: int) -> None:
        self._settings.forget(guild_id)

    async def catch_up(self) -> None:
        """Once this returns, every change committed before it was called has been read (or the
        cache is not live, and answers nothing)."""
        if not self.live:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self._ask(), waiter))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), CATCH_UP_TIMEOUT)
        except TimeoutError:
            if self._conn is not None:
                self._drop(self._conn, "Reading changes is slow: listening again")

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
            opt_outs_version, settings_version, opted_out, blockers, blocked = await conn.fetchrow(
                _LOAD, timeout=READ_TIMEOUT
            )
        except BaseException:
            conn.terminate()
            raise
        self._settings = SettingsCache(self._capacity)
        self._blocks = _merged({}, blockers, blocked)
        self._opt_outs = {int(user_id) for user_id in opted_out}
        self._seen = (int(opt_outs_version), int(settings_version))
        self._conn = conn
        # Listening began before the load: a change notified during it is read once more.
        self._ask()

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._ask()  # the payload is never read: anyone may send one

    def _ask(self) -> int:
        self._asked += 1
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_changes(), name="nekocord-changes")
        return self._asked

    async def _read_changes(self) -> None:
        while self._answered < self._asked:
            if self._conn is None or self._opt_outs is None:
                return  # not live: _lost answered the waiters
            conn: asyncpg.Connection = self._conn
            asked = self._asked
            try:
                row = await conn.fetchrow(_CHANGES, *self._seen, timeout=READ_TIMEOUT)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if self._conn is conn:
                    self._drop(conn, f"Cannot read changes ({_name(exc)}): listening again")
                continue  # a new listener may have asked meanwhile: it is answered here
            if conn is not self._conn or self._opt_outs is None:
                continue  # read on a listener since dropped: read again on the new one
            (
                opt_outs_version,
                opt_outs_whole,
                opted_out,
                settings_version,
                settings_all,
                guilds,
                blockers,
                blocked,
            ) = row
            ids = {int(user_id) for user_id in opted_out}
            if opt_outs_whole:
                self._opt_outs = ids
                self._blocks = _merged({}, blockers, blocked)
            else:
                self._opt_outs |= ids
                self._blocks = _merged(self._blocks, blockers, blocked)
            if settings_all:
                self._settings.clear()
            for guild_id in guilds:
                self._settings.forget(int(guild_id))
            self._seen = (int(opt_outs_version), int(settings_version))
            self._answered = asked
            self._wake(asked)

    def _wake(self, answered: int | None = None) -> None:
        """Answer the waiters whose ask is answered (all of them: None)."""
        waiting = []
        for asked, waiter in self._waiters:
            if answered is None or asked <= answered:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((asked, waiter))
        self._waiters = waiting

    def _lost(self, conn: object) -> None:
        if conn is self._conn:
            self._drop(conn, "Lost the change listener: reading from the database until it is back")

    def _drop(self, conn: object, why: str) -> None:
        """Stop answering from memory at once; listen again (and read everything) later."""
        self._conn = None
        self._opt_outs = None  # unsure from here on: the database answers
        self._answered = self._asked
        self._wake()
        if isinstance(conn, asyncpg.Connection) and not conn.is_closed():
            conn.terminate()  # its termination listener comes later, and finds it dropped
        if not self._closed:
            log.warning("%s", why)
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
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                delay = min(delay * 2, RECONNECT_CAP)
                continue
            if self._closed:  # closed while connecting
                await self.close()
            else:
                log.info("Listening for changes again")
            return

    async def close(self) -> None:
        self._closed = True
        for task in (self._reconnecting, self._reading):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        conn, self._conn = self._conn, None
        self._opt_outs = None
        self._wake()
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()


def _merged(
    blocks: dict[int, frozenset[str]], user_ids: list[int], actions: list[str]
) -> dict[int, frozenset[str]]:
    """`blocks` with the (user, action) pairs added, in place (no await in between: no reader
    sees half), so a change costs its own rows, not every member's blocks."""
    added: dict[int, set[str]] = {}
    for user_id, action in zip(user_ids, actions, strict=True):
        added.setdefault(int(user_id), set()).add(str(action))
    for user_id, more in added.items():
        blocks[user_id] = blocks.get(user_id, frozenset()) | more
    return blocks


def _name(exc: BaseException) -> str:
    return type(exc).__name__

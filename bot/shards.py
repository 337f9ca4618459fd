"""Shards: the shard a log line belongs to, IDENTIFY pacing, and what the bot does per shard.

With SHARD_COUNT the bot runs discord.py's `AutoShardedBot` (`bot.app.ShardedNekoBot`), one
gateway connection per shard it owns; several processes may each own some of the shards.
Discord allows one IDENTIFY per `shard_id % max_concurrency` bucket per 5 s across every
process of the bot, so IDENTIFYs wait on the `Coordinator` (shared through PostgreSQL when
there are several processes) instead of discord.py's own sleep, which knows only its process.

Before any of its shards connects, a process claims them in the coordinator (a lease per shard
through PostgreSQL): a shard runs in one process at a time, even when two are configured for it
by mistake. The other process waits for them (SHARD_CLAIM=wait) or exits (exit).

Every log record gets a `shard` attribute (`ShardFilter`): the shard whose events the current
task handles (`CURRENT_SHARD`, set for each shard's gateway reader and so inherited by the
tasks it starts: event handlers, commands, button presses), or the shard a discord.py line
names; None when the line concerns no shard.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import yarl

from bot.coordination import CoordinationError

if TYPE_CHECKING:
    from bot.config import Config
    from bot.coordination import Coordinator
    from bot.health import Heartbeat

log = logging.getLogger(__name__)

#: The shard whose events the current task handles (None: not tied to a shard).
CURRENT_SHARD: ContextVar[int | None] = ContextVar("nekocord_shard", default=None)

#: Discord's window: one IDENTIFY per bucket per 5 s (the real one, in tests too).
IDENTIFY_WINDOW = 5.0
# Held a little longer than the window: the turn is taken before the IDENTIFY is sent, and
# sends are not equally quick, so Discord must still see the IDENTIFYs at least 5 s apart.
IDENTIFY_MARGIN = 0.25
# discord.py's default: a shard that has not connected by then is logged and relaunched.
MIN_CONNECT_TIMEOUT = 180.0

# While another process holds this one's shards: a claim attempt this often (at most), a log
# line this often.
CLAIM_POLL = 5.0
CLAIM_LOG_INTERVAL = 60.0

# discord.py names the shard as the first argument of these lines ("Shard ID %s has
# connected…", "Attempting a reconnect for shard ID %s…", "Failed to connect for shard_id: %s").
_NAMED_SHARD = re.compile(r"^[^%]*shard(?: ID|_id:) %s", re.IGNORECASE)


def connect_timeout(shard_count: int) -> float:
    """`shard_connect_timeout` above the longest wait for an IDENTIFY turn: every shard of the
    bot (in every process) ahead in the same bucket, one window each."""
    return max(MIN_CONNECT_TIMEOUT, (IDENTIFY_WINDOW + IDENTIFY_MARGIN) * shard_count + 60.0)


def owned_shards(shard_count: int | None, shard_ids: Sequence[int] | None) -> Sequence[int]:
    """The shards a process with these settings runs (an unsharded bot: shard 0)."""
    if shard_ids is not None:
        return shard_ids
    return range(shard_count or 1)


def describe_shards(
    shard_count: int | None, shard_ids: Sequence[int] | None, pod_index: int | None
) -> str:
    """What this process runs, for its first log line: `pod 1, shards 4-7 of 12`."""
    if shard_count is None:
        return "not sharded (one gateway connection)"
    shards = f"shards {_ranges(owned_shards(shard_count, shard_ids))} of {shard_count}"
    return shards if pod_index is None else f"pod {pod_index}, {shards}"


def owns_first_shard(shard_ids: Sequence[int] | None) -> bool:
    """Whether this process runs shard 0 (or all shards, or is not sharded): that process
    alone registers the commands."""
    return shard_ids is None or 0 in shard_ids


class ShardFilter(logging.Filter):
    """Sets `record.shard` (kept when given with `extra=`); with `prefix`, also starts the
    message with `[shard N]` (the text format). Attach it to handlers before redaction."""

    def __init__(self, *, prefix: bool = False) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_shard_done", False):  # several handlers share the record
            return True
        shard = getattr(record, "shard", None)
        if shard is None:
            shard = CURRENT_SHARD.get()
        if shard is None:
            shard = _named_shard(record)
        record.shard = shard
        record._shard_done = True
        if self.prefix and shard is not None:
            record.msg = f"[shard {shard}] {record.msg}"
        return True


def _named_shard(record: logging.LogRecord) -> int | None:
    if not record.name.startswith("discord.") or not isinstance(record.msg, str):
        return None
    if not _NAMED_SHARD.match(record.msg) or not isinstance(record.args, tuple):
        return None
    first = record.args[0] if record.args else None
    return first if isinstance(first, int) else None


async def read_max_concurrency(client: discord.AutoShardedClient) -> int:
    """Discord's `max_concurrency` (IDENTIFY buckets). With `shard_count` given discord.py
    never asks `GET /gateway/bot`, so ask it here; when that fails, one bucket (the safe
    assumption: it only makes starting slower)."""
    try:
        limits = await client.fetch_session_start_limits()
    except (discord.DiscordException, aiohttp.ClientError, OSError, KeyError) as exc:
        log.warning("Could not read max_concurrency (%s): identifying one shard at a time", exc)
        return 1
    return max(1, int(limits.max_concurrency))


class ShardsHeld(Exception):
    """Another process runs some of this process's shards, and SHARD_CLAIM=exit. The message
    is the one line the operator sees; `code` the exit code."""

    code = 2


class ShardsLost(ShardsHeld):
    """This process's leases were lost while it ran (not renewed in time): it stopped."""

    code = 1


class ShardAware:
    """Mixed into `NekoBot` (sharded or not): the shards' leases and IDENTIFY pacing through
    the coordinator, and readiness per shard for the heartbeat and the logs."""

    config: Config
    coordinator: Coordinator
    heartbeat: Heartbeat | None
    max_concurrency: int = 1
    #: Shards whose session is READY (or RESUMED) and not disconnected since: `/readyz`.
    #: An unsharded bot is shard 0.
    ready_shards: set[int]
    leases_lost: bool = False

    async def claim_shards(self) -> None:
        """Return once this process holds every shard it runs; until then wait (a line a
        minute), or raise `ShardsHeld` with SHARD_CLAIM=exit."""
        shards = owned_shards(self.config.shard_count, self.config.shard_ids)
        lease = self.config.shard_lease_seconds
        loop = asyncio.get_running_loop()
        logged_at: float | None = None
        while True:
            try:
                if await self.coordinator.claim_shards(
                    shards, self.config.shard_count or 1, lease=lease, on_lost=self._shards_lost
                ):
                    return
                held = f"shards {_ranges(shards)} are run by another process"
                if self.config.shard_claim == "exit":
                    raise ShardsHeld(f"{held} (SHARD_CLAIM=exit)")
                why = f"{held} (its lease expires {lease:g} s after it stops)"
            except CoordinationError as exc:  # not known to be held: not "exit" either
                why = f"could not claim shards {_ranges(shards)}: {exc}"
            if logged_at is None or loop.time() - logged_at >= CLAIM_LOG_INTERVAL:
                log.warning("Waiting: %s", why)
                logged_at = loop.time()
            log.debug("Shards %s still held: trying again", _ranges(shards))
            await asyncio.sleep(min(CLAIM_POLL, lease / 3))

    def _shards_lost(self) -> None:
        log.error("Stopping: this process may no longer run its shards")
        self.leases_lost = True
        close = getattr(self, "close")  # noqa: B009 - the discord.py client's, mixed in
        self._closing = asyncio.get_running_loop().create_task(close())

    async def connect(self, *, reconnect: bool = True) -> None:
        await super().connect(reconnect=reconnect)  # type: ignore[misc]
        if self.leases_lost:
            shards = _ranges(owned_shards(self.config.shard_count, self.config.shard_ids))
            raise ShardsLost(f"stopped: the leases of shards {shards} could not be renewed")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait for this shard's IDENTIFY turn across every process. Replaces discord.py's
        5 s sleep, which skips the first IDENTIFY of a process (`initial`): several processes
        starting at once would IDENTIFY together."""
        bucket = (shard_id or 0) % self.max_concurrency
        await self.coordinator.before_identify(bucket, IDENTIFY_WINDOW + IDENTIFY_MARGIN)
        log.debug("IDENTIFY turn for shard %s (bucket %d)", shard_id, bucket)

    def _sharded(self) -> bool:
        return isinstance(self, discord.AutoShardedClient)

    # READY arrived ('connect'), RESUMED, or the connection was lost. A sharded client also
    # dispatches the plain events, without the shard: those count only when unsharded.
    async def on_shard_connect(self, shard_id: int) -> None:
        self.ready_shards.add(shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self.ready_shards.discard(shard_id)

    async def on_connect(self) -> None:
        if not self._sharded():
            self.ready_shards.add(0)

    async def on_disconnect(self) -> None:
        if not self._sharded():
            self.ready_shards.discard(0)

    async def on_shard_ready(self, shard_id: int) -> None:
        CURRENT_SHARD.set(shard_id)
        self._beat()
        guilds = [g for g in getattr(self, "guilds", ()) if g.shard_id == shard_id]
        log.info("Shard %d ready in %d servers", shard_id, len(guilds))

    async def on_shard_resumed(self, shard_id: int) -> None:
        CURRENT_SHARD.set(shard_id)
        self.ready_shards.add(shard_id)
        log.info("Shard %d resumed", shard_id)

    async def on_resumed(self) -> None:
        if not self._sharded():
            self.ready_shards.add(0)
        self._beat()

    def _beat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat(latency=getattr(self, "latency", float("nan")))


class ShardedClient(discord.AutoShardedClient):
    """What a sharded bot adds to `AutoShardedClient` (mixed in before it): the session start
    limits before connecting, and each shard's reader task marked with its shard."""

    max_concurrency: int

    async def launch_shards(self) -> None:
        # After login, before the first IDENTIFY (setup_hook has run).
        self.max_concurrency = await read_max_concurrency(self)
        log.info(
            "Running shards %s of %s (max_concurrency %d)",
            _ranges(self.shard_ids or range(self.shard_count or 0)),
            self.shard_count,
            self.max_concurrency,
        )
        await super().launch_shards()

    async def launch_shard(
        self, gateway: yarl.URL, shard_id: int, *, initial: bool = False
    ) -> None:
        if self.is_closed():  # closed while shards were starting: discord.py would retry
            return
        # The reader task created in there copies this context: its events, and the tasks
        # they start, log with this shard.
        token = CURRENT_SHARD.set(shard_id)
        try:
            await super().launch_shard(gateway, shard_id, initial=initial)
        finally:
            CURRENT_SHARD.reset(token)
        info = self.get_shard(shard_id)
        if info is not None:
            _mark_relaunches(info._parent, shard_id)


def _mark_relaunches(shard: Any, shard_id: int) -> None:
    """A shard that reconnects gets a new reader task (`Shard.launch`, from the task that
    handles reconnects): mark it with the shard as well."""
    launch = shard.launch

    def launch_as_shard() -> None:
        token = CURRENT_SHARD.set(shard_id)
        try:
            launch()
        finally:
            CURRENT_SHARD.reset(token)

    shard.launch = launch_as_shard


def _ranges(ids: Sequence[int]) -> str:
    """`0-15` for consecutive ids, else `0,4,9` (as SHARD_IDS is written)."""
    if len(ids) > 2 and list(ids) == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]}-{ids[-1]}"
    return ",".join(str(i) for i in ids)

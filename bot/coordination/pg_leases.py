"""Shard leases in PostgreSQL: one process at a time runs a shard.

A process claims all of its shards in one transaction, or none (`coord_shard_leases`, a row per
shard): a row is taken when it is free, expired or already ours. Once held, the leases are
renewed every third of the lease time; a clean stop deletes them, a killed process's expire
after one lease time and another process takes them over.

A holder that cannot renew (the database away, or another process took a lease after all)
gives its shards up before they expire for the others: `on_lost` is called once at 3/4 of the
lease time after the last renewal that went through, or at once when a renewal finds a lease
gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import asyncpg

from bot.coordination.pg_budget import BACKEND_ERRORS

__all__ = ["ShardLeases"]

log = logging.getLogger(__name__)

_QUERY_TIMEOUT = 5.0
_GIVE_UP_AT = 0.75  # of the lease time after the last renewal that went through
_RETRY_AFTER_FAILURE = 2.0  # seconds between renewals while the database does not answer

_CLAIM = """
INSERT INTO coord_shard_leases AS l (shard, shard_count, holder, expires_at)
SELECT s, $2, $3, clock_timestamp() + make_interval(secs => $4)
FROM unnest($1::int[]) AS s ORDER BY s
ON CONFLICT (shard) DO UPDATE
SET shard_count = EXCLUDED.shard_count, holder = EXCLUDED.holder,
    expires_at = EXCLUDED.expires_at
WHERE l.holder = EXCLUDED.holder OR l.expires_at < clock_timestamp()
RETURNING shard
"""
_RENEW = """
UPDATE coord_shard_leases SET expires_at = clock_timestamp() + make_interval(secs => $3)
WHERE holder = $1 AND shard = ANY($2::int[])
RETURNING shard
"""


class _Incomplete(Exception):
    """Some shard is held by another process: roll the claim back."""


class ShardLeases:
    def __init__(self, pool: asyncpg.Pool, holder: str) -> None:
        self._pool = pool
        self.holder = holder
        self.shards: tuple[int, ...] = ()
        self._renewer: asyncio.Task[None] | None = None

    async def claim(
        self, shards: Sequence[int], shard_count: int, lease: float, on_lost: Callable[[], None]
    ) -> bool:
        """One attempt; True when every one of `shards` is now ours (and renewed from now on).
        A database failure propagates (`BACKEND_ERRORS`)."""
        wanted = sorted(set(shards))
        sent = asyncio.get_running_loop().time()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    _CLAIM, wanted, shard_count, self.holder, lease, timeout=_QUERY_TIMEOUT
                )
                if len(rows) < len(wanted):
                    raise _Incomplete
        except _Incomplete:
            return False
        self.shards = tuple(wanted)
        if self._renewer is None:
            log.info("Claimed shards %s", ",".join(map(str, wanted)))
            self._renewer = asyncio.get_running_loop().create_task(
                self._renew(lease, sent, on_lost), name="coordinator-shard-leases"
            )
        return True

    async def _renew(self, lease: float, renewed: float, on_lost: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        warned = False
        while True:
            # After a failed renewal, try again soon: a partition that heals well inside the
            # lease must not end in giving the shards up (tests/faults/test_partitions.py).
            await asyncio.sleep(min(lease / 3, _RETRY_AFTER_FAILURE) if warned else lease / 3)
            sent = loop.time()
            try:
                async with self._pool.acquire() as conn:
                    rows = await conn.fetch(
                        _RENEW, self.holder, list(self.shards), lease, timeout=_QUERY_TIMEOUT
                    )
            except BACKEND_ERRORS as exc:
                if not warned:
                    log.warning("Could not renew the shard leases: %s", type(exc).__name__)
                    warned = True
                if loop.time() - renewed < lease * _GIVE_UP_AT:
                    continue
                log.error("The shard leases could not be renewed for %g s: giving them up", lease)
            else:
                if len(rows) == len(self.shards):
                    renewed, warned = sent, False
                    continue
                log.error("Another process holds some of this process's shards now")
            self.shards = ()
            self._renewer = None
            on_lost()
            return

    async def release(self) -> None:
        """Stop renewing and let the shards go at once (a clean stop)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if not self.shards:
            return
        with contextlib.suppress(*BACKEND_ERRORS):
            async with asyncio.timeout(_QUERY_TIMEOUT), self._pool.acquire() as conn:
                await conn.execute("DELETE FROM coord_shard_leases WHERE holder = $1", self.holder)
        self.shards = ()

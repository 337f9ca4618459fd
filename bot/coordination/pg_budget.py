"""nekos.best budgets shared by the bot's processes, one row per rate-limit bucket in PostgreSQL
(`coord_nekos_budgets`, see `postgres_schema` for the SQL that takes and corrects).

A take is one round trip (a function call that locks the bucket's row), made only when a
request is about to go to nekos.best: commands are answered from each process's prefetch pool,
so that is about one take per 20 results, or per /search. Corrections from the answers' headers
ride along with the next take of their bucket, or go out together after half a second.

Fairness: every process beats a row in `coord_processes`, and its takes in each bucket's
current window are counted in `coord_nekos_shares`; in the first half of a window each live
process may take at most its share (limit / live processes, rounded up), and whatever is still
unused in the second half goes to whoever asks. A busy process therefore cannot starve
the others early in a window, and no slot is wasted: sustained capacity is the whole budget.

Probes: whether nekos.best's windows are fixed or sliding is unknown, so a window's count is
unknown after its reset. The first take of a new window is its probe; until an answer's
correction states what the server has left, every other take of every process is refused for
`probe_poll` seconds at a time (a probe unanswered after `probe_timeout` is replaced). A probe's
correction is therefore sent at once, not batched.

A backend failure never blocks a request: the take is granted (each process's own limiter still
follows the server's headers) and the failure is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

import asyncpg

from bot.store.postgres_deadline import dropped_after

__all__ = ["BACKEND_ERRORS", "PostgresBudget"]

log = logging.getLogger(__name__)

# What a lost or struggling database raises (asyncpg's own errors, sockets, our timeouts).
BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


class _Correction(NamedTuple):
    """One answer's count, and the take it answers (None when unknown)."""

    remaining: int
    reset_at: float  # time.time() instant
    generation: int | None
    ordinal: int | None


def _columns(
    corrections: list[_Correction],
) -> tuple[list[int], list[float], list[int | None], list[int | None]]:
    """Corrections as the SQL functions take them: one array per field."""
    return (
        [c.remaining for c in corrections],
        [c.reset_at for c in corrections],
        [c.generation for c in corrections],
        [c.ordinal for c in corrections],
    )


class PostgresBudget:
    """`bot.nekos.budget.SharedBudget` kept in PostgreSQL (structurally: this module does not
    import `bot.nekos`).

    `stale`: seconds after its last heartbeat a process no longer counts as live. `timeout`:
    the longest a take may wait for the database before it is granted without it.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        process_id: str,
        *,
        stale: float = 30.0,
        margin: float = 0.05,
        guard: float = 0.25,
        timeout: float = 1.0,
        flush_delay: float = 0.5,
        probe_timeout: float = 2.0,
        probe_poll: float = 0.05,
    ) -> None:
        self._pool = pool
        self.process_id = process_id  # its row in coord_processes
        self.stale = stale
        # Roll a window over a hair after its end, like the limiter: clocks round differently.
        self.margin = margin
        # No take this close to a window's end: the request would be counted in the next one.
        self.guard = guard
        self.timeout = timeout
        # Corrections wait this long for a take to carry them, then go out together.
        self.flush_delay = flush_delay
        # How long other takes wait for a probe's answer before another probe may go out, and
        # how often they ask again meanwhile (each ask is one round trip).
        self.probe_timeout = probe_timeout
        self.probe_poll = probe_poll
        self._probes: set[str] = set()  # keys whose probe this process sent, not yet answered
        # Per key: (window generation, rank) of this process's latest granted take. An answer
        # is read against it: the server cannot have counted more of this process's takes than
        # were granted when it answered. (Matching each answer with the oldest unanswered take
        # read concurrent requests that reached the server out of order as another sender's,
        # and wasted a slot in about one window of four.)
        self._latest: dict[str, tuple[int, int]] = {}
        self._pending: dict[str, list[_Correction]] = {}  # not yet sent
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self._failing = False

    async def take(self, key: str, limit: int, window: float) -> float | None:
        """See `SharedBudget.take`."""
        carried = self._pending.pop(key, [])
        try:
            async with self._pool.acquire(timeout=self.timeout) as conn:
                with dropped_after(conn, self.timeout):  # not a cancel: on a cut link that hangs
                    row = await conn.fetchrow(
                        "SELECT granted, wait, generation, ordinal, probe FROM coord_take_budget"
                        "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        key,
                        limit,
                        float(window),
                        self.process_id,
                        self.stale,
                        self.margin,
                        min(self.guard, window / 10),
                        *_columns(carried),
                        self.probe_timeout,
                        self.probe_poll,
                    )
        except BACKEND_ERRORS as exc:
            self._failed(exc)
            return None
        self._recovered()
        assert row is not None  # the function always returns one row
        if not row["granted"]:
            return max(float(row["wait"]), 0.0)
        granted = (int(row["generation"]), int(row["ordinal"]))
        # Concurrent takes may return out of order: keep the latest, not the last to return.
        self._latest[key] = max(granted, self._latest.get(key, granted))
        if row["probe"]:
            self._probes.add(key)
        return None

    async def correct(self, key: str, remaining: int, reset_at: float) -> None:
        """See `SharedBudget.correct`. Kept until the next take of `key` carries it, or sent
        with the others after `flush_delay`: an answer costs no round trip of its own (except a
        probe's, sent at once)."""
        generation, ordinal = self._latest.get(key, (None, None))
        if reset_at <= time.time() and key not in self._probes:
            return  # a window that is over: nothing to learn (a probe's still ends its window)
        self._pending.setdefault(key, []).append(
            _Correction(remaining, reset_at, generation, ordinal)
        )
        if key in self._probes:
            # Every process waits for this answer: no batching.
            self._probes.discard(key)
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            self._start_flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                self.flush_delay, self._start_flush
            )

    def _start_flush(self) -> None:
        self._flush_timer = None
        task = asyncio.get_running_loop().create_task(self.flush(), name="nekos-budget-flush")
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        """Send the corrections no take has carried yet, in one round trip."""
        pending, self._pending = self._pending, {}
        keys = [key for key, corrections in pending.items() for _ in corrections]
        corrections = [correction for batch in pending.values() for correction in batch]
        if not corrections:
            return
        try:
            async with self._pool.acquire(timeout=self.timeout * 5) as conn:
                with dropped_after(conn, self.timeout * 5):
                    await conn.execute(
                        "SELECT coord_correct_budget(k, r, to_timestamp(t), $6, g, o) FROM unnest("
                        "$1::text[], $2::int[], $3::float8[], $4::bigint[], $5::int[]"
                        ") AS x(k, r, t, g, o)",
                        keys,
                        *_columns(corrections),
                        self.margin,
                    )
        except BACKEND_ERRORS as exc:
            self._failed(exc)

    async def settle(self) -> None:
        """Send what is pending and wait for the flushes under way (tests, shutdown)."""
        await self.flush()
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    async def aclose(self) -> None:
        """Send what is pending (best effort) before the pool closes."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        await self.settle()

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "the shared nekos.best budget is unreachable (%s); each process follows its "
                "own limits until it is back",
                type(exc).__name__,
            )
        else:
            log.debug("shared nekos.best budget: %r", exc)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("the shared nekos.best budget is reachable again")

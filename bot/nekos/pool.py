"""A prefetch pool: commands are answered from memory, refills happen in the background.

Per category, results are fetched in batches of up to 20 and each is handed out once. A refill
starts when the pool runs low, and only because someone took from it: a category nobody asks
for costs no traffic, and an idle pool whose entries expired stays empty until used again.
Entries live 10 minutes at most (nekos.best's terms allow private caching only, so keep it
short-lived and used once).

Refills may spend a category's whole per-window budget: nothing else sends on the category
buckets (search, credits and /endpoints have buckets of their own), so sustained capacity is
20 results per request nekos.best allows. The client's limiter is the gate: it tracks what
the server reports left in the window minus the requests in flight, so a refill starts only
when a slot is free and never runs into a 429.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.nekos.client import NekosClient
from bot.nekos.errors import (
    BadRequest,
    NekosError,
    RateLimited,
    Unavailable,
    UnknownCategory,
)
from bot.nekos.limits import MAX_AMOUNT
from bot.nekos.models import Result

__all__ = ["Pool"]

log = logging.getLogger(__name__)

_COUNTERS = ("hits", "misses", "refills", "refill_errors", "duplicates", "expired")


@dataclass
class _Entry:
    result: Result
    expires_at: float


@dataclass
class _CategoryPool:
    entries: deque[_Entry] = field(default_factory=deque)
    urls: set[str] = field(default_factory=set)
    refill: asyncio.Task[int] | None = None
    hits: int = 0
    misses: int = 0
    refills: int = 0
    refill_errors: int = 0
    duplicates: int = 0
    expired: int = 0


def _fresh(exc: NekosError) -> NekosError:
    """A new exception of the same kind, so concurrent takers don't share one traceback."""
    if isinstance(exc, RateLimited):
        new: NekosError = RateLimited(exc.bucket, exc.reset_at)
    elif isinstance(exc, UnknownCategory):
        new = UnknownCategory(exc.category)
    elif isinstance(exc, Unavailable):
        new = Unavailable(str(exc), status=exc.status)
    else:
        try:
            new = type(exc)(*exc.args)
        except Exception:
            return exc
    new.__cause__ = exc
    return new


class Pool:
    """Prefetched results per category, each handed out once.

    `low_watermark`: a refill starts when a take leaves this many entries or fewer (default
    a quarter of a batch). `refill_budget`: seconds a background refill may take (rate-limit
    waits included).
    """

    def __init__(
        self,
        client: NekosClient,
        *,
        batch_size: int = MAX_AMOUNT,
        low_watermark: int | None = None,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        refill_budget: float = 10.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_AMOUNT:
            raise ValueError(f"batch_size must be 1..{MAX_AMOUNT}")
        self._client = client
        self.batch_size = batch_size
        self.low_watermark = batch_size // 4 if low_watermark is None else low_watermark
        self.ttl = ttl
        self._clock = clock
        self.refill_budget = refill_budget
        self._pools: dict[str, _CategoryPool] = {}
        self._closed = False

    # -- taking ----------------------------------------------------------------------------

    def take_nowait(self, category: str) -> Result | None:
        """A result from memory, or None (a miss). Never blocks; starts a refill in the
        background when the pool is empty or at its low watermark."""
        state = self._state(category)
        result = self._pop(state)
        if result is None:
            state.misses += 1
        else:
            state.hits += 1
        self._top_up(category, state)
        return result

    async def take(self, category: str, *, budget: float) -> Result:
        """A result from memory, else the next refill's, waiting at most `budget` seconds.

        Raises the client's typed errors when the refill fails (RateLimited, Unavailable,
        UnknownCategory), RateLimited or Unavailable when the budget ends first.
        """
        results = await self._take(category, 1, budget)
        return results[0]

    async def take_many(self, category: str, n: int, *, budget: float) -> list[Result]:
        """`n` (1..20) distinct results. If the budget ends or a refill fails after some were
        collected, those are returned (fewer than `n`); with none, the error is raised."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_AMOUNT:
            raise BadRequest(f"n must be an integer from 1 to {MAX_AMOUNT}")
        return await self._take(category, n, budget)

    async def _take(self, category: str, n: int, budget: float) -> list[Result]:
        if self._closed:
            raise Unavailable("the pool is closed")
        if budget <= 0:
            raise BadRequest("budget must be positive")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        state = self._state(category)
        out: list[Result] = []
        seen: set[str] = set()

        def collect() -> None:
            while len(out) < n:
                result = self._pop(state)
                if result is None:
                    return
                if result.url not in seen:  # a URL handed out once already in this call
                    seen.add(result.url)
                    out.append(result)

        collect()
        if len(out) == n:
            state.hits += 1
            self._top_up(category, state)
            return out
        state.misses += 1
        while len(out) < n:
            try:
                await self._await_refill(category, state, deadline)
            except NekosError:
                if out:
                    log.debug("returning %d of %d %s results", len(out), n, category)
                    break
                raise
            collect()
        self._top_up(category, state)
        return out

    async def _await_refill(self, category: str, state: _CategoryPool, deadline: float) -> None:
        """Wait for a refill (starting one if none runs) within the deadline."""
        loop = asyncio.get_running_loop()
        bucket = NekosClient.category_bucket(category)
        while True:
            if self._closed:
                raise Unavailable("the pool is closed")
            left = deadline - loop.time()
            task = self._kick(category, state)
            if task is not None:
                break
            # No refill allowed now: the bucket's window is spent (or a 429 blocks it).
            reset = self._client.limiter.blocked_until(bucket) or time.time()
            wait = max(0.0, reset - time.time())
            if wait >= left:
                raise RateLimited(bucket, reset)
            await asyncio.sleep(max(wait, 0.001))
        if left <= 0:
            raise self._out_of_time(bucket)
        try:
            added = await asyncio.wait_for(asyncio.shield(task), left)
        except TimeoutError:
            raise self._out_of_time(bucket) from None
        except asyncio.CancelledError:
            if self._closed and task.cancelled():
                raise Unavailable("the pool is closed") from None
            raise
        except NekosError as exc:
            raise _fresh(exc) from exc
        if added == 0 and not state.entries:
            raise Unavailable(f"nekos.best gave no new {category} results")

    def _out_of_time(self, bucket: str) -> NekosError:
        reset = self._client.limiter.blocked_until(bucket)
        if reset is not None:
            return RateLimited(bucket, reset)
        return Unavailable("no result within the budget")

    # -- refilling -------------------------------------------------------------------------

    def warm(self, categories: Iterable[str]) -> None:
        """Start filling these categories now (at start-up) rather than on first use."""
        for category in categories:
            state = self._state(category)
            if not self._live(state):
                self._kick(category, state)

    def _top_up(self, category: str, state: _CategoryPool) -> None:
        if len(state.entries) <= self.low_watermark:
            self._kick(category, state)

    def _kick(self, category: str, state: _CategoryPool) -> asyncio.Task[int] | None:
        """The running refill, or a new one; None when none may start now."""
        if state.refill is not None and not state.refill.done():
            return state.refill
        if self._closed:
            return None
        reset = self._client.limiter.blocked_until(NekosClient.category_bucket(category))
        if reset is not None and reset > time.time():
            return None  # it would only wait (or fail) in the limiter
        task = asyncio.get_running_loop().create_task(
            self._refill(category, state), name=f"nekos-pool-refill:{category}"
        )
        task.add_done_callback(lambda t: self._refill_done(category, state, t))
        state.refill = task
        return task

    async def _refill(self, category: str, state: _CategoryPool) -> int:
        results = await self._client.random(
            category, amount=self.batch_size, budget=self.refill_budget
        )
        state.refills += 1
        self._purge(state)
        expires_at = self._clock() + self.ttl
        added = 0
        for result in results:
            if result.url in state.urls:  # twice in a batch, or already pooled
                state.duplicates += 1
                continue
            state.urls.add(result.url)
            state.entries.append(_Entry(result, expires_at))
            added += 1
        return added

    def _refill_done(self, category: str, state: _CategoryPool, task: asyncio.Task[int]) -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so asyncio never warns about it
        if exc is None:
            return
        state.refill_errors += 1
        log.log(
            logging.INFO if isinstance(exc, NekosError) else logging.ERROR,
            "refilling the %s pool failed: %r",
            category,
            exc,
        )
        # Don't keep state for names that do not exist (user input may reach here).
        if (
            isinstance(exc, UnknownCategory)
            and not state.entries
            and self._pools.get(category) is state
        ):
            del self._pools[category]

    # -- memory ----------------------------------------------------------------------------

    def _state(self, category: str) -> _CategoryPool:
        state = self._pools.get(category)
        if state is None:
            state = self._pools[category] = _CategoryPool()
        return state

    def _purge(self, state: _CategoryPool) -> None:
        now = self._clock()
        while state.entries and state.entries[0].expires_at <= now:
            entry = state.entries.popleft()
            state.urls.discard(entry.result.url)
            state.expired += 1

    def _live(self, state: _CategoryPool) -> int:
        self._purge(state)
        return len(state.entries)

    def _pop(self, state: _CategoryPool) -> Result | None:
        self._purge(state)
        if not state.entries:
            return None
        entry = state.entries.popleft()
        state.urls.discard(entry.result.url)
        return entry.result

    def size(self, category: str) -> int:
        """Unexpired results pooled for a category."""
        state = self._pools.get(category)
        return self._live(state) if state else 0

    def stats(self) -> dict[str, Any]:
        """Per category: size, hits, misses, refills, refill_errors, duplicates, expired;
        and `totals` of each. For metrics."""
        categories: dict[str, dict[str, int]] = {}
        totals = dict.fromkeys(("size", *_COUNTERS), 0)
        for name, state in sorted(self._pools.items()):
            row = {"size": self._live(state)}
            row.update({key: getattr(state, key) for key in _COUNTERS})
            categories[name] = row
            for key, value in row.items():
                totals[key] += value
        return {"categories": categories, "totals": totals}

    async def settle(self) -> None:
        """Wait for the refills running now (e.g. after `warm()`); their errors are recorded
        in `stats()`, not raised."""
        tasks = [s.refill for s in self._pools.values() if s.refill and not s.refill.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel running refills. Takes after this raise Unavailable."""
        self._closed = True
        tasks = [s.refill for s in self._pools.values() if s.refill and not s.refill.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

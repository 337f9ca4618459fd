"""Rate-limit buckets learned from nekos.best's `x-rate-limit-*` response headers.

nekos.best reports, on every answer (a 429 included), the bucket's window or limit
(`x-rate-limit-limit`), what is left of it (`x-rate-limit-remaining`) and when it resets
(`x-rate-limit-reset`, an ISO 8601 instant with 7 fractional digits). We trust those headers
over any constant: the documented budgets are only the starting guess before the first answer.

Concurrent callers reserve a slot before sending (`acquire`) and give it back with the answer's
headers (`release`), so a burst never sends more than `remaining` allows.

Whether nekos.best's windows are fixed or sliding is not documented, and it bans by IP. After a
reset (and before the first answer) the count is unknown: under a fixed window the whole budget
is back, under a sliding one perhaps a single slot (the reset names the next slot to free). So
the limiter then probes: one request at a time until an answer states what is left, and only
then spends it (at once: a fixed window costs one round trip more per window, no more).

With a `SharedBudget` (several processes behind one IP), a reserved slot is also taken from the
shared count before sending, and every answer's headers correct that count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.nekos.budget import SharedBudget
from bot.nekos.errors import RateLimited

__all__ = [
    "BucketState",
    "RateLimiter",
    "default_limit",
    "default_window",
    "parse_limit",
    "parse_reset",
]

log = logging.getLogger(__name__)

# Documented budgets, used only until a response tells us better.
_DEFAULTS: dict[str, tuple[int, float]] = {
    "search": (7, 5.0),
    "category": (200, 60.0),
    "file": (200, 60.0),
    "endpoints": (60, 60.0),
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_FRACTION = re.compile(r"\.(\d+)")


def _family(key: str) -> str:
    return key.split(":", 1)[0]


def default_limit(key: str) -> int:
    """The documented request count of a bucket key ("search", "category:<name>", "file")."""
    return _DEFAULTS.get(_family(key), (60, 60.0))[0]


def default_window(key: str) -> float:
    """The documented window length, in seconds, of a bucket key."""
    return _DEFAULTS.get(_family(key), (60, 60.0))[1]


def parse_limit(value: str | None) -> tuple[int | None, float | None]:
    """Parse `x-rate-limit-limit` into (request count, window seconds); either may be unknown.

    The documentation shows a window (`1m`, `5s`); other servers send a count (`200`). A bare
    number is read as a count, a number with a unit as a window, and `200/1m` as both.
    """
    if not value:
        return None, None
    count: int | None = None
    window: float | None = None
    for part in value.split("/", 1) if "/" in value else [value]:
        m = _DURATION.match(part)
        if not m:
            continue
        number, unit = float(m.group(1)), m.group(2)
        if unit is None:
            if number >= 1 and number.is_integer():
                count = int(number)
        elif number > 0:
            window = number * _UNITS[unit.lower()]
    return count, window


def parse_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Parse `x-rate-limit-reset` into a `time.time()` instant, or None when unreadable.

    `datetime.fromisoformat` rejects 7 fractional digits (`…30.0000000Z`), so the fraction
    is trimmed to microseconds first. Plain numbers are read as epoch seconds, or as seconds
    from now when small.
    """
    if not value:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            return None
        return number if number >= 1e9 else (time.time() if now is None else now) + number
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None:  # nekos.best speaks UTC
        instant = instant.replace(tzinfo=UTC)
    return instant.timestamp()


@dataclass
class BucketState:
    """What we know of one bucket. Instants are `time.time()` values."""

    key: str
    remaining: int | None = None  # as last reported, for the window ending at `reset_at`
    reset_at: float | None = None
    blocked: bool = False  # a 429 arrived: nothing goes out until `reset_at`
    shared_until: float | None = None  # the shared budget refused a slot until then
    inflight: int = 0  # reserved slots whose answer has not arrived yet
    # The count is unknown (no answer yet, or the window it stated is over): one request at a
    # time until an answer states it. Stays off once answers turn out to carry no count.
    probing: bool = True
    count: int | None = None  # request count, when the server states it
    observed_max: int | None = None  # largest `remaining + 1` seen: a learned lower bound
    window: float | None = None
    sent: int = 0
    limited: int = 0  # 429s received
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def limit(self) -> int:
        """The request count per window: stated, else learned, else documented."""
        if self.count is not None:
            return self.count
        if self.observed_max is not None:
            return self.observed_max
        return default_limit(self.key)

    @property
    def window_seconds(self) -> float:
        return self.window if self.window is not None else default_window(self.key)


class RateLimiter:
    """Per-bucket reservations that follow what nekos.best reports.

    `clock` is wall-clock time (the reset header is an absolute instant); deadlines passed to
    `acquire` are on the event loop's clock, like every budget in the client. `budget`: the
    count shared with the bot's other processes (None: this process is alone).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        margin: float = 0.05,
        max_wait: float = 300.0,
        fallback_block: float = 1.0,
        budget: SharedBudget | None = None,
    ) -> None:
        self._clock = clock
        # Send a hair after the reset instant: the server's clock may round the other way.
        self._margin = margin
        # A reset further away than this is clamped: a skewed clock must not block for hours.
        self._max_wait = max_wait
        # How long a 429 without a readable reset header blocks its bucket.
        self._fallback_block = fallback_block
        self._buckets: dict[str, BucketState] = {}
        self.budget = budget
        self._corrections: set[asyncio.Task[None]] = set()  # kept referenced until done

    def bucket(self, key: str) -> BucketState:
        state = self._buckets.get(key)
        if state is None:
            state = self._buckets[key] = BucketState(key)
        return state

    def forget(self, key: str) -> None:
        """Drop an idle bucket (e.g. a category that turned out not to exist)."""
        state = self._buckets.get(key)
        if state is not None and state.inflight == 0:
            del self._buckets[key]

    def limit(self, key: str) -> int:
        state = self._buckets.get(key)
        return state.limit if state else default_limit(key)

    def window(self, key: str) -> float:
        state = self._buckets.get(key)
        return state.window_seconds if state else default_window(key)

    def blocked_until(self, key: str) -> float | None:
        """When a bucket with no slot left frees up (`time.time()` instant), else None."""
        state = self._buckets.get(key)
        if state is None:
            return None
        self._expire(state)
        if state.reset_at is not None and (
            state.blocked or (state.remaining is not None and state.remaining - state.inflight <= 0)
        ):
            return state.reset_at
        return state.shared_until if self._shared_wait(state) is not None else None

    def _shared_wait(self, state: BucketState) -> float | None:
        """Seconds the shared budget still refuses this bucket, else None."""
        if state.shared_until is None:
            return None
        wait = state.shared_until - self._clock()
        if wait <= 0:
            state.shared_until = None
            return None
        return wait

    def _expire(self, state: BucketState) -> None:
        # Past the reset instant the old window's numbers mean nothing any more.
        if state.reset_at is not None and self._clock() >= state.reset_at + self._margin:
            state.remaining = None
            state.reset_at = None
            state.blocked = False
            state.probing = True  # a whole budget, or one slot: only the next answer tells

    def _available(self, state: BucketState) -> int:
        if state.blocked:
            return 0
        if state.probing:
            return 1 - state.inflight
        base = state.remaining if state.remaining is not None else state.limit
        return base - state.inflight

    async def acquire(self, key: str, deadline: float | None = None) -> None:
        """Reserve one request on `key`, waiting for the reset if the deadline allows.

        `deadline` is an event-loop time. Raises `RateLimited` at once when the bucket is
        empty and its reset comes after the deadline.
        """
        loop = asyncio.get_running_loop()
        state = self.bucket(key)
        while True:
            self._expire(state)
            shared_wait = self._shared_wait(state)
            if shared_wait is None and self._available(state) > 0:
                state.inflight += 1
                state.sent += 1
                if await self._take_shared(state):
                    return
                continue
            now = self._clock()
            left = math.inf if deadline is None else deadline - loop.time()
            reset = state.reset_at
            if shared_wait is not None:
                # Other processes spent the window (or this one its fair share of it).
                wait = shared_wait
                if wait > left:
                    raise RateLimited(key, now + wait)
            elif reset is None:
                # Only our own in-flight requests fill the window: their answers will tell.
                wait = left
                if wait <= 0:
                    raise RateLimited(key, now + state.window_seconds)
            else:
                wait = reset + self._margin - now
                # Answers still in flight may give slots back; otherwise nothing will
                # before the reset, so a caller that cannot wait that long learns it now.
                if (state.blocked or state.inflight == 0) and wait > left:
                    raise RateLimited(key, reset)
                if left <= 0:
                    raise RateLimited(key, reset)
                wait = min(wait, left)
            event = state._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=None if math.isinf(wait) else wait)

    async def _take_shared(self, state: BucketState) -> bool:
        """Take the slot just reserved locally from the shared budget too. False: refused,
        the local reservation is given back and `shared_until` says until when."""
        if self.budget is None:
            return True
        try:
            wait = await self.budget.take(state.key, state.limit, state.window_seconds)
        except BaseException:
            self._unreserve(state)
            raise
        if wait is None:
            return True
        self._unreserve(state)
        state.shared_until = self._clock() + max(wait, 0.001)
        return False

    def _unreserve(self, state: BucketState) -> None:
        state.inflight = max(0, state.inflight - 1)
        state.sent = max(0, state.sent - 1)
        self._notify(state)

    def release(
        self,
        key: str,
        headers: Mapping[str, str] | None = None,
        *,
        status: int | None = None,
    ) -> float | None:
        """Give back a reservation, learning from the answer's headers (None: no answer).

        Returns the reset instant when the answer was a 429.
        """
        state = self.bucket(key)
        state.inflight = max(0, state.inflight - 1)
        blocked_until: float | None = None
        if headers is not None:
            self._learn(state, headers, limited=status == 429)
            self._correct_shared(state.key, headers)
        elif status is None and state.remaining is not None:
            # Sent but unanswered (timeout, dropped connection): assume the server counted it.
            state.remaining = max(0, state.remaining - 1)
        if status == 429:
            state.limited += 1
            now = self._clock()
            # The 429's own reset is authoritative, even if it is earlier than the window
            # we were tracking.
            reset = parse_reset(headers.get("x-rate-limit-reset"), now=now) if headers else None
            if reset is None or reset <= now:
                reset = now + self._fallback_block
            reset = min(reset, now + self._max_wait)
            state.reset_at = reset
            state.remaining = 0
            state.blocked = True
            blocked_until = reset
        self._notify(state)
        return blocked_until

    def cancel(self, key: str) -> None:
        """Give back a reservation for a request that was never sent. (A slot taken from the
        shared budget stays taken: the next answer's headers correct the count.)"""
        self._unreserve(self.bucket(key))

    def _correct_shared(self, key: str, headers: Mapping[str, str]) -> None:
        """Report an answer's count to the shared budget, in the background: answers are
        released synchronously, and the user's result must not wait for the database."""
        if self.budget is None:
            return
        try:
            remaining = int(headers.get("x-rate-limit-remaining", ""))
        except ValueError:
            return
        reset = parse_reset(headers.get("x-rate-limit-reset"), now=self._clock())
        if remaining < 0 or reset is None:
            return
        task = asyncio.get_running_loop().create_task(
            self.budget.correct(key, remaining, reset), name=f"nekos-budget-correct:{key}"
        )
        self._corrections.add(task)
        task.add_done_callback(self._correction_done)

    def _correction_done(self, task: asyncio.Task[None]) -> None:
        self._corrections.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("correcting the shared budget failed: %r", task.exception())

    async def settle(self) -> None:
        """Wait for the shared-budget corrections sent so far (tests, shutdown)."""
        if self._corrections:
            await asyncio.gather(*self._corrections, return_exceptions=True)

    def _learn(
        self, state: BucketState, headers: Mapping[str, str], *, limited: bool = False
    ) -> None:
        now = self._clock()
        count, window = parse_limit(headers.get("x-rate-limit-limit"))
        if count is not None:
            state.count = count
        if window is not None:
            state.window = window
        try:
            remaining: int | None = int(headers.get("x-rate-limit-remaining", ""))
        except ValueError:
            remaining = None
        if remaining is not None and remaining < 0:
            remaining = None
        reset = parse_reset(headers.get("x-rate-limit-reset"), now=now)
        if reset is not None:
            reset = min(reset, now + self._max_wait)
        if remaining is None:
            # An answer without a count: probing would never learn one, so the documented
            # limit caps what is in flight instead (as before any probing).
            state.probing = False
            return
        if not limited:
            # A 429's "0 left" says nothing about the window's size: learning a limit of 1
            # from it would throttle refills to one per window long after the reset.
            state.observed_max = max(state.observed_max or 0, remaining + 1)
        if state.blocked and state.reset_at is not None and now < state.reset_at:
            # A 429 holds until its reset: a late answer to an earlier request must not
            # reopen the bucket.
            return
        if reset is None:
            # No instant given: assume the window runs its documented length from now.
            reset = now + state.window_seconds
        if reset <= now:
            return  # already over: it says nothing about the next window (probe again)
        current = state.reset_at
        if current is None or reset > current + 0.001:
            # A newer window than the one we track (under a sliding window: the same one, slid
            # on; its count is the newer truth either way).
            state.reset_at = reset
            state.remaining = remaining
            state.blocked = state.blocked and remaining == 0
            state.probing = False
        elif abs(reset - current) <= 0.001:
            # Same window: answers may arrive out of order, keep the smallest count.
            state.remaining = min(
                remaining, state.remaining if state.remaining is not None else remaining
            )
        # An older window's answer arrived late: ignore it.

    @staticmethod
    def _notify(state: BucketState) -> None:
        state._changed.set()
        state._changed = asyncio.Event()

"""Per-member limits on what costs a nekos.best request, kept in memory.

A sliding window per key: at most `count` uses in any `seconds`. A refused attempt records
nothing, so hammering the command does not push the window further away. In memory per process:
a member's server lives on one shard, so a per-server limit holds across shard processes; a
limit across servers (none today) would not.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

_RATE = re.compile(r"^([0-9]{1,4})/([0-9]{1,5})$")
_SWEEP_EVERY = 1000  # checks between two sweeps of keys whose window has emptied


class _Default:
    """The limit a `Cooldown` was made with (a server without its own setting)."""


DEFAULT = _Default()


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` uses per `seconds`."""

    count: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}"


def parse_rate(text: str) -> Rate | None:
    """`N/S` (N uses per S seconds, both ≥ 1) or `0` (no limit: None). ValueError otherwise."""
    text = text.strip()
    if text == "0":
        return None
    match = _RATE.match(text)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError("must be N/S (N uses per S seconds, e.g. 10/20) or 0 for no limit")
    return Rate(int(match[1]), float(match[2]))


class Cooldown:
    """Sliding-window limits per key; `rate` may differ per call (a server's own setting)."""

    def __init__(self, rate: Rate | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._uses: dict[Hashable, deque[float]] = {}
        self._checks = 0
        self._longest = rate.seconds if rate is not None else 0.0

    def retry_after(self, key: Hashable, rate: Rate | _Default | None = DEFAULT) -> float:
        """Seconds until `key` may be used again under `rate` (None: no limit; by default the
        limit this cooldown was made with); 0.0: now."""
        rate = self.rate if isinstance(rate, _Default) else rate
        if rate is None:
            return 0.0
        now = self._clock()
        self._longest = max(self._longest, rate.seconds)
        self._sweep(now)
        uses = self._uses.get(key)
        if not uses:
            return 0.0
        while uses and uses[0] <= now - rate.seconds:
            uses.popleft()
        if len(uses) < rate.count:
            return 0.0
        return max(0.0, uses[-rate.count] + rate.seconds - now)

    def use(self, key: Hashable, rate: Rate | _Default | None = DEFAULT) -> None:
        """Record a use (after `retry_after` said 0.0; it also dropped the expired ones)."""
        if (self.rate if isinstance(rate, _Default) else rate) is not None:
            self._uses.setdefault(key, deque()).append(self._clock())

    def _sweep(self, now: float) -> None:
        """Forget keys idle for longer than any window (memory stays bounded by activity)."""
        self._checks += 1
        if self._checks % _SWEEP_EVERY:
            return
        idle = [k for k, uses in self._uses.items() if not uses or uses[-1] <= now - self._longest]
        for key in idle:
            del self._uses[key]


class MemberCooldowns:
    """`COOLDOWN` over everything that fetches from nekos.best, `SEARCH_COOLDOWN` on top for
    `/search`; per member and server (per user in DMs)."""

    def __init__(
        self,
        fetches: Rate | None,
        search: Rate | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetches = Cooldown(fetches, clock=clock)
        self.search = Cooldown(search, clock=clock)

    def try_use(
        self,
        guild_id: int | None,
        user_id: int,
        *,
        search: bool = False,
        server: Rate | _Default | None = DEFAULT,
    ) -> float:
        """0.0 and the use recorded (in each limit that applies), or the seconds to wait with
        nothing recorded. `server`: the server's own limit instead of `COOLDOWN` (None: off);
        it leaves `SEARCH_COOLDOWN` alone."""
        key = (guild_id or 0, user_id)
        limits: list[tuple[Cooldown, Rate | _Default | None]] = [(self.fetches, server)]
        if search:
            limits.append((self.search, DEFAULT))
        wait = max(limit.retry_after(key, rate) for limit, rate in limits)
        if wait == 0.0:
            for limit, rate in limits:
                limit.use(key, rate)
        return wait

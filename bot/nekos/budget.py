"""A rate-limit budget shared with other processes of the same bot.

nekos.best counts requests per client IP, and several processes of one deployment usually share
one: each process's own `RateLimiter` only sees its own requests and answers, so together they
could overshoot a window. A `SharedBudget` is the count they share (the bot's is kept in
PostgreSQL by `bot.coordination`): the limiter takes a slot there before sending and reports
what each answer's headers say. This module only declares the protocol: `bot.nekos` knows
nothing of where the count is kept.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SharedBudget"]


class SharedBudget(Protocol):
    """The count of requests every process sent in a bucket's current window.

    Both methods must fail safe and fast: on a backend error `take` grants the slot (each
    process's own limiter still follows the server's headers), `correct` drops the update.
    """

    async def take(self, key: str, limit: int, window: float) -> float | None:
        """Take one request slot of bucket `key` (`limit` requests per `window` seconds, as
        this process knows them). None: taken, send now. Otherwise the seconds to wait before
        asking again (the shared window is spent, or this process used its fair share)."""
        ...

    async def correct(self, key: str, remaining: int, reset_at: float) -> None:
        """What an answer said: `remaining` requests left in the window that ends at
        `reset_at` (a `time.time()` instant). The server counts every process's requests, so
        it overrides the shared count (never lowering it below what was taken)."""
        ...

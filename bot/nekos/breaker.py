"""A circuit breaker: when nekos.best keeps failing, stop asking for a while.

Failing fast matters more than usual here: a Discord interaction must be answered within 3 s,
and a command that waits on a dead upstream wastes that window for nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from bot.nekos.errors import Unavailable

__all__ = ["BreakerState", "CircuitBreaker"]

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"  # requests flow
    OPEN = "open"  # failing fast until the cool-down ends
    HALF_OPEN = "half_open"  # one probe is allowed through


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` seconds lets one probe
    through (half-open); the probe's success closes it, its failure opens it again."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self.opened = 0  # times it opened, for metrics

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at < self.cooldown:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in(self) -> float:
        """Seconds until the breaker lets a probe through (0 when it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Claim the right to send. Returns True when the caller is the half-open probe
        (and must report back with `success`, `failure` or `abandon`); raises `Unavailable`
        while open, or while another probe is out."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.OPEN or self._probing:
            raise Unavailable(
                f"nekos.best circuit open (retry in {self.retry_in():.1f}s)"
                if state is BreakerState.OPEN
                else "nekos.best circuit half-open: a probe is already out"
            )
        self._probing = True
        return True

    def success(self) -> None:
        if self._opened_at is not None:
            log.info("nekos.best circuit closed: upstream answered again")
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        if self._probing or (self._opened_at is None and self._failures >= self.threshold):
            if self._opened_at is None:
                log.warning(
                    "nekos.best circuit open after %d consecutive failures; cooling down %.0fs",
                    self._failures,
                    self.cooldown,
                )
            self._opened_at = self._clock()
            self.opened += 1
        self._probing = False

    def abandon(self) -> None:
        """The probe never reached the server (cancelled, rate-limited locally): free the slot."""
        self._probing = False

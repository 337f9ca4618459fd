"""Waiting at start for what the bot depends on (Discord; a database server later).

A container orchestrator often starts the bot before its network, proxy or database is up. So a
dependency that cannot be reached is asked again with capped backoff (1, 2, 4, 8, 15, 15 … s), one
log line per attempt, for `STARTUP_RETRY_SECONDS`; then the bot stops with one line (exit 1).
Refused credentials are not retried: the caller lets that error through at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import aiohttp

log = logging.getLogger(__name__)

T = TypeVar("T")
BACKOFF_CAP = 15.0
PROBE_TIMEOUT = 5.0


class Unreachable(Exception):
    """A dependency stayed out of reach for the whole retry time. The message is one line."""


def delays(cap: float = BACKOFF_CAP) -> Iterator[float]:
    """1, 2, 4, 8, 15, 15 … seconds."""
    delay = 1.0
    while True:
        yield min(delay, cap)
        delay *= 2


async def retry(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    seconds: float,
    transient: tuple[type[BaseException], ...],
    stop: asyncio.Event | None = None,
) -> T:
    """`attempt()` until it returns; a `transient` error is retried while `seconds` last (then
    `Unreachable`), anything else goes through. Returns early with `Unreachable` if `stop` is
    set meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    for number, delay in enumerate(delays(), start=1):
        try:
            return await attempt()
        except transient as exc:
            reason = _reason(exc)
            if loop.time() + delay > deadline:
                raise Unreachable(
                    f"{what} could not be reached for {seconds:g} s ({number} attempts): {reason}"
                ) from None
            log.warning(
                "%s is not reachable (%s): attempt %d, next in %g s", what, reason, number, delay
            )
            if stop is None:
                await asyncio.sleep(delay)
            else:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    continue
                raise Unreachable(f"stopped while waiting for {what}") from None
    raise AssertionError("unreachable")  # delays() never ends


async def probe_http(url: str) -> None:
    """Any HTTP answer from `url` means the server is there (its status does not matter)."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        await response.read()


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__

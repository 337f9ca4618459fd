"""How the client asks nekos.best: one GET within a time budget, retried with backoff on
connection errors, timeouts and 5xx, guarded by the circuit breaker and the rate-limit buckets,
with each other status turned into a typed error.

The bot owns one `aiohttp.ClientSession` (see `make_session`); a transport never closes a
session it did not create.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random as _random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar, Unpack

import aiohttp

from bot.nekos.breaker import CircuitBreaker
from bot.nekos.budget import SharedBudget
from bot.nekos.errors import BadRequest, Forbidden, NekosError, RateLimited, Unavailable
from bot.nekos.ratelimit import RateLimiter

__all__ = [
    "ATTEMPT_TIMEOUT",
    "DEFAULT_BUDGET",
    "ClientStats",
    "Transport",
    "TransportSettings",
    "make_session",
]

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 10.0  # seconds a public call may take, retries and rate-limit waits included
# A slow nekos.best still answers within ~5 s: wait that long for one attempt (the user has a
# deferred "thinking…" by then) rather than give up sooner and ask again, which never gets an
# answer and doubles the load on a struggling upstream. Budgets still bound it all.
ATTEMPT_TIMEOUT = 6.0
_MIN_ATTEMPT = 0.05  # below this much budget an attempt cannot succeed: don't start it

T = TypeVar("T")


def make_session(
    *,
    limit: int = 100,
    limit_per_host: int = 32,
    connect_timeout: float = 1.5,
    sock_read: float = ATTEMPT_TIMEOUT,
    total: float | None = None,
    keepalive_timeout: float = 30.0,
    ttl_dns_cache: int = 300,
) -> aiohttp.ClientSession:
    """The bot's one HTTP session, sized for Discord's 3-second answer window.

    A connect that takes longer than ~1.5 s will not make it in time anyway; keep-alive and
    the DNS cache spare a handshake and a lookup on the hot path. Per-call budgets in
    `NekosClient` tighten these further. Use it as `async with make_session() as session:`.
    """
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        keepalive_timeout=keepalive_timeout,
        ttl_dns_cache=ttl_dns_cache,
    )
    timeout = aiohttp.ClientTimeout(
        total=total, connect=connect_timeout, sock_connect=connect_timeout, sock_read=sock_read
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


@dataclass
class ClientStats:
    """Counters for tests and metrics."""

    requests: Counter[str] = field(default_factory=Counter)  # sent, per bucket key
    statuses: Counter[int] = field(default_factory=Counter)  # answers, per HTTP status
    # Attempts per (bucket, HTTP status), or "timeout" / "connection" when no answer came.
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    retries: int = 0
    failures: int = 0  # connection errors, timeouts, 5xx, garbage
    rate_limited: int = 0  # RateLimited raised, local refusals and 429s alike
    breaker_rejections: int = 0  # calls refused by the open circuit

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            "answers": {f"{bucket} {status}": n for (bucket, status), n in self.answers.items()},
            "retries": self.retries,
            "failures": self.failures,
            "rate_limited": self.rate_limited,
            "breaker_rejections": self.breaker_rejections,
        }


@dataclass(frozen=True, slots=True)
class _Request(Generic[T]):
    """One call's request, the same for each of its attempts."""

    bucket: str  # the rate-limit bucket it counts against
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str] | None
    parse: Callable[[aiohttp.ClientResponse], Awaitable[T]]  # a 2xx answer into the result
    not_found: Callable[[], NekosError]  # the error a 404 means
    allow_redirects: bool


class _Retry(Exception):
    """Internal: an attempt failed in a way worth trying again (connection, timeout, 5xx)."""

    def __init__(self, error: Unavailable) -> None:
        super().__init__(str(error))
        self.error = error


class TransportSettings(TypedDict, total=False):
    """How a `Transport` (and so a `NekosClient`) sends; each one optional."""

    default_budget: float  # seconds a call may take when it names no budget
    attempt_timeout: float  # seconds one attempt may take (within the budget)
    max_attempts: int
    backoff_base: float  # seconds before the first retry (at most; full jitter)
    backoff_cap: float  # the longest wait between attempts
    breaker_threshold: int  # consecutive failures that open the circuit
    breaker_cooldown: float  # seconds the open circuit fails fast before a probe
    breaker: CircuitBreaker  # instead of threshold and cool-down (tests bring a clock)
    limiter: RateLimiter
    budget: SharedBudget | None  # shared with the bot's other processes (not with `limiter`)
    rng: _random.Random  # for the backoff jitter


class Transport:
    """GET requests to nekos.best within a budget (seconds): retries, rate-limit waits and
    each attempt's timeout all fit inside it.

    Settings: see `TransportSettings` (defaults: 10 s budget, 6 s per attempt, 4 attempts,
    0.2-2 s backoff, a breaker opening after 5 failures for 30 s).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        **settings: Unpack[TransportSettings],
    ) -> None:
        unknown = settings.keys() - TransportSettings.__optional_keys__
        if unknown:  # a misspelt setting must not be ignored silently
            raise TypeError(f"unknown transport settings: {', '.join(sorted(unknown))}")
        self._session = session
        self._owns_session = session is None
        self.default_budget = settings.get("default_budget", DEFAULT_BUDGET)
        self.attempt_timeout = settings.get("attempt_timeout", ATTEMPT_TIMEOUT)
        self.max_attempts = max(1, settings.get("max_attempts", 4))
        self.backoff_base = settings.get("backoff_base", 0.2)
        self.backoff_cap = settings.get("backoff_cap", 2.0)
        self.breaker = settings.get("breaker") or CircuitBreaker(
            threshold=settings.get("breaker_threshold", 5),
            cooldown=settings.get("breaker_cooldown", 30.0),
        )
        limiter, budget = settings.get("limiter"), settings.get("budget")
        if limiter is not None and budget is not None:
            raise TypeError("give the budget to the limiter, not next to it")
        self.limiter = limiter or RateLimiter(budget=budget)
        self.stats = ClientStats()
        self._rng = settings.get("rng") or _random.Random()

    async def aclose(self) -> None:
        """Close the session if this transport created it; a borrowed one is left alone."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session in use, made on first use when none was given."""
        if self._session is None:
            self._session = make_session()
        if self._session.closed:
            raise Unavailable("the HTTP session is closed")
        return self._session

    def _attempt_timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        base = self.session.timeout

        def cap(value: float | None) -> float:
            return seconds if value is None else min(value, seconds)

        return aiohttp.ClientTimeout(
            total=seconds,
            connect=cap(base.connect),
            sock_connect=cap(base.sock_connect),
            sock_read=cap(base.sock_read),
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first retry)."""
        # Capped exponential backoff with full jitter: spreads retries of many callers.
        return self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    async def get(
        self,
        bucket: str,
        url: str,
        *,
        headers: Mapping[str, str],
        budget: float | None,
        parse: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        not_found: Callable[[], NekosError],
        params: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> T:
        """GET `url` on rate-limit bucket `bucket` and `parse` a 2xx answer. A 404 raises
        `not_found()`; other statuses, timeouts and garbage raise the typed errors."""
        budget = self.default_budget if budget is None else budget
        if not isinstance(budget, int | float) or math.isnan(budget) or budget <= 0:
            raise BadRequest("budget must be a positive number of seconds")
        request = _Request(bucket, url, headers, params, parse, not_found, allow_redirects)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(request, deadline)
            except _Retry as retry:
                error = retry.error
            except RateLimited:
                self.stats.rate_limited += 1
                raise
            if attempt >= self.max_attempts:
                raise error
            delay = self.backoff(attempt)
            if deadline - loop.time() - delay < _MIN_ATTEMPT:
                raise error  # the budget would end before another attempt could finish
            log.debug("retrying %s in %.2fs after: %s", bucket, delay, error)
            self.stats.retries += 1
            await asyncio.sleep(delay)

    async def _attempt(self, request: _Request[T], deadline: float) -> T:
        loop = asyncio.get_running_loop()
        bucket = request.bucket
        try:
            probe = self.breaker.allow()
        except Unavailable:
            self.stats.breaker_rejections += 1
            raise
        reported = False  # told the breaker how this attempt went

        def outcome(ok: bool) -> None:
            nonlocal reported
            reported = True
            if ok:
                self.breaker.success()
            else:
                self.stats.failures += 1
                self.breaker.failure()

        try:
            await self.limiter.acquire(bucket, deadline)
            left = deadline - loop.time()
            if left < _MIN_ATTEMPT:
                self.limiter.cancel(bucket)
                raise Unavailable("no time left in the budget for nekos.best")
            seconds = min(self.attempt_timeout, left)
            released = False
            self.stats.requests[bucket] += 1
            try:
                async with (
                    asyncio.timeout(seconds),
                    self.session.get(
                        request.url,
                        params=request.params,
                        headers=request.headers,
                        timeout=self._attempt_timeout(seconds),
                        allow_redirects=request.allow_redirects,
                    ) as resp,
                ):
                    status = resp.status
                    self.stats.statuses[status] += 1
                    self.stats.answers[bucket, str(status)] += 1
                    reset = self.limiter.release(bucket, resp.headers, status=status)
                    released = True
                    if 200 <= status < 300:
                        try:
                            value = await request.parse(resp)
                        except Unavailable:
                            outcome(False)  # garbage: not retried, but it is a failure
                            raise
                        outcome(True)
                        return value
                    if status >= 500:
                        outcome(False)
                        raise _Retry(Unavailable(f"nekos.best answered {status}", status=status))
                    # Any other answer proves the service is up; none of them is retried.
                    outcome(True)
                    raise _client_error(bucket, status, reset, request.not_found)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if not released:  # no answer came, so no status was counted
                    failure = "timeout" if isinstance(exc, TimeoutError) else "connection"
                    self.stats.answers[bucket, failure] += 1
                    self.limiter.release(bucket, None)
                    released = True
                if not reported:
                    outcome(False)
                kind = "timed out" if isinstance(exc, TimeoutError) else "connection failed"
                raise _Retry(Unavailable(f"nekos.best {kind}: {exc!r}")) from exc
            finally:
                if not released:
                    self.limiter.release(bucket, None)
        finally:
            if probe and not reported:
                self.breaker.abandon()


def _client_error(
    bucket: str, status: int, reset: float | None, not_found: Callable[[], NekosError]
) -> NekosError:
    """The typed error of a non-2xx, non-5xx answer."""
    if status == 429:
        return RateLimited(bucket, reset if reset is not None else 0.0)
    if status == 404:
        return not_found()
    if status == 400:
        return BadRequest("nekos.best refused the request (400)")
    if status == 403:
        return Forbidden("nekos.best refused the request (403): check User-Agent")
    return Unavailable(f"nekos.best answered {status}", status=status)

"""The nekos.best v2 HTTP client: four endpoints, typed results and errors, rate-limit buckets
learned from headers, retries within a time budget, and a circuit breaker.

The bot owns one `aiohttp.ClientSession` (see `make_session`) and hands it to `NekosClient`;
the client never closes a session it did not create.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random as _random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote_plus, urlsplit

import aiohttp

from bot.nekos.breaker import CircuitBreaker
from bot.nekos.errors import (
    BadRequest,
    Forbidden,
    NekosError,
    NotFound,
    RateLimited,
    Unavailable,
    UnknownCategory,
)
from bot.nekos.models import Category, Credit, Kind, Result
from bot.nekos.ratelimit import RateLimiter

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_BUDGET",
    "ClientStats",
    "NekosClient",
    "asset_path",
    "is_asset_url",
    "make_session",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://nekos.best/api/v2"
DEFAULT_BUDGET = 10.0  # seconds a public call may take, retries and rate-limit waits included
MAX_AMOUNT = 20
QUERY_MIN, QUERY_MAX = 3, 150
CATEGORY_NAME = re.compile(r"[a-z0-9_-]{1,64}")
_ASSET_REST = re.compile(r"([a-z0-9_-]+)/([A-Za-z0-9_-]+)\.(png|gif)")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CREDIT_HEADERS = ("anime_name", "artist_name", "artist_href", "source_url")
_MAX_JSON = 2 * 1024 * 1024  # an /endpoints or results body is a few KiB; more is garbage
_MIN_ATTEMPT = 0.05  # below this much budget an attempt cannot succeed: don't start it

T = TypeVar("T")


def make_session(
    *,
    limit: int = 100,
    limit_per_host: int = 32,
    connect_timeout: float = 1.5,
    sock_read: float = 4.0,
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


def asset_path(url: str, base_url: str = DEFAULT_BASE_URL) -> tuple[str, str] | None:
    """`(category, filename)` when `url` is a nekos.best asset under `base_url`, else None.

    Strict on purpose: `credit()` fetches this URL, so anything that could steer the request
    elsewhere (another host or port, userinfo, percent-encoded or backslashed path tricks,
    dot segments) is refused. The query and fragment are ignored (never sent).
    """
    if not isinstance(url, str) or len(url) > 2048 or not url.isascii():
        return None
    if "\\" in url or any(ch <= " " or ch == "\x7f" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        base = urlsplit(base_url)
        port = parts.port
        base_port = base.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme != base.scheme.lower() or scheme not in _DEFAULT_PORTS:
        return None
    if "@" in parts.netloc:
        return None
    host, base_host = parts.hostname, base.hostname
    if not host or not base_host or host.lower() != base_host.lower():
        return None
    if (port or _DEFAULT_PORTS[scheme]) != (base_port or _DEFAULT_PORTS[scheme]):
        return None
    path = parts.path
    if "%" in path:
        return None
    prefix = base.path.rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    m = _ASSET_REST.fullmatch(path[len(prefix) :])
    if m is None:
        return None
    return m.group(1), f"{m.group(2)}.{m.group(3)}"


def is_asset_url(url: str, base_url: str = DEFAULT_BASE_URL) -> bool:
    """True only for a nekos.best asset URL under `base_url` (see `asset_path`)."""
    return asset_path(url, base_url) is not None


@dataclass
class ClientStats:
    """Counters for tests and metrics."""

    requests: Counter[str] = field(default_factory=Counter)  # sent, per bucket key
    statuses: Counter[int] = field(default_factory=Counter)  # answers, per HTTP status
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
            "retries": self.retries,
            "failures": self.failures,
            "rate_limited": self.rate_limited,
            "breaker_rejections": self.breaker_rejections,
        }


class _Retry(Exception):
    """Internal: an attempt failed in a way worth trying again (connection, timeout, 5xx)."""

    def __init__(self, error: Unavailable) -> None:
        super().__init__(str(error))
        self.error = error


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _dimension(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _decode_header(value: str | None) -> str | None:
    """Decode a URL-encoded credit header: `+` is a space, `%E3%81%BD` is UTF-8."""
    if value is None:
        return None
    # aiohttp hands raw non-ASCII header bytes over as surrogate escapes: recover them.
    raw = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _text(unquote_plus(raw, encoding="utf-8", errors="replace"))


def _category_of(url: str) -> str | None:
    parts = urlsplit(url).path.rsplit("/", 2)
    if len(parts) == 3 and CATEGORY_NAME.fullmatch(parts[1]):
        return parts[1]
    return None


def parse_results(data: Any, category: str | None = None) -> list[Result]:
    """Turn a `{"results": [...]}` body into Results; anything else raises Unavailable.

    A result needs a URL; every other field is optional and unknown fields are ignored.
    """
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise Unavailable("nekos.best answered an unexpected shape (no results list)", status=200)
    out: list[Result] = []
    for item in results:
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise Unavailable("nekos.best answered a result without a usable url", status=200)
        dims = item.get("dimensions")
        width = height = None
        if isinstance(dims, dict):
            width, height = _dimension(dims.get("width")), _dimension(dims.get("height"))
        credit = Credit(
            anime_name=_text(item.get("anime_name")),
            artist_name=_text(item.get("artist_name")),
            artist_href=_text(item.get("artist_href")),
            source_url=_text(item.get("source_url")),
        )
        out.append(
            Result(
                url=url,
                credit=credit,
                category=category or _category_of(url),
                width=width,
                height=height,
            )
        )
    return out


def parse_endpoints(data: Any) -> dict[str, Category]:
    """Turn an `/endpoints` body into categories, in the order given.

    Entries that are not `name: {"format": str}` are skipped; a body with none usable raises
    Unavailable.
    """
    if not isinstance(data, dict):
        raise Unavailable("nekos.best /endpoints answered an unexpected shape", status=200)
    categories: dict[str, Category] = {}
    for name, info in data.items():
        fmt = info.get("format") if isinstance(info, dict) else None
        if not isinstance(name, str) or not CATEGORY_NAME.fullmatch(name) or not _text(fmt):
            log.debug("ignoring malformed /endpoints entry %r: %r", name, info)
            continue
        categories[name] = Category(name=name, format=fmt.strip().lower())
    if not categories:
        raise Unavailable("nekos.best /endpoints listed no usable category", status=200)
    return categories


async def _read_json(resp: aiohttp.ClientResponse) -> Any:
    if resp.content_length is not None and resp.content_length > _MAX_JSON:
        raise Unavailable("nekos.best answered an oversized body", status=resp.status)
    body = await resp.read()
    if len(body) > _MAX_JSON:
        raise Unavailable("nekos.best answered an oversized body", status=resp.status)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unavailable("nekos.best answered invalid JSON", status=resp.status) from exc


def _validate_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT:
        raise BadRequest(f"amount must be an integer from 1 to {MAX_AMOUNT}, not {amount!r}")


def _validate_category(category: str) -> None:
    # Anything else could not be a category and might escape the path: refuse locally.
    if not isinstance(category, str) or not CATEGORY_NAME.fullmatch(category):
        raise UnknownCategory(str(category))


def _kind(kind: Kind | str) -> Kind:
    if isinstance(kind, Kind):
        return kind
    if isinstance(kind, str):
        lowered = kind.strip().lower()
        if lowered in ("images", "image", "img", "png"):
            return Kind.IMAGE
        if lowered in ("gifs", "gif"):
            return Kind.GIF
    raise BadRequest(f"kind must be 'images' or 'gifs', not {kind!r}")


def _clean_contact(contact: str | None) -> str | None:
    if contact is None:
        return None
    # Header-safe: no control characters; parentheses would break `APP (CONTACT)`.
    cleaned = "".join(ch for ch in contact if ch.isprintable() and ch not in "()").strip()
    return cleaned[:200] or None


class NekosClient:
    """nekos.best v2 client. Every public call takes `budget` (seconds, default 10): retries,
    rate-limit waits and each attempt's timeout all fit inside it.

    `NekosClient(session)` borrows the bot's session and never closes it. Without a session
    the client makes its own (lazily) and closes it in `aclose()` / `async with`.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        contact: str | None = None,
        app_version: str = "0.0.0",
        app_name: str = "nekocord",
        default_budget: float = DEFAULT_BUDGET,
        attempt_timeout: float = 4.0,
        max_attempts: int = 4,
        backoff_base: float = 0.2,
        backoff_cap: float = 2.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        rng: _random.Random | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self.base_url = base_url.rstrip("/")
        self.app_name = app_name
        self.app_version = app_version
        self._contact = _clean_contact(contact)
        self.default_budget = default_budget
        self.attempt_timeout = attempt_timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.breaker = breaker or CircuitBreaker(
            threshold=breaker_threshold, cooldown=breaker_cooldown
        )
        self.limiter = limiter or RateLimiter()
        self.stats = ClientStats()
        self._rng = rng or _random.Random()

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> NekosClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client created it; a borrowed one is left alone."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = make_session()
        if self._session.closed:
            raise Unavailable("the HTTP session is closed")
        return self._session

    # -- identity --------------------------------------------------------------------------

    @property
    def contact(self) -> str | None:
        return self._contact

    def set_contact(self, contact: str | None) -> None:
        """Set how nekos.best can reach the operator (NEKOS_CONTACT, or the bot's invite link
        once logged in). Applies to every request from now on."""
        self._contact = _clean_contact(contact)

    @property
    def user_agent(self) -> str:
        """`nekocord/<version> (<contact>)`, sent explicitly on every request."""
        contact = self._contact or "+self-hosted; contact pending"
        return f"{self.app_name}/{self.app_version} ({contact})"

    def _headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent, "Accept": "application/json"}

    # -- asset URLs ------------------------------------------------------------------------

    def asset_path(self, url: str) -> tuple[str, str] | None:
        """`(category, filename)` for an asset URL under this client's base URL, else None."""
        return asset_path(url, self.base_url)

    def is_asset_url(self, url: str) -> bool:
        return asset_path(url, self.base_url) is not None

    @staticmethod
    def category_bucket(category: str) -> str:
        return f"category:{category}"

    # -- endpoints -------------------------------------------------------------------------

    async def endpoints(self, *, budget: float | None = None) -> dict[str, Category]:
        """`GET /endpoints`: every category and its format, in the order nekos.best lists them."""

        async def parse(resp: aiohttp.ClientResponse) -> dict[str, Category]:
            return parse_endpoints(await _read_json(resp))

        return await self._call(
            "endpoints",
            f"{self.base_url}/endpoints",
            budget=budget,
            parse=parse,
            not_found=lambda: Unavailable("nekos.best has no /endpoints", status=404),
        )

    async def random(
        self, category: str, amount: int = 1, *, budget: float | None = None
    ) -> list[Result]:
        """`GET /:category?amount=N`: 1 to 20 random results of a category."""
        _validate_category(category)
        _validate_amount(amount)

        async def parse(resp: aiohttp.ClientResponse) -> list[Result]:
            return parse_results(await _read_json(resp), category)

        return await self._call(
            self.category_bucket(category),
            f"{self.base_url}/{category}",
            params={"amount": str(amount)},
            budget=budget,
            parse=parse,
            not_found=lambda: UnknownCategory(category),
        )

    async def search(
        self,
        query: str,
        kind: Kind | str,
        category: str | None = None,
        amount: int = 1,
        *,
        budget: float | None = None,
    ) -> list[Result]:
        """`GET /search`: results whose anime (GIFs) or artist (images) matches `query`.

        An empty list is a normal answer. The query must be 3 to 150 characters once trimmed.
        """
        if not isinstance(query, str):
            raise BadRequest("query must be a string")
        query = query.strip()
        if not QUERY_MIN <= len(query) <= QUERY_MAX:
            raise BadRequest(f"query must be {QUERY_MIN} to {QUERY_MAX} characters long")
        resolved = _kind(kind)
        if category is not None:
            _validate_category(category)
        _validate_amount(amount)
        params = {"query": query, "type": str(resolved.search_type), "amount": str(amount)}
        if category is not None:
            params["category"] = category

        async def parse(resp: aiohttp.ClientResponse) -> list[Result]:
            return parse_results(await _read_json(resp), None)

        def not_found() -> NekosError:
            if category is not None:
                return UnknownCategory(category)
            return Unavailable("nekos.best has no /search", status=404)

        return await self._call(
            "search",
            f"{self.base_url}/search",
            params=params,
            budget=budget,
            parse=parse,
            not_found=not_found,
        )

    async def credit(self, url: str, *, budget: float | None = None) -> Credit:
        """The credit of an asset, from the file endpoint's URL-encoded headers.

        Only URLs under the base URL are accepted (BadRequest otherwise, without a request);
        redirects are not followed and the image bytes are never read.
        """
        path = self.asset_path(url)
        if path is None:
            raise BadRequest("not a nekos.best asset URL")
        category, filename = path

        async def parse(resp: aiohttp.ClientResponse) -> Credit:
            values = {name: _decode_header(resp.headers.get(name)) for name in _CREDIT_HEADERS}
            # Don't download the image: reuse the connection if the body is already in,
            # otherwise drop it.
            if resp.content.is_eof():
                resp.release()
            else:
                resp.close()
            return Credit(**values)

        # Request a URL rebuilt from the validated parts: nothing else of `url` goes out.
        return await self._call(
            "file",
            f"{self.base_url}/{category}/{filename}",
            budget=budget,
            parse=parse,
            not_found=lambda: NotFound(f"no such asset: {category}/{filename}"),
            allow_redirects=False,
        )

    # -- the request loop ------------------------------------------------------------------

    def _attempt_timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        base = self._get_session().timeout

        def cap(value: float | None) -> float:
            return seconds if value is None else min(value, seconds)

        return aiohttp.ClientTimeout(
            total=seconds,
            connect=cap(base.connect),
            sock_connect=cap(base.sock_connect),
            sock_read=cap(base.sock_read),
        )

    def _backoff(self, attempt: int) -> float:
        # Capped exponential backoff with full jitter: spreads retries of many callers.
        return self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    async def _call(
        self,
        bucket: str,
        url: str,
        *,
        budget: float | None,
        parse: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        not_found: Callable[[], NekosError],
        params: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> T:
        budget = self.default_budget if budget is None else budget
        if not isinstance(budget, int | float) or math.isnan(budget) or budget <= 0:
            raise BadRequest("budget must be a positive number of seconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(
                    bucket,
                    url,
                    params=params,
                    deadline=deadline,
                    parse=parse,
                    not_found=not_found,
                    allow_redirects=allow_redirects,
                )
            except _Retry as retry:
                error = retry.error
            except RateLimited:
                self.stats.rate_limited += 1
                raise
            if attempt >= self.max_attempts:
                raise error
            delay = self._backoff(attempt)
            if deadline - loop.time() - delay < _MIN_ATTEMPT:
                raise error  # the budget would end before another attempt could finish
            log.debug("retrying %s in %.2fs after: %s", bucket, delay, error)
            self.stats.retries += 1
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        bucket: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        deadline: float,
        parse: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        not_found: Callable[[], NekosError],
        allow_redirects: bool,
    ) -> T:
        loop = asyncio.get_running_loop()
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
                    self._get_session().get(
                        url,
                        params=params,
                        headers=self._headers(),
                        timeout=self._attempt_timeout(seconds),
                        allow_redirects=allow_redirects,
                    ) as resp,
                ):
                    status = resp.status
                    self.stats.statuses[status] += 1
                    reset = self.limiter.release(bucket, resp.headers, status=status)
                    released = True
                    if 200 <= status < 300:
                        try:
                            value = await parse(resp)
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
                    if status == 429:
                        raise RateLimited(bucket, reset if reset is not None else 0.0)
                    if status == 404:
                        if bucket.startswith("category:"):
                            self.limiter.forget(bucket)
                        raise not_found()
                    if status == 400:
                        raise BadRequest("nekos.best refused the request (400)")
                    if status == 403:
                        raise Forbidden("nekos.best refused the request (403): check User-Agent")
                    raise Unavailable(f"nekos.best answered {status}", status=status)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if not released:
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

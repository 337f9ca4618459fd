"""The nekos.best v2 client: its four endpoints, with arguments checked before anything is sent
and answers turned into typed results and errors.

How a request is sent (retries within a budget, the circuit breaker, the rate-limit buckets)
is `Transport`'s business; the bot hands its one `aiohttp.ClientSession` to the client, which
never closes a session it did not create.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Unpack

import aiohttp

from bot.nekos.assets import DEFAULT_BASE_URL, asset_path
from bot.nekos.breaker import CircuitBreaker
from bot.nekos.errors import BadRequest, NekosError, NotFound, Unavailable, UnknownCategory
from bot.nekos.limits import CATEGORY_NAME, MAX_AMOUNT, QUERY_MAX, QUERY_MIN
from bot.nekos.models import Category, Credit, Kind, Result
from bot.nekos.parsing import parse_credit_headers, parse_endpoints, parse_results, read_json
from bot.nekos.ratelimit import RateLimiter
from bot.nekos.transport import ClientStats, Transport, TransportSettings

__all__ = ["NekosClient"]

T = TypeVar("T")


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
    the client makes its own (lazily) and closes it in `aclose()` / `async with`. The other
    settings are `Transport`'s (see `TransportSettings`: timeouts, retries, the breaker's
    threshold and cool-down).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        contact: str | None = None,
        app_version: str = "0.0.0",
        app_name: str = "nekocord",
        **settings: Unpack[TransportSettings],
    ) -> None:
        self.transport = Transport(session, **settings)
        self.base_url = base_url.rstrip("/")
        self.app_name = app_name
        self.app_version = app_version
        self._contact = _clean_contact(contact)

    # -- lifecycle and state ---------------------------------------------------------------

    async def __aenter__(self) -> NekosClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client created it; a borrowed one is left alone."""
        await self.transport.aclose()

    @property
    def breaker(self) -> CircuitBreaker:
        return self.transport.breaker

    @property
    def limiter(self) -> RateLimiter:
        return self.transport.limiter

    @property
    def stats(self) -> ClientStats:
        return self.transport.stats

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

    async def _get_json(
        self,
        bucket: str,
        path: str,
        convert: Callable[[Any], T],
        *,
        budget: float | None,
        not_found: Callable[[], NekosError],
        params: Mapping[str, str] | None = None,
    ) -> T:
        """GET `base_url/path` and `convert` its JSON body."""

        async def parse(resp: aiohttp.ClientResponse) -> T:
            return convert(await read_json(resp))

        return await self.transport.get(
            bucket,
            f"{self.base_url}/{path}",
            headers=self._headers(),
            params=params,
            budget=budget,
            parse=parse,
            not_found=not_found,
        )

    async def endpoints(self, *, budget: float | None = None) -> dict[str, Category]:
        """`GET /endpoints`: every category and its format, in the order nekos.best lists them."""

        return await self._get_json(
            "endpoints",
            "endpoints",
            parse_endpoints,
            budget=budget,
            not_found=lambda: Unavailable("nekos.best has no /endpoints", status=404),
        )

    async def random(
        self, category: str, amount: int = 1, *, budget: float | None = None
    ) -> list[Result]:
        """`GET /:category?amount=N`: 1 to 20 random results of a category."""
        _validate_category(category)
        _validate_amount(amount)
        bucket = self.category_bucket(category)

        def not_found() -> NekosError:
            self.limiter.forget(bucket)  # no such category: keep no state for it
            return UnknownCategory(category)

        return await self._get_json(
            bucket,
            category,
            lambda data: parse_results(data, category),
            params={"amount": str(amount)},
            budget=budget,
            not_found=not_found,
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

        An empty list is a normal answer. The query must be `QUERY_MIN` to `QUERY_MAX`
        characters once trimmed.
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

        def not_found() -> NekosError:
            if category is not None:
                return UnknownCategory(category)
            return Unavailable("nekos.best has no /search", status=404)

        return await self._get_json(
            "search", "search", parse_results, params=params, budget=budget, not_found=not_found
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
            credit = parse_credit_headers(resp.headers)
            # Don't download the image: reuse the connection if the body is already in,
            # otherwise drop it.
            if resp.content.is_eof():
                resp.release()
            else:
                resp.close()
            return credit

        # Request a URL rebuilt from the validated parts: nothing else of `url` goes out.
        return await self.transport.get(
            "file",
            f"{self.base_url}/{category}/{filename}",
            headers=self._headers(),
            budget=budget,
            parse=parse,
            not_found=lambda: NotFound(f"no such asset: {category}/{filename}"),
            allow_redirects=False,
        )

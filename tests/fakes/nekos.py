"""FakeNekos: a loopback stand-in for the nekos.best v2 API, for tests and benchmarks.

Usage::

    async with FakeNekos() as nekos:                 # binds 127.0.0.1, a free port
        client = NekosClient(session, base_url=nekos.base_url, app_version="1.0")
        ...
        assert nekos.count("/hug") == 1

It speaks the documented shapes (see docs/nekos-best.md):

- ``GET /api/v2/endpoints`` → ``{"angry": {"format": "gif"}, …}`` (no rate limit).
- ``GET /api/v2/<category>?amount=N`` → ``{"results": [...]}``; GIF results carry
  ``anime_name``, image results ``artist_name``, ``artist_href``, ``source_url``; every other
  result has ``dimensions``. Each call mints fresh assets (UUID filenames), so results never
  repeat unless ``duplicates`` is on. Unknown category → 404.
- ``GET /api/v2/search?query=Q&type=1|2[&category=C][&amount=N]`` → results whose artist
  (type 1) or anime (type 2) name contains Q (case-insensitive); ``{"results": []}`` when
  nothing matches. Bad type/amount/query → 400.
- ``GET /api/v2/<category>/<uuid>.<png|gif>`` (only for assets it minted, else 404) → a few
  bytes, with the credit in URL-encoded headers (``+`` for spaces, percent-encoded UTF-8: the
  corpus has artists like ``ぽてと`` and ``Rin + Len``). Result URLs point here:
  ``<base_url>/<category>/<uuid>.<fmt>``.

Rate limits, reported on every rate-limited answer (429 too) with ``x-rate-limit-limit`` (the
window, e.g. ``1m``; or the count with ``limit_header="count"``), ``x-rate-limit-remaining``
and ``x-rate-limit-reset`` (ISO 8601 with 7 fractional digits and ``Z``): buckets ``"search"``
(7 per 5 s), ``"category:<name>"`` (200 per 60 s each) and ``"file"`` (200 per 60 s, shared).
404s and 400s are not counted. nekos.best does not say which kind of window it runs, so the
stand-in has both (``window_kind``):

- ``"fixed"`` (default): a window starts with the first request after the last one ended and
  refills whole at its end, the instant the reset header names.
- ``"sliding"``: each slot frees ``window`` seconds after the request that used it; the reset
  header names the next slot to free (the oldest use + ``window``), so after it only one slot
  may be free, not the whole budget.

A missing, library-default (``Python/``, ``aiohttp``, ``python-requests``…), browser-like or
generic (``bot``, ``test``, ``Discord Bot``) User-Agent, or one without an ``(contact)``, gets
403 before anything else.

Constructor::

    FakeNekos(*, categories=None, search_limit=7, search_window=5.0, category_limit=200,
              category_window=60.0, file_limit=200, file_window=60.0,
              limit_header="window", window_kind="fixed", latency=0.0, seed=0,
              host="127.0.0.1", port=0)

``categories`` maps name → format ("gif"/"png"); default: the 63 categories of 2026.

Knobs (plain attributes, change them at any time):

- ``latency``: seconds to wait before answering.
- ``window_kind``: ``"fixed"`` or ``"sliding"`` (see above).
- ``fail_status`` / ``fail_times`` / ``fail_path``: answer ``fail_status`` (e.g. 500) to the
  next ``fail_times`` requests (None: until cleared), only for routes starting with
  ``fail_path`` when set (e.g. ``"/endpoints"``). Use ``fail()`` / ``heal()``.
- ``hang``: accept requests and never answer (until the server stops).
- ``malformed``: answer 200 with an invalid JSON body (JSON routes).
- ``missing_fields``: answer 200 with valid JSON of the wrong shape (results without
  ``url``; /endpoints values that are not objects).
- ``duplicates``: each /<category> batch repeats its results (half the URLs, twice each).
- ``override``: ``callable(request) -> Response | None`` (may be async), consulted after the
  User-Agent check; a returned response is sent as is.
- ``force_429(reset_in=1.0, bucket=None)``: the given bucket (or the bucket of the next
  rate-limited request) answers 429 until ``reset_in`` seconds from then.
- ``add_category(name, fmt="gif")`` / ``remove_category(name)`` / ``set_categories(dict)``.
- Refused connections: ``await stop()``; ``await start()`` again binds the same port.

Records (for assertions):

- ``requests``: every request, as ``FakeRequest(method, path, route, query, headers, time,
  bucket, status)``; ``time`` is ``time.time()`` at arrival, ``route`` the path below
  ``/api/v2`` (``"/hug"``, ``"/search"``), ``status`` what was answered (None: no answer).
- ``counts``: Counter of routes; ``bucket_counts``: Counter of rate-limit buckets.
- ``count(route=None, *, prefix=False)``, ``requests_to(route, *, prefix=False)``,
  ``clear_records()``.
- ``assets``: url → FakeAsset for every asset minted (its credit).
- ``base_url``, ``port``, ``user_agents`` (set of User-Agents seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import random
import socket
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from aiohttp import web

__all__ = [
    "ANIME",
    "ARTISTS",
    "DEFAULT_CATEGORIES",
    "WINDOW_KINDS",
    "FakeAsset",
    "FakeNekos",
    "FakeRequest",
    "iso7",
]

API = "/api/v2"
WINDOW_KINDS = ("fixed", "sliding")

_GIFS = [
    "angry",
    "baka",
    "bite",
    "bleh",
    "blowkiss",
    "blush",
    "bonk",
    "bored",
    "carry",
    "clap",
    "confused",
    "cry",
    "cuddle",
    "dance",
    "facepalm",
    "feed",
    "handhold",
    "handshake",
    "happy",
    "highfive",
    "hug",
    "kabedon",
    "kick",
    "kiss",
    "lappillow",
    "laugh",
    "lurk",
    "nod",
    "nom",
    "nope",
    "nya",
    "pat",
    "peck",
    "poke",
    "pout",
    "punch",
    "run",
    "salute",
    "shake",
    "shocked",
    "shoot",
    "shrug",
    "sip",
    "slap",
    "sleep",
    "smile",
    "smug",
    "spin",
    "stare",
    "tableflip",
    "teehee",
    "think",
    "thumbsup",
    "tickle",
    "wag",
    "wave",
    "wink",
    "yawn",
    "yeet",
]
_IMAGES = ["husbando", "kitsune", "neko", "waifu"]
# Deliberately its own copy (not bot/nekos/snapshot.json): a stand-in for the real service.
DEFAULT_CATEGORIES: dict[str, str] = {
    name: ("png" if name in _IMAGES else "gif") for name in sorted(_GIFS + _IMAGES)
}

ANIME = [
    "Nichijou",
    "K-On!",
    "Lucky☆Star",
    "Toradora!",
    "Spy x Family",
    "Bocchi the Rock!",
    "Kaguya-sama: Love Is War",
    "Frieren: Beyond Journey's End",
    "ゆるキャン△",
    "Love + Chunibyo",
]
ARTISTS = [
    "ぽてと",
    "しらたま",
    "Mika Pikazo",
    "Rin + Len",
    "A+B Studio",
    "Hana & Mochi",
    "Kazuki 100%",
]

_BANNED_MARKERS = (
    "python/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "mozilla/",
)
_GENERIC_NAMES = {"bot", "test", "discord bot", "discordbot", "my bot", "mybot", "app"}
_GIF_BYTES = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
_PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def iso7(instant: float) -> str:
    """`time.time()` instant → ISO 8601 with 7 fractional digits and Z, as nekos.best sends."""
    dt = datetime.fromtimestamp(instant, UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond:06d}0Z"


def _window_text(window: float) -> str:
    if window >= 60 and window % 60 == 0:
        return f"{int(window // 60)}m"
    if float(window).is_integer():
        return f"{int(window)}s"
    return f"{round(window * 1000)}ms"


def user_agent_ok(user_agent: str | None) -> bool:
    """nekos.best's rule as we model it: `APP_NAME (CONTACT)`, no library default."""
    if not user_agent or not user_agent.strip():
        return False
    lowered = user_agent.lower()
    if any(marker in lowered for marker in _BANNED_MARKERS):
        return False
    name = user_agent.split("(", 1)[0].strip()
    if not name or name.split("/", 1)[0].strip().lower() in _GENERIC_NAMES:
        return False
    if name.lower() in _GENERIC_NAMES:
        return False
    return "(" in user_agent and user_agent.rstrip().endswith(")")


@dataclass
class FakeRequest:
    method: str
    path: str
    route: str
    query: dict[str, str]
    headers: dict[str, str]
    time: float
    bucket: str | None = None
    status: int | None = None


# aiohttp ≥ 3.12 wants typed request keys; older versions take a plain string.
_RECORD: Any = web.RequestKey("record", FakeRequest) if hasattr(web, "RequestKey") else "record"


@dataclass(frozen=True)
class FakeAsset:
    category: str
    filename: str
    url: str
    anime_name: str | None = None
    artist_name: str | None = None
    artist_href: str | None = None
    source_url: str | None = None
    width: int | None = None
    height: int | None = None

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = {"url": self.url}
        for key in ("anime_name", "artist_name", "artist_href", "source_url"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.width is not None:
            data["dimensions"] = {"width": self.width, "height": self.height}
        return data


@dataclass
class _Window:
    limit: int
    window: float
    count: int = 0  # fixed: requests counted in the window ending at `reset`
    reset: float = 0.0
    forced_until: float = 0.0
    uses: deque[float] = field(default_factory=deque)  # sliding: arrival of each used slot


@dataclass
class _Limits:
    search: tuple[int, float]
    category: tuple[int, float]
    file: tuple[int, float]
    windows: dict[str, _Window] = field(default_factory=dict)


class FakeNekos:
    """A nekos.best v2 stand-in on loopback. See the module docstring for the full API."""

    def __init__(
        self,
        *,
        categories: dict[str, str] | None = None,
        search_limit: int = 7,
        search_window: float = 5.0,
        category_limit: int = 200,
        category_window: float = 60.0,
        file_limit: int = 200,
        file_window: float = 60.0,
        limit_header: str = "window",
        window_kind: str = "fixed",
        latency: float = 0.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if limit_header not in ("window", "count", "both"):
            raise ValueError("limit_header must be 'window', 'count' or 'both'")
        if window_kind not in WINDOW_KINDS:
            raise ValueError("window_kind must be 'fixed' or 'sliding'")
        self.categories: dict[str, str] = dict(
            DEFAULT_CATEGORIES if categories is None else categories
        )
        self._limits = _Limits(
            search=(search_limit, search_window),
            category=(category_limit, category_window),
            file=(file_limit, file_window),
        )
        self.limit_header = limit_header
        self.window_kind = window_kind
        self.host = host
        self.port = port
        self._rng = random.Random(seed)
        # knobs
        self.latency = latency
        self.fail_status: int | None = None
        self.fail_times: int | None = None
        self.fail_path: str | None = None
        self.hang = False
        self.malformed = False
        self.missing_fields = False
        self.duplicates = False
        self.override: (
            Callable[
                [web.Request], Awaitable[web.StreamResponse | None] | web.StreamResponse | None
            ]
            | None
        ) = None
        self._force_next: float | None = None
        # records
        self.requests: list[FakeRequest] = []
        self.counts: Counter[str] = Counter()
        self.bucket_counts: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        self.assets: dict[str, FakeAsset] = {}
        self._files: dict[tuple[str, str], FakeAsset] = {}
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeNekos is not started")
        return f"http://{self.host}:{self.port}{API}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self, sock: socket.socket | None = None) -> None:
        """Bind and serve (the same port again after a `stop()`); or serve on `sock`, bound
        and listening (another host's address)."""
        if self._runner is not None:
            return
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(f"{API}/endpoints", self._endpoints)
        app.router.add_get(f"{API}/search", self._search)
        app.router.add_get(f"{API}/{{category}}", self._random)
        app.router.add_get(f"{API}/{{category}}/{{filename}}", self._file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site: web.BaseSite = web.TCPSite(runner, self.host, self.port)
        if sock is not None:
            self.host, self.port = sock.getsockname()[:2]
            site = web.SockSite(runner, sock)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        if not self.port:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving: connections are refused until `start()`. Hanging requests end."""
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def __aenter__(self) -> FakeNekos:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- knobs -----------------------------------------------------------------------------

    def fail(self, status: int = 500, times: int | None = None, path: str | None = None) -> None:
        """Answer `status` to the next `times` requests (None: until `heal()`), optionally
        only for routes starting with `path` (e.g. "/endpoints")."""
        self.fail_status, self.fail_times, self.fail_path = status, times, path

    def heal(self) -> None:
        """Clear every failure knob (fail, hang, malformed, missing_fields, duplicates,
        override, a pending force_429). `latency` is left as it is."""
        self.fail_status = self.fail_times = self.fail_path = None
        self.hang = self.malformed = self.missing_fields = self.duplicates = False
        self.override = None
        self._force_next = None

    def force_429(self, reset_in: float = 1.0, bucket: str | None = None) -> None:
        """Block `bucket` ("search", "category:<name>", "file") with 429s for `reset_in`
        seconds from now; without a bucket, from the next rate-limited request on."""
        if bucket is None:
            self._force_next = reset_in
        else:
            self._window(bucket).forced_until = time.time() + reset_in

    def plant(self, category: str, **fields: Any) -> FakeAsset:
        """An asset of `category` with chosen metadata (e.g. hostile text), served at its URL."""
        asset = dataclasses.replace(self._mint(category), **fields)
        self.assets[asset.url] = asset
        self._files[(category, asset.filename)] = asset
        return asset

    def add_category(self, name: str, fmt: str = "gif") -> None:
        self.categories[name] = fmt

    def remove_category(self, name: str) -> None:
        self.categories.pop(name, None)

    def set_categories(self, categories: dict[str, str]) -> None:
        self.categories = dict(categories)

    # -- records ---------------------------------------------------------------------------

    def requests_to(self, route: str | None = None, *, prefix: bool = False) -> list[FakeRequest]:
        """Recorded requests for `route` (e.g. "/hug"; all when None)."""
        if route is None:
            return list(self.requests)
        if prefix:
            return [r for r in self.requests if r.route.startswith(route)]
        return [r for r in self.requests if r.route == route]

    def count(self, route: str | None = None, *, prefix: bool = False) -> int:
        return len(self.requests_to(route, prefix=prefix))

    def clear_records(self) -> None:
        self.requests.clear()
        self.counts.clear()
        self.bucket_counts.clear()
        self.user_agents.clear()

    # -- machinery -------------------------------------------------------------------------

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route = request.path[len(API) :] if request.path.startswith(API) else request.path
        record = FakeRequest(
            method=request.method,
            path=request.path,
            route=route,
            query=dict(request.query),
            headers=dict(request.headers),
            time=time.time(),
        )
        self.requests.append(record)
        self.counts[route] += 1
        request[_RECORD] = record
        response = await self._answer(request, handler, route)
        record.status = response.status
        return response

    async def _answer(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        route: str,
    ) -> web.StreamResponse:
        user_agent = request.headers.get("User-Agent")
        if user_agent:
            self.user_agents.add(user_agent)
        if not user_agent_ok(user_agent):
            return web.Response(status=403, text="Forbidden: descriptive User-Agent required")
        if self.override is not None:
            outcome = self.override(request)
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome is not None:
                return outcome
        if self.latency > 0:
            await self._pause(self.latency)
        if self.hang:
            await self._stopping.wait()
            return web.Response(status=503, text="shutting down")
        if self.fail_status is not None and (
            self.fail_path is None or route.startswith(self.fail_path)
        ):
            status = self.fail_status
            if self.fail_times is not None:
                self.fail_times -= 1
                if self.fail_times <= 0:
                    self.fail_status = self.fail_times = self.fail_path = None
            return web.Response(status=status, text=f"fake failure {status}")
        return await handler(request)

    def _window(self, bucket: str) -> _Window:
        state = self._limits.windows.get(bucket)
        if state is None:
            family = bucket.split(":", 1)[0]
            limit, window = getattr(self._limits, family)
            state = self._limits.windows[bucket] = _Window(limit, window)
        return state

    def _rate(self, request: web.Request, bucket: str) -> tuple[bool, dict[str, str]]:
        """Count a request against `bucket`: (allowed, headers to send)."""
        request[_RECORD].bucket = bucket
        self.bucket_counts[bucket] += 1
        state = self._window(bucket)
        now = time.time()
        if self._force_next is not None:
            state.forced_until = now + self._force_next
            self._force_next = None
        if now < state.forced_until:
            allowed, remaining, reset = False, 0, state.forced_until
        elif self.window_kind == "sliding":
            allowed, remaining, reset = self._slide(state, now)
        else:
            if now >= state.reset:
                state.count, state.reset = 0, now + state.window
            allowed = state.count < state.limit
            state.count += allowed
            remaining, reset = state.limit - state.count, state.reset
        if self.limit_header == "window":
            limit_text = _window_text(state.window)
        elif self.limit_header == "count":
            limit_text = str(state.limit)
        else:
            limit_text = f"{state.limit}/{_window_text(state.window)}"
        headers = {
            "x-rate-limit-limit": limit_text,
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": iso7(reset),
        }
        return allowed, headers

    @staticmethod
    def _slide(state: _Window, now: float) -> tuple[bool, int, float]:
        """A sliding window: (allowed, remaining, when the oldest used slot frees)."""
        while state.uses and state.uses[0] + state.window <= now:
            state.uses.popleft()
        allowed = len(state.uses) < state.limit
        if allowed:
            state.uses.append(now)
        return allowed, state.limit - len(state.uses), state.uses[0] + state.window

    def _json(self, data: Any, headers: dict[str, str] | None = None) -> web.Response:
        body = b'{"results": [{"url": "http' if self.malformed else json.dumps(data).encode()
        return web.Response(body=body, content_type="application/json", headers=headers)

    def _mint(self, category: str, *, anime: str | None = None, artist: str | None = None):
        fmt = self.categories.get(category, "gif")
        filename = f"{uuid.UUID(int=self._rng.getrandbits(128), version=4)}.{fmt}"
        url = f"{self.base_url}/{category}/{filename}"
        with_dims = self._rng.random() < 0.5
        if fmt == "gif":
            asset = FakeAsset(
                category,
                filename,
                url,
                anime_name=anime or self._rng.choice(ANIME),
                width=498 if with_dims else None,
                height=280 if with_dims else None,
            )
        else:
            number = self._rng.randrange(10**6, 10**8)
            asset = FakeAsset(
                category,
                filename,
                url,
                artist_name=artist or self._rng.choice(ARTISTS),
                artist_href=f"https://www.pixiv.net/en/users/{number}",
                source_url=f"https://www.pixiv.net/en/artworks/{number + 7}?p=1&lang=en+us",
                width=1200 if with_dims else None,
                height=1700 if with_dims else None,
            )
        self.assets[url] = asset
        self._files[(category, filename)] = asset
        return asset

    @staticmethod
    def _amount(request: web.Request) -> int | None:
        try:
            amount = int(request.query.get("amount", "1"))
        except ValueError:
            return None
        return amount if 1 <= amount <= 20 else None

    # -- routes ----------------------------------------------------------------------------

    async def _endpoints(self, request: web.Request) -> web.Response:
        request[_RECORD].bucket = "endpoints"
        if self.missing_fields:
            return self._json(dict.fromkeys(self.categories, "gif"))
        return self._json({name: {"format": fmt} for name, fmt in self.categories.items()})

    async def _random(self, request: web.Request) -> web.Response:
        category = request.match_info["category"]
        if category not in self.categories:
            return web.Response(status=404, text="Not Found")
        amount = self._amount(request)
        if amount is None:
            return web.Response(status=400, text="Bad amount")
        allowed, headers = self._rate(request, f"category:{category}")
        if not allowed:
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        if self.missing_fields:
            return self._json({"results": [{"anime_name": "Nichijou"}] * amount}, headers)
        assets = [
            self._mint(category) for _ in range((amount + 1) // 2 if self.duplicates else amount)
        ]
        if self.duplicates:
            assets = (assets * 2)[:amount]
        return self._json({"results": [a.result() for a in assets]}, headers)

    async def _search(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "").strip()
        kind = request.query.get("type")
        amount = self._amount(request)
        category = request.query.get("category")
        if kind not in ("1", "2") or amount is None or not 3 <= len(query) <= 150:
            return web.Response(status=400, text="Bad Request")
        if category is not None and category not in self.categories:
            return web.Response(status=404, text="Not Found")
        allowed, headers = self._rate(request, "search")
        if not allowed:
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        if self.missing_fields:
            return self._json({"results": {"url": None}}, headers)
        fmt = "png" if kind == "1" else "gif"
        names = [n for n in (ARTISTS if kind == "1" else ANIME) if query.lower() in n.lower()]
        pool = [c for c, f in self.categories.items() if f == fmt]
        if category is not None:
            pool = [c for c in pool if c == category]
        results = []
        if names and pool:
            for i in range(amount):
                name = names[i % len(names)]
                target = self._rng.choice(pool)
                if kind == "1":
                    results.append(self._mint(target, artist=name).result())
                else:
                    results.append(self._mint(target, anime=name).result())
        return self._json({"results": results}, headers)

    async def _file(self, request: web.Request) -> web.Response:
        category = request.match_info["category"]
        filename = request.match_info["filename"]
        asset = self._files.get((category, filename))
        if asset is None:
            return web.Response(status=404, text="Not Found")
        allowed, headers = self._rate(request, "file")
        if not allowed:
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        for key in ("anime_name", "artist_name", "artist_href", "source_url"):
            value = getattr(asset, key)
            if value is not None:
                headers[key] = quote_plus(value, safe="")
        gif = filename.endswith(".gif")
        return web.Response(
            body=_GIF_BYTES if gif else _PNG_BYTES,
            content_type="image/gif" if gif else "image/png",
            headers=headers,
        )

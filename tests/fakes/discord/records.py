"""What the stand-in records: REST requests, injected faults, and per-interaction answers."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.discord.payloads import LOADING
from tests.fakes.discord.responses import json_response, plain_error

T = TypeVar("T")


class Notifier:
    """Futures woken on every recorded change; ``wait_until`` re-checks a predicate."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_until(
        self,
        predicate: Callable[[], T],
        timeout: float,
        describe: Callable[[], str],
        poll: float | None = None,
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s. {describe()}".strip())
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            # Woken by every recorded change; with ``poll`` also re-checked periodically, so
            # predicates over state outside the stand-in work too.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, min(remaining, poll) if poll else remaining)


@dataclass(eq=False)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(eq=False)
class RecordedRequest:
    """One REST request. ``path`` is without ``/api/v10`` and without the query string."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    at: float
    files: list[UploadedFile] = field(default_factory=list)
    status: int | None = None


@dataclass(eq=False)
class Fault:
    """An injected answer (:meth:`FakeDiscord.fail`); ``hits`` counts the requests it answered."""

    method: str
    pattern: re.Pattern[str]
    status: int
    json: Any
    headers: dict[str, str | None]
    times: int
    process: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method == "*" or self.method == method)
            and self.pattern.search(path) is not None
        )

    def response(self) -> web.Response:
        if self.status == 429:
            return self._rate_limited()
        if self.status == 204:
            return web.Response(status=204, headers=self._headers({}))
        if self.json is None:
            answer = plain_error(self.status)
            answer.headers.update(self._headers({}))
            return answer
        return json_response(self.json, self.status, self._headers({}))

    def _rate_limited(self) -> web.Response:
        """A 429 as Discord sends it (docs/discord.md, "Rate limits")."""
        body = dict(self.json) if self.json is not None else {}
        body.setdefault("message", "You are being rate limited.")
        body.setdefault("retry_after", 0.05)
        body.setdefault("global", False)
        retry = float(body["retry_after"])
        headers: dict[str, str | None] = {
            # Without ``Via`` discord.py takes a 429 for a Cloudflare ban and does not retry.
            "Via": "1.1 google",
            "Retry-After": str(max(1, int(retry + 0.999))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
            "X-RateLimit-Reset-After": f"{retry:.3f}",
            "X-RateLimit-Bucket": "fakebucket" + format(abs(hash(self.pattern.pattern)), "x"),
            "X-RateLimit-Scope": "global" if body["global"] else "user",
        }
        if body["global"]:
            headers["X-RateLimit-Global"] = "true"
        return json_response(body, 429, self._headers(headers))

    def _headers(self, defaults: dict[str, str | None]) -> dict[str, str]:
        merged = {**defaults, **self.headers}  # ``None`` removes a default header
        return {k: v for k, v in merged.items() if v is not None}


@dataclass(eq=False)
class Callback:
    """An accepted interaction callback (``POST /interactions/{id}/{token}/callback``)."""

    body: dict[str, Any]
    at: float
    files: list[UploadedFile] = field(default_factory=list)

    @property
    def type(self) -> int:
        return int(self.body.get("type", 0))

    @property
    def data(self) -> dict[str, Any]:
        return self.body.get("data") or {}


@dataclass(eq=False)
class Rejected:
    """A callback the stand-in refused (``status``/``code``: 400/40060, 404/10062, 400/50035…)."""

    body: Any
    at: float
    status: int
    code: int
    reason: str


@dataclass(eq=False)
class Edit:
    """A PATCH of a message through the interaction webhook (``@original`` resolved to its id)."""

    message_id: str
    body: dict[str, Any]
    at: float
    original: bool


@dataclass(eq=False)
class InteractionRecord:
    """Everything the bot sent for one interaction token (see README.md, "What it records")."""

    id: str
    token: str
    type: int
    payload: dict[str, Any]
    dispatched_at: float
    callbacks: list[Callback] = field(default_factory=list)
    rejected_callbacks: list[Rejected] = field(default_factory=list)
    first_response_at: float | None = None
    original: dict[str, Any] | None = None
    original_deleted: bool = False
    followups: list[dict[str, Any]] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    message_id: str | None = None
    shard: int = 0  # the shard whose connection it was dispatched on
    notifier: Notifier = field(default_factory=Notifier, repr=False)

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0].type if self.callbacks else None

    @property
    def response_time(self) -> float | None:
        """Seconds from the user's click to the first accepted callback (the 3 s rule)."""
        if self.first_response_at is None:
            return None
        return self.first_response_at - self.dispatched_at

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        for cb in self.callbacks:
            if cb.type == 8:
                return list(cb.data.get("choices", []))
        return None

    @property
    def invoking_user(self) -> dict[str, Any]:
        member = self.payload.get("member")
        if member:
            return member["user"]
        return self.payload.get("user") or {}

    def visible_message(self) -> dict[str, Any] | None:
        """The first message a user would see as the answer, or ``None`` yet."""
        original = self.original
        if original is not None and not self.original_deleted:
            loading = int(original.get("flags", 0)) & LOADING
            first = self.response_type
            edited = any(e.original for e in self.edits)
            if not loading and (first in (4, 7) or edited or original in self.followups):
                return original
        if self.followups:
            return self.followups[0]
        return None

    def describe(self) -> str:
        return (
            f"interaction {self.id} (type {self.type}): callbacks="
            f"{[c.body for c in self.callbacks]!r} rejected="
            f"{[(r.status, r.code, r.reason) for r in self.rejected_callbacks]!r} "
            f"original={self.original!r} followups={len(self.followups)} edits={len(self.edits)}"
        )

    async def wait_for(self, predicate: Callable[[InteractionRecord], T], timeout: float = 5) -> T:
        """Until ``predicate(record)`` is truthy (re-checked whenever this token is used)."""
        return await self.notifier.wait_until(lambda: predicate(self), timeout, self.describe)

    async def wait_callback(self, timeout: float = 5) -> dict[str, Any]:
        cb = await self.wait_for(lambda r: r.callbacks[0] if r.callbacks else None, timeout)
        return cb.body

    async def wait_message(self, timeout: float = 10) -> dict[str, Any]:
        return await self.wait_for(lambda r: r.visible_message(), timeout)

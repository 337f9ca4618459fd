"""A loopback stand-in for Discord (REST API v10 + gateway) for a *real* discord.py client.

Nothing here reaches Discord. :class:`FakeDiscord` is an aiohttp application bound to
``127.0.0.1`` on an ephemeral port that serves the REST API under ``/api/v10`` and the gateway
websocket on every other path of the same port. A real ``discord.Client`` / ``commands.Bot`` is
pointed at it through two process-global class attributes (see :meth:`FakeDiscord.patch_client`)::

    async with FakeDiscord(token="test-token", guild_count=1) as fake:
        bot = commands.Bot(command_prefix=commands.when_mentioned,
                           intents=discord.Intents.default(), guild_ready_timeout=0.1)
        async with fake.run_bot(bot):          # patch URLs, login, connect, wait for on_ready
            await bot.tree.sync()              # PUT /applications/{id}/commands
            handle = await fake.interact(fake.slash("hug", {"user": make_user(name="alice")}))
            message = await handle.wait_message(timeout=5)
            assert handle.response_time < 3

Everything the bot sends is recorded; faults and delays can be injected per route.

Constructor
-----------
``FakeDiscord(token="test-token", *, guild_count=1, guild_ids=None, application_id=None,
bot_name="nekocord", port=0, host="127.0.0.1", heartbeat_interval=41250, compress=True,
recommended_shards=1, max_guilds_per_shard=None, privileged_intents=ALL_PRIVILEGED,
callback_deadline=3.0, rest_latency=0.0, validate=True, strict_commands=False,
buffer_size=10_000, record_requests=True, seed=0)``

- ``guild_count`` guilds are generated (ids spread over past timestamps so that
  ``(id >> 22) % shards`` spreads them) unless ``guild_ids`` is given. Each guild has an
  ``@everyone`` role (id = guild id), one text channel ``#general`` and the bot as a member.
- ``compress``: honour ``?compress=zlib-stream`` (binary zlib frames, as Discord does); with
  ``False`` or any other requested compression the fake sends text frames, which discord.py
  parses as plain JSON.
- ``recommended_shards`` is what ``GET /gateway/bot`` answers (``AutoShardedClient`` obeys it).
- ``max_guilds_per_shard``: ``None`` = no check; e.g. ``2500`` closes an IDENTIFY whose shard
  would hold more guilds with 4011 (sharding required), as Discord does.
- ``privileged_intents``: bit mask of the privileged intents enabled "in the developer portal";
  an IDENTIFY asking for others is closed with 4014. Default: all enabled.
- ``callback_deadline``: an interaction callback arriving later than this many seconds after
  :meth:`interact` is answered ``404 {"code": 10062, "message": "Unknown interaction"}`` like
  Discord's 3 s rule. ``None`` disables.
- ``rest_latency``: seconds added to every REST answer (emulate a round trip).
- ``validate``: check message bodies (content 2,000; 10 embeds; 6,000 characters per message;
  title 256, description 4,096, field name 256/value 1,024, footer 2,048, author 256, 25 fields;
  5 action rows of 5; ``custom_id`` 100; autocomplete ≤25 choices, names 1–100, values ≤100;
  empty messages) and command registrations (names, descriptions, 25 options/choices,
  100 chat-input + 15 user + 15 message commands, duplicates). Violations get
  ``400 {"code": 50035, "message": "Invalid Form Body", "errors": {...}}`` (``50006`` for an empty
  message), as Discord answers; discord.py raises ``HTTPException``.
- ``strict_commands``: builders raise ``LookupError`` for a command that was not registered
  (synced) first. Without it, unregistered commands get a made-up id.
- ``buffer_size``: dispatches kept per session for RESUME replay (older seq → op 9).
- ``record_requests=False`` stops appending to ``requests`` (long benchmarks).
- ``seed``: guild ids are reproducible for a given seed (and start time).

Attributes
----------
``rest_url`` (``http://127.0.0.1:<port>/api/v10``), ``gateway_url`` (``ws://127.0.0.1:<port>/``),
``resume_gateway_url`` (``ws://127.0.0.1:<port>/resume``: READY hands it out, so a RESUME is
visible in ``gateway_connects``), ``port``, ``token``, ``application_id`` (int), ``bot_user``
(dict), ``application`` (dict answered by ``/oauth2/applications/@me``), ``guild_ids``
(list[int]), ``guilds`` (guild id → GUILD_CREATE dict), ``channel_ids`` (guild id → text channel
id), ``default_user`` (the invoking user of builders), ``users`` (id → user dict seen/made).

Records: ``requests`` (list[:class:`RecordedRequest`]), ``unknown_requests`` (404'd routes),
``commands`` (``IdMap``: ``None`` → global command list, guild id → that guild's list),
``command_puts`` (int: bulk overwrites), ``messages`` (``IdMap`` message id → message dict of
every message the bot created or the fake made up; int or str keys both work),
``deleted_messages`` (ids), ``interactions`` (list[:class:`InteractionRecord`], in order),
``identifies`` / ``resumes`` (lists of the IDENTIFY / RESUME ``d`` payloads: use ``len()``),
``intents`` (int of the last IDENTIFY), ``gateway_connects`` (list of ``{"path", "query", "at"}``),
``gateway_received`` (every gateway frame the client sent, parsed), ``heartbeats`` (count),
``sessions`` (int: connected READY sessions), ``gateway_sessions`` (list of
:class:`GatewaySession`, resumable ones included).

Methods
-------
- ``async with FakeDiscord(...)`` / ``await start()`` / ``await stop()``: stop closes every
  websocket (1001, then aborts after 1 s), answers requests sleeping in an injected delay with
  503 at once, and stops the server; it never hangs.
- ``patch_client()``: context manager setting ``discord.http.Route.BASE`` and
  ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` and restoring them on exit.
- ``run_bot(client, *, token=None, timeout=10, wait_ready=True)``: async context manager:
  patch, ``login``, ``connect`` in a task, wait for ``wait_until_ready`` (a failing connect
  raises here), yield; always ``close()`` the client and reap the task.
- ``fail(method, path_regex, *, status, json=None, headers=None, times=1, delay=0.0,
  process=False) -> Fault``: the next ``times`` requests whose method matches (``"*"`` = any)
  and whose path (without ``/api/v10`` and query; ``re.search``) matches get that answer.
  429s default to ``{"message": "You are being rate limited.", "retry_after": 0.05,
  "global": false}`` plus ``Via``, ``Retry-After`` and ``X-RateLimit-*`` headers (without
  ``Via`` discord.py treats a 429 as a Cloudflare ban: pass ``headers={"Via": None}`` to remove
  it). ``process=True`` handles the request normally first (side effects happen) and only then
  replaces the answer: a 5xx'd callback that Discord did process, so discord.py's retry meets
  40060.
- ``delay(method, path_regex, seconds, times=1) -> Fault``: slow the next matching answers.
- ``requests_to(method, path_regex)``: recorded requests matching.
- ``await dispatch(event, data, *, guild_id=None) -> int``: send a DISPATCH to every READY
  session (to the guild's shard when ``guild_id`` is given); buffered for disconnected
  resumable sessions and replayed on RESUME.
- ``await close_gateway(code=4000, reason="", *, shard_id=None)``: server-side close frame.
  4000-like codes keep the session resumable; 4007/4009 and codes that discord.py does not
  reconnect on invalidate it.
- ``drop_gateway(*, shard_id=None)``: abort the TCP transport without a close frame (1006).
- ``await invalidate_session(resumable=False)``: op 9. After a non-resumable one discord.py
  re-IDENTIFYs, **after its own 5 s ``before_identify_hook`` sleep**.
- ``await request_reconnect()``: op 7 RECONNECT (the client resumes).
- ``await wait_connected(timeout=5, count=1)``: until ``count`` sessions are READY and
  connected (a RESUMED session counts).
- ``await wait_until(predicate, timeout=5)``: generic; re-checked on every recorded change and
  every 50 ms (so it may look at the bot's state too).
- ``await interact(payload) -> InteractionRecord``: dispatch INTERACTION_CREATE (to the guild's
  shard, or shard 0) and track everything sent with its token. Raises ``RuntimeError`` when no
  gateway session exists.

Payload builders (methods; ``user`` defaults to ``default_user``; ``guild_id`` defaults to the
first guild, ``None`` means a DM with the bot, context 1)
- ``slash(name, options=None, *, user=None, guild_id=..., subcommand=None, locale="en-US",
  context=None)``: ``options`` is a dict ``{name: value}`` (types come from the registered
  command when synced, else from the Python value: str 3, int 4, bool 5, float 10, user dict 6,
  channel dict 7, role dict 8, attachment dict 11) or an explicit list of
  ``{"name", "type", "value"}``. USER options add ``resolved.users`` and, in guilds,
  ``resolved.members``. ``subcommand="sub"`` or ``"group sub"`` nests the options.
- ``autocomplete(name, focused, options=None, **same)``: type 4; the ``focused`` option gets
  ``"focused": true`` (value ``""`` if absent from ``options``).
- ``component(custom_id, message, *, user=None, component_type=2, values=None, strict=True)``:
  type 3 for a message dict (e.g. ``handle.original`` or ``fake.messages[id]``). With
  ``strict`` it raises ``ValueError`` when ``custom_id`` is not among the message's components
  (discord.py would silently ignore such a press).
- ``modal_submit(custom_id, values, *, message=None, user=None)``: type 5, text inputs.
- ``user_command(name, target_user, *, user=None, guild_id=...)``: type 2, data.type 2.
- ``message_command(name, target_message, *, user=None, guild_id=...)``: type 2, data.type 3.
- ``user_message(content, *, author=None, guild_id=..., channel_id=None)``: a message "from a
  user", stored in ``messages`` (a target for message commands).
- module level ``make_user(id=None, name="tester", *, bot=False, global_name=None)``,
  ``snowflake()``.
Every payload carries what discord.py 2.7 reads: ``id``, ``application_id``, ``type``,
``data``, ``token`` (70 url-safe characters), ``version`` 1, ``app_permissions``, ``locale``,
``guild_locale``, ``entitlements``, ``authorizing_integration_owners``, ``context``,
``attachment_size_limit``, ``channel`` + ``channel_id``, ``guild_id`` + ``guild`` + ``member``
(guild) or ``user`` (DM).

InteractionRecord
-----------------
``id``, ``token``, ``type``, ``payload``, ``dispatched_at`` (monotonic, when ``interact`` was
called: the user's click), ``callbacks`` (list[:class:`Callback`]: ``body``, ``type``, ``data``,
``at``, ``files``), ``rejected_callbacks`` (list[:class:`Rejected`]: 40060 double acks, late
ones, invalid bodies), ``first_response_at``, ``response_time`` (= first_response_at −
dispatched_at, the 3 s rule), ``response_type``, ``acknowledged``, ``original`` (current
message dict or ``None``; ``flags`` 64 = ephemeral, 128 = still "thinking…"),
``original_deleted``, ``followups`` (message dicts), ``edits`` (list[:class:`Edit`]:
``message_id``, ``body``, ``at``), ``deleted`` (message ids), ``message_id`` (for components:
the message the component is on), ``choices`` (autocomplete answer or ``None``).
``await wait_callback(timeout=5)`` → first callback body; ``await wait_message(timeout=10)`` →
the first visible message (type 4 message, type 7 update, the original once edited after a
defer, or a follow-up); ``await wait_for(predicate, timeout=5)`` (predicate gets the record;
its truthy result is returned; re-checked whenever a request for this token completes).
Timeouts raise ``TimeoutError`` describing what was recorded (``describe()``). Also
``visible_message()`` (the non-waiting form) and ``invoking_user``.

Discord semantics emulated
--------------------------
A type 5 defer creates a "thinking" original (flags 128, plus 64 if ephemeral); the first
PATCH ``@original`` *or the first follow-up* replaces it, and a follow-up replacing it keeps the
defer's visibility (its own ephemeral flag is ignored). Type 6/7 on a component target the
component's message (type 7 edits it in ``messages``). A second callback → 400 / 40060. A
follow-up before any callback → 404 / 10015. A webhook token edits/deletes only its own
interaction's messages (else 404 / 10008). ``?wait=`` is honoured (204 without it). Message
``mentions`` / ``mention_roles`` / ``mention_everyone`` are computed from ``content`` only and
filtered by ``allowed_mentions`` (absent = parse everything), so "nobody pinged" is assertable.
Components get numeric ``id``\\ s and embeds ``type: "rich"`` as Discord adds them. Webhook and
callback routes need no ``Authorization``; everything else needs ``Bot <token>`` (else 401,
which discord.py turns into ``LoginFailure`` at ``GET /users/@me``). Unknown routes → 404
``{"message": "404: Not Found", "code": 0}``. A 1000/1001 close from the client invalidates its
session (as Discord does), other closes keep it resumable. ``GUILD_MEMBERS_CHUNK`` answers op 8
with the bot member only.

discord.py traps worth knowing (verified in its 2.7 source)
--------------------------------------------------------
- ``json_or_text`` parses a body only if ``Content-Type`` is exactly ``application/json``.
- ``DiscordWebSocket.from_client`` calls ``gateway.with_query(v=10, encoding=json,
  compress=zlib-stream)``: any query on the URL is replaced, so only host/path matter. After
  READY it reconnects to ``resume_gateway_url`` (a RESUME shows path ``/resume`` here); after a
  non-resumable op 9 it goes back to ``DEFAULT_GATEWAY``.
- Any re-IDENTIFY (not the first) and every AutoShardedClient shard after the first sleep 5 s
  in ``Client.before_identify_hook``: override it in tests that need speed.
- ``on_ready`` waits ``guild_ready_timeout`` (default 2 s) after the last GUILD_CREATE;
  interactions are handled before that. ``close()`` does not cancel that pending task
  (``run_bot`` does, to avoid a "Task exception was never retrieved" on fast teardowns).
- A 429 without ``Via`` raises at once (Cloudflare ban); with ``Via`` it sleeps
  ``retry_after``. Webhook/callback 5xx are retried after 1, 3, 5… s.
- A DynamicItem press is ignored silently unless the interaction's ``message`` contains a
  component of the same type and ``custom_id`` (``View.from_message``): hence ``strict``.
- Client-initiated close with 1000 (``close()``) means "end the session" to Discord.

Not emulated: REST rate-limit buckets (no ``X-RateLimit-*`` on normal answers, so discord.py
never pre-emptively waits), the 15-minute token lifetime, MESSAGE_CREATE echoes of the bot's
own messages, presences, voice, zstd compression, gateway send rate limits.

Standalone: ``python -m tests.fakes.discord --port 0 --guilds 1`` prints one JSON line with the
URLs, then serves until interrupted (no control API: that is for in-process use).
"""

# The public API deliberately takes ``timeout=`` arguments (test ergonomics).

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json as jsonlib
import random
import re
import secrets
import socket
import sys
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

__all__ = [
    "ALL_PERMISSIONS",
    "ALL_PRIVILEGED",
    "EPHEMERAL",
    "IS_COMPONENTS_V2",
    "LOADING",
    "SUPPRESS_EMBEDS",
    "SUPPRESS_NOTIFICATIONS",
    "Callback",
    "Edit",
    "FakeDiscord",
    "Fault",
    "GatewaySession",
    "IdMap",
    "InteractionRecord",
    "RecordedRequest",
    "Rejected",
    "UploadedFile",
    "make_user",
    "snowflake",
]

T = TypeVar("T")
V = TypeVar("V")

DISCORD_EPOCH_MS = 1_420_070_400_000
#: GUILD_MEMBERS (1 << 1) | GUILD_PRESENCES (1 << 8) | MESSAGE_CONTENT (1 << 15)
ALL_PRIVILEGED = (1 << 1) | (1 << 8) | (1 << 15)
ALL_PERMISSIONS = str((1 << 51) - 1)
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

_API_PATH = re.compile(r"^/api(?:/v\d+)?(?P<path>/.*)$")
_USER_MENTION = re.compile(r"<@!?(\d{1,21})>")
_ROLE_MENTION = re.compile(r"<@&(\d{1,21})>")
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
_TOKEN_PATH = re.compile(r"^/(?:interactions|webhooks)/\d+/(?P<token>[^/]+)")
_counter = itertools.count()


class _First:
    def __repr__(self) -> str:
        return "<first guild>"


#: Builders default to the first guild; ``guild_id=None`` explicitly means a DM.
_FIRST: Any = _First()


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def snowflake(at_ms: int | None = None) -> str:
    """A unique Discord snowflake (string) for ``at_ms`` (Unix ms; default: now)."""
    ms = int(time.time() * 1000) if at_ms is None else at_ms
    return str(((ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (next(_counter) & 0x1FFFF))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def make_user(
    id: int | str | None = None,
    name: str = "tester",
    *,
    bot: bool = False,
    global_name: str | None = None,
    avatar: str | None = None,
) -> dict[str, Any]:
    """A user object as Discord sends it (``discriminator`` "0", the post-2023 default)."""
    user: dict[str, Any] = {
        "id": str(id) if id is not None else snowflake(),
        "username": name,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": avatar,
        "avatar_decoration_data": None,
        "banner": None,
        "accent_color": None,
        "public_flags": 0,
        "flags": 0,
        "collectibles": None,
        "primary_guild": None,
    }
    if bot:
        user["bot"] = True
    return user


def _json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py only parses a body whose Content-Type is exactly "application/json";
    # web.json_response would add "; charset=utf-8".
    out = {"Content-Type": "application/json"}
    out.update(headers or {})
    return web.Response(status=status, body=jsonlib.dumps(data).encode(), headers=out)


def _error(status: int, message: str, code: int = 0, **extra: Any) -> web.Response:
    return _json_response({"message": message, "code": code, **extra}, status)


def _no_content() -> web.Response:
    return web.Response(status=204)


def _set_path(errors: dict[str, Any], path: str, code: str, message: str) -> None:
    node = errors
    for part in path.split("."):
        node = node.setdefault(part, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def _form_error(errors: dict[str, Any]) -> web.Response:
    return _error(400, "Invalid Form Body", 50035, errors=errors)


class IdMap(dict[Any, V]):
    """A dict keyed by ``int`` snowflakes that also accepts ``str`` keys (``None`` stays)."""

    @staticmethod
    def _k(key: Any) -> Any:
        return None if key is None else int(key)

    def __getitem__(self, key: Any) -> V:
        return super().__getitem__(self._k(key))

    def __setitem__(self, key: Any, value: V) -> None:
        super().__setitem__(self._k(key), value)

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(self._k(key))

    def __contains__(self, key: object) -> bool:
        try:
            return super().__contains__(self._k(key))
        except (TypeError, ValueError):
            return False

    def get(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return super().get(self._k(key), default)
        except (TypeError, ValueError):
            return default

    def pop(self, key: Any, *default: Any) -> Any:  # type: ignore[override]
        return super().pop(self._k(key), *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        return super().setdefault(self._k(key), default)


class _Notifier:
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
        describe: Callable[[], str] | None = None,
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
                detail = describe() if describe else ""
                raise TimeoutError(f"condition not met within {timeout}s. {detail}".strip())
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            # Woken by every recorded change; with ``poll`` also re-checked periodically, so
            # predicates over state outside the fake work too.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, min(remaining, poll) if poll else remaining)


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------


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
    """An injected answer (``fail``) or slowdown (``delay``); ``hits`` counts uses."""

    method: str
    pattern: re.Pattern[str]
    status: int | None
    json: Any
    headers: dict[str, str | None]
    times: int
    delay: float
    process: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method == "*" or self.method == method)
            and self.pattern.search(path) is not None
        )

    def response(self) -> web.Response:
        assert self.status is not None
        status = self.status
        body = self.json
        headers: dict[str, str | None] = {}
        if status == 429:
            body = dict(body) if body is not None else {"message": "You are being rate limited."}
            body.setdefault("retry_after", 0.05)
            body.setdefault("global", False)
            retry = float(body["retry_after"])
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, int(retry + 0.999))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                "X-RateLimit-Reset-After": f"{retry:.3f}",
                "X-RateLimit-Bucket": "fakebucket" + format(abs(hash(self.pattern.pattern)), "x"),
                "X-RateLimit-Scope": "global" if body.get("global") else "user",
            }
            if body.get("global"):
                headers["X-RateLimit-Global"] = "true"
        elif body is None:
            body = {"message": f"{status}: {_reason(status)}", "code": 0}
        headers.update(self.headers)
        clean = {k: v for k, v in headers.items() if v is not None}
        if status == 204:
            return web.Response(status=204, headers=clean)
        return _json_response(body, status, clean)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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
    """A callback the fake refused (``status``/``code``: 400/40060, 404/10062, 400/50035...)."""

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
    """Everything the bot sent for one interaction token (see module docstring)."""

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
    _notifier: _Notifier = field(default_factory=_Notifier, repr=False)

    # -- derived -----------------------------------------------------------------------------
    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0].type if self.callbacks else None

    @property
    def response_time(self) -> float | None:
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

    # -- waiting -----------------------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[InteractionRecord], T], timeout: float = 5) -> T:
        return await self._notifier.wait_until(lambda: predicate(self), timeout, self.describe)

    async def wait_callback(self, timeout: float = 5) -> dict[str, Any]:
        cb = await self.wait_for(lambda r: r.callbacks[0] if r.callbacks else None, timeout)
        return cb.body

    async def wait_message(self, timeout: float = 10) -> dict[str, Any]:
        return await self.wait_for(lambda r: r.visible_message(), timeout)


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    path: str
    query: dict[str, str]
    compressor: Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: GatewaySession | None = None
    open: bool = True
    closed_by_server: bool = False


@dataclass(eq=False)
class GatewaySession:
    """A gateway session (survives disconnects until invalidated, so it can be RESUMEd)."""

    session_id: str
    identify: dict[str, Any]
    shard: tuple[int, int]
    intents: int
    seq: int = 0
    ready: bool = False
    invalid: bool = False
    buffer: deque[tuple[int, str]] = field(default_factory=deque)
    conn: _Conn | None = field(default=None, repr=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def connected(self) -> bool:
        return self.conn is not None and self.conn.open


# --------------------------------------------------------------------------------------------
# the fake
# --------------------------------------------------------------------------------------------

_RouteHandler = Callable[[RecordedRequest, "re.Match[str]"], Awaitable[web.StreamResponse]]


class FakeDiscord:
    """Loopback Discord: REST under ``/api/v10`` and the gateway websocket on one port."""

    def __init__(
        self,
        token: str = "test-token",
        *,
        guild_count: int = 1,
        guild_ids: Iterable[int | str] | None = None,
        application_id: int | None = None,
        bot_name: str = "nekocord",
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: int = 41250,
        compress: bool = True,
        recommended_shards: int = 1,
        max_guilds_per_shard: int | None = None,
        privileged_intents: int = ALL_PRIVILEGED,
        callback_deadline: float | None = 3.0,
        rest_latency: float = 0.0,
        validate: bool = True,
        strict_commands: bool = False,
        buffer_size: int = 10_000,
        record_requests: bool = True,
        seed: int = 0,
    ) -> None:
        self.token = token
        self.host = host
        self._requested_port = port
        self.port = 0
        self.heartbeat_interval = heartbeat_interval
        self.compress = compress
        self.recommended_shards = recommended_shards
        self.max_guilds_per_shard = max_guilds_per_shard
        self.privileged_intents = privileged_intents
        self.callback_deadline = callback_deadline
        self.rest_latency = rest_latency
        self.validate = validate
        self.strict_commands = strict_commands
        self.buffer_size = buffer_size
        self.record_requests = record_requests

        rng = random.Random(seed)
        now_ms = int(time.time() * 1000)
        self.application_id = int(application_id or snowflake(now_ms - 400 * 86_400_000))
        self.bot_user: dict[str, Any] = {
            **make_user(self.application_id, bot_name, bot=True),
            "discriminator": "0",
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "email": None,
            "bio": "",
        }
        self.owner: dict[str, Any] = make_user(snowflake(now_ms - 900 * 86_400_000), "owner")
        self.default_user: dict[str, Any] = make_user(
            snowflake(now_ms - 700 * 86_400_000), "tester", global_name="Tester"
        )
        self.application: dict[str, Any] = {
            "id": str(self.application_id),
            "name": bot_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": secrets.token_hex(32),
            "owner": self.owner,
            "team": None,
            "flags": 0,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
            "integration_types_config": {"0": {}, "1": {}},
            "approximate_guild_count": 0,
            "bot": self.bot_user,
        }

        if guild_ids is not None:
            self.guild_ids: list[int] = [int(g) for g in guild_ids]
        else:
            span = 5 * 365 * 86_400_000
            self.guild_ids = [
                int(snowflake(now_ms - rng.randrange(86_400_000, span))) for _ in range(guild_count)
            ]
        self.application["approximate_guild_count"] = len(self.guild_ids)
        self.channel_ids: dict[int, int] = {}
        self.guilds: dict[int, dict[str, Any]] = {}
        for index, gid in enumerate(self.guild_ids):
            cid = int(snowflake((gid >> 22) + DISCORD_EPOCH_MS + 1))
            self.channel_ids[gid] = cid
            self.guilds[gid] = self._guild_payload(gid, cid, index)
        self.dm_channel_id = int(snowflake())

        self.users: IdMap[dict[str, Any]] = IdMap()
        for u in (self.bot_user, self.owner, self.default_user):
            self.users[u["id"]] = u

        # records
        self.requests: list[RecordedRequest] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.commands: IdMap[list[dict[str, Any]]] = IdMap()
        self.command_puts = 0
        self.messages: IdMap[dict[str, Any]] = IdMap()
        self.deleted_messages: list[str] = []
        self.interactions: list[InteractionRecord] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.gateway_connects: list[dict[str, Any]] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.heartbeats = 0

        self._faults: list[Fault] = []
        self._delays: list[Fault] = []
        self._by_token: dict[str, InteractionRecord] = {}
        self._sessions: dict[str, GatewaySession] = {}
        self._conns: set[_Conn] = set()
        self._notifier = _Notifier()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._routes = self._build_routes()

    # ---------------------------------------------------------------------------- lifecycle
    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/resume"

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api{tail:(/.*)?}", self._handle_rest)
        app.router.add_get("/{tail:.*}", self._handle_gateway)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping.set()  # wakes injected delays so aiohttp's shutdown has nothing to wait for
        conns = list(self._conns)
        if conns:
            await asyncio.gather(
                *(self._close_conn(c, 1001, b"fake discord stopping") for c in conns),
                return_exceptions=True,
            )
        runner, self._runner = self._runner, None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), 5.0)
        self._notify()
        for record in self.interactions:
            record._notifier.notify()

    # ----------------------------------------------------------------------- client helpers
    @contextlib.contextmanager
    def patch_client(self) -> Iterator[None]:
        """Point discord.py (process-wide) at this fake; restore the previous URLs on exit."""
        import discord.gateway
        import discord.http
        import yarl

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.rest_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    @contextlib.asynccontextmanager
    async def run_bot(
        self,
        client: Any,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        wait_ready: bool = True,
    ) -> AsyncIterator[Any]:
        """Log ``client`` in, connect it in a task, wait for READY; always close it after."""
        with self.patch_client():
            task: asyncio.Task[None] | None = None
            try:
                await asyncio.wait_for(client.login(token or self.token), timeout)
                task = asyncio.create_task(client.connect(reconnect=True), name="fake-bot-connect")
                if wait_ready:
                    ready = asyncio.create_task(client.wait_until_ready())
                    done, _ = await asyncio.wait(
                        {ready, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    if ready not in done:
                        ready.cancel()
                        if task in done:
                            task.result()
                            raise RuntimeError("client.connect() returned before READY")
                        raise TimeoutError(f"client not ready within {timeout}s")
                yield client
            finally:
                # discord.py does not cancel its pending "ready" task on close(); if the client
                # is closed within guild_ready_timeout of a READY, that task later dispatches on
                # a closed client and logs "Task exception was never retrieved". Cancel it.
                state = getattr(client, "_connection", None)
                for pending in [
                    getattr(state, "_ready_task", None),
                    *(getattr(state, "_ready_tasks", None) or {}).values(),
                ]:
                    if pending is not None and not pending.done():
                        pending.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), timeout)
                if task is not None:
                    if not task.done():
                        task.cancel()
                    await asyncio.wait({task}, timeout=timeout)
                    if task.done() and not task.cancelled():
                        task.exception()  # retrieved: the test asserts what matters

    # --------------------------------------------------------------------- waiting / state
    def _notify(self, record: InteractionRecord | None = None) -> None:
        self._notifier.notify()
        if record is not None:
            record._notifier.notify()

    async def wait_until(self, predicate: Callable[[], T], timeout: float = 5) -> T:
        """Until ``predicate()`` is truthy (re-checked on every change and every 50 ms)."""
        return await self._notifier.wait_until(predicate, timeout, self._describe, poll=0.05)

    def _describe(self) -> str:
        return (
            f"sessions={self.sessions} identifies={len(self.identifies)} "
            f"resumes={len(self.resumes)} requests={len(self.requests)}"
        )

    @property
    def gateway_sessions(self) -> list[GatewaySession]:
        return [s for s in self._sessions.values() if not s.invalid]

    @property
    def sessions(self) -> int:
        return sum(1 for s in self._sessions.values() if s.ready and s.connected and not s.invalid)

    @property
    def intents(self) -> int | None:
        return self.identifies[-1].get("intents") if self.identifies else None

    async def wait_connected(self, timeout: float = 5, count: int = 1) -> None:
        await self.wait_until(lambda: self.sessions >= count, timeout)

    # ---------------------------------------------------------------------- fault injection
    def fail(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        json: Any = None,
        headers: dict[str, str | None] | None = None,
        times: int = 1,
        delay: float = 0.0,
        process: bool = False,
    ) -> Fault:
        fault = Fault(
            method=method.upper(),
            pattern=re.compile(path_regex),
            status=status,
            json=json,
            headers=dict(headers or {}),
            times=times,
            delay=delay,
            process=process,
        )
        self._faults.append(fault)
        return fault

    def delay(self, method: str, path_regex: str, seconds: float, times: int = 1) -> Fault:
        fault = Fault(
            method=method.upper(),
            pattern=re.compile(path_regex),
            status=None,
            json=None,
            headers={},
            times=times,
            delay=seconds,
        )
        self._delays.append(fault)
        return fault

    @staticmethod
    def _take(faults: list[Fault], method: str, path: str) -> Fault | None:
        for fault in faults:
            if fault.matches(method, path):
                fault.times -= 1
                fault.hits += 1
                return fault
        return None

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        method = method.upper()
        return [
            r
            for r in self.requests
            if (method == "*" or r.method == method) and pattern.search(r.path)
        ]

    # --------------------------------------------------------------------------------- REST
    def _build_routes(self) -> list[tuple[str, re.Pattern[str], _RouteHandler, bool]]:
        app = r"(?P<app>\d+)"
        gid = r"(?P<guild>\d+)"
        cmd = r"(?P<cmd>\d+)"
        wh = r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
        table: list[tuple[str, str, _RouteHandler, bool]] = [
            ("GET", r"/users/@me", self._r_me, True),
            ("GET", r"/oauth2/applications/@me", self._r_application, True),
            ("GET", r"/applications/@me", self._r_application, True),
            ("GET", r"/gateway", self._r_gateway, False),
            ("GET", r"/gateway/bot", self._r_gateway_bot, True),
            ("GET", rf"/applications/{app}/commands", self._r_list_commands, True),
            ("PUT", rf"/applications/{app}/commands", self._r_put_commands, True),
            ("POST", rf"/applications/{app}/commands", self._r_post_command, True),
            ("GET", rf"/applications/{app}/commands/{cmd}", self._r_get_command, True),
            ("PATCH", rf"/applications/{app}/commands/{cmd}", self._r_patch_command, True),
            ("DELETE", rf"/applications/{app}/commands/{cmd}", self._r_delete_command, True),
            ("GET", rf"/applications/{app}/guilds/{gid}/commands", self._r_list_commands, True),
            ("PUT", rf"/applications/{app}/guilds/{gid}/commands", self._r_put_commands, True),
            ("POST", rf"/applications/{app}/guilds/{gid}/commands", self._r_post_command, True),
            ("GET", rf"/applications/{app}/guilds/{gid}/commands/{cmd}", self._r_get_command, True),
            (
                "PATCH",
                rf"/applications/{app}/guilds/{gid}/commands/{cmd}",
                self._r_patch_command,
                True,
            ),
            (
                "DELETE",
                rf"/applications/{app}/guilds/{gid}/commands/{cmd}",
                self._r_delete_command,
                True,
            ),
            ("POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", self._r_cb, False),
            ("GET", rf"{wh}/messages/(?P<mid>@original|\d+)", self._r_wh_get, False),
            ("PATCH", rf"{wh}/messages/(?P<mid>@original|\d+)", self._r_wh_patch, False),
            ("DELETE", rf"{wh}/messages/(?P<mid>@original|\d+)", self._r_wh_delete, False),
            ("POST", wh, self._r_wh_post, False),
            ("GET", r"/channels/(?P<cid>\d+)", self._r_get_channel, True),
            ("POST", r"/channels/(?P<cid>\d+)/messages", self._r_ch_post, True),
            ("GET", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", self._r_ch_get, True),
            ("PATCH", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", self._r_ch_patch, True),
            ("DELETE", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", self._r_ch_delete, True),
            ("POST", r"/users/@me/channels", self._r_create_dm, True),
        ]
        return [(m, re.compile(f"^{p}$"), h, auth) for m, p, h, auth in table]

    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        match = _API_PATH.match(request.path)
        path = match["path"] if match else request.path
        body: Any = None
        files: list[UploadedFile] = []
        ctype = request.headers.get("Content-Type", "")
        try:
            if ctype.startswith("multipart/form-data"):
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        files.append(
                            UploadedFile(
                                name, value.filename, value.content_type, value.file.read()
                            )
                        )
                    elif name == "payload_json":
                        body = jsonlib.loads(str(value))
            elif request.can_read_body:
                raw = await request.read()
                if raw:
                    body = jsonlib.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
            rec = RecordedRequest(
                request.method, path, dict(request.query), None, dict(request.headers), at
            )
            self.requests.append(rec)
            rec.status = 400
            return _error(400, "400: Bad Request", 50109)
        rec = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            headers=dict(request.headers),
            at=at,
            files=files,
        )
        if self.record_requests:
            self.requests.append(rec)

        wait = self.rest_latency
        slow = self._take(self._delays, rec.method, path)
        if slow is not None:
            wait += slow.delay
        fault = self._take(self._faults, rec.method, path)
        if fault is not None:
            wait += fault.delay
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)
            if self._stopping.is_set():
                rec.status = 503
                return _error(503, "503: Service Unavailable", 0)

        if fault is not None and not fault.process:
            response: web.StreamResponse = fault.response()
        else:
            response = await self._route(rec)
            if fault is not None:
                response = fault.response()
        rec.status = response.status
        token = _TOKEN_PATH.match(path)
        self._notify(self._by_token.get(token["token"]) if token else None)
        return response

    async def _route(self, rec: RecordedRequest) -> web.StreamResponse:
        method_mismatch = False
        for method, pattern, handler, auth in self._routes:
            m = pattern.match(rec.path)
            if m is None:
                continue
            if method != rec.method:
                method_mismatch = True
                continue
            if auth and rec.headers.get("Authorization") != f"Bot {self.token}":
                return _error(401, "401: Unauthorized", 0)
            return await handler(rec, m)
        self.unknown_requests.append(rec)
        if method_mismatch:
            return _error(405, "405: Method Not Allowed", 0)
        return _error(404, "404: Not Found", 0)

    # ---- identity / gateway
    async def _r_me(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        return _json_response(self.bot_user)

    async def _r_application(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        return _json_response(self.application)

    async def _r_gateway(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        return _json_response({"url": self.gateway_url})

    async def _r_gateway_bot(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": max(0, 1000 - len(self.identifies)),
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    # ---- application commands
    def _command_scope(self, m: re.Match[str]) -> tuple[int | None, web.Response | None]:
        if int(m["app"]) != self.application_id:
            return None, _error(403, "Missing Access", 50001)
        guild = m.groupdict().get("guild")
        if guild is None:
            return None, None
        if int(guild) not in self.guilds:
            return None, _error(403, "Missing Access", 50001)
        return int(guild), None

    def _command_object(
        self, data: dict[str, Any], scope: int | None, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        cmd = dict(data)
        ctype = int(cmd.get("type", 1))
        cmd["type"] = ctype
        cmd["id"] = old["id"] if old else snowflake()
        cmd["application_id"] = str(self.application_id)
        cmd["version"] = snowflake()
        cmd.setdefault("description", "")
        cmd.setdefault("default_member_permissions", None)
        cmd.setdefault("nsfw", False)
        cmd.setdefault("name_localizations", None)
        cmd.setdefault("description_localizations", None)
        if scope is not None:
            cmd["guild_id"] = str(scope)
        else:
            cmd.setdefault("dm_permission", True)
            cmd.setdefault("contexts", None)
            cmd.setdefault("integration_types", [0])
        return cmd

    def _validate_commands(self, commands: list[dict[str, Any]]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        if not self.validate:
            return errors
        counts = {1: 0, 2: 0, 3: 0}
        seen: set[tuple[str, int]] = set()
        for i, cmd in enumerate(commands):
            ctype = int(cmd.get("type", 1))
            name = str(cmd.get("name", ""))
            counts[ctype] = counts.get(ctype, 0) + 1
            key = (name, ctype)
            if key in seen:
                _set_path(errors, f"{i}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", name)
            seen.add(key)
            if ctype == 1:
                self._validate_chat_names(errors, str(i), cmd)
                self._validate_options(errors, f"{i}.options", cmd.get("options") or [], 0)
            elif not 1 <= len(name) <= 32:
                _set_path(errors, f"{i}.name", "BASE_TYPE_BAD_LENGTH", "Must be 1-32 long.")
        for ctype, limit in ((1, 100), (2, 15), (3, 15)):
            if counts.get(ctype, 0) > limit:
                _set_path(
                    errors,
                    "_",
                    "APPLICATION_COMMANDS_TOO_MANY",
                    f"Maximum number of type {ctype} application commands reached ({limit}).",
                )
        return errors

    @staticmethod
    def _validate_chat_names(errors: dict[str, Any], path: str, obj: dict[str, Any]) -> None:
        name = str(obj.get("name", ""))
        if not _COMMAND_NAME.match(name) or name != name.lower():
            _set_path(
                errors, f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Invalid name {name!r}"
            )
        desc = obj.get("description")
        if desc is None or not 1 <= len(str(desc)) <= 100:
            _set_path(
                errors, f"{path}.description", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 in length."
            )

    def _validate_options(
        self, errors: dict[str, Any], path: str, options: list[dict[str, Any]], depth: int
    ) -> None:
        if len(options) > 25:
            _set_path(errors, path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        names: set[str] = set()
        optional_seen = False
        for i, opt in enumerate(options):
            p = f"{path}.{i}"
            self._validate_chat_names(errors, p, opt)
            if opt.get("name") in names:
                _set_path(errors, f"{p}.name", "DUPLICATE", "Option names must be unique.")
            names.add(str(opt.get("name")))
            otype = int(opt.get("type", 3))
            if otype in (1, 2):
                if depth >= 2 or (otype == 2 and depth >= 1):
                    _set_path(errors, p, "NESTING", "Subcommand nesting too deep.")
                self._validate_options(errors, f"{p}.options", opt.get("options") or [], depth + 1)
                continue
            if opt.get("required"):
                if optional_seen:
                    _set_path(
                        errors,
                        f"{p}.required",
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                optional_seen = True
            choices = opt.get("choices") or []
            if len(choices) > 25:
                _set_path(
                    errors, f"{p}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            if choices and opt.get("autocomplete"):
                _set_path(
                    errors, f"{p}.autocomplete", "INVALID", "Autocomplete cannot have choices."
                )

    async def _r_list_commands(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        scope, err = self._command_scope(m)
        if err is not None:
            return err
        return _json_response(self.commands.get(scope, []))

    async def _r_put_commands(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        scope, err = self._command_scope(m)
        if err is not None:
            return err
        if not isinstance(rec.json, list):
            return _form_error({"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Not a list"}]})
        errors = self._validate_commands(rec.json)
        if errors:
            return _form_error(errors)
        existing = {(c["name"], c["type"]): c for c in self.commands.get(scope, [])}
        result = [
            self._command_object(c, scope, existing.get((c.get("name"), int(c.get("type", 1)))))
            for c in rec.json
        ]
        self.commands[scope] = result
        self.command_puts += 1
        return _json_response(result)

    async def _r_post_command(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        scope, err = self._command_scope(m)
        if err is not None:
            return err
        if not isinstance(rec.json, dict):
            return _form_error({"_errors": [{"code": "BASE_TYPE_DICT", "message": "Not a dict"}]})
        current = list(self.commands.get(scope, []))
        key = (rec.json.get("name"), int(rec.json.get("type", 1)))
        old = next((c for c in current if (c["name"], c["type"]) == key), None)
        others = [c for c in current if c is not old]
        errors = self._validate_commands([*others, rec.json])
        if errors:
            return _form_error(errors)
        cmd = self._command_object(rec.json, scope, old)
        self.commands[scope] = [*others, cmd]
        return _json_response(cmd, 200 if old else 201)

    def _find_command_by_id(self, scope: int | None, cmd_id: str) -> dict[str, Any] | None:
        return next((c for c in self.commands.get(scope, []) if c["id"] == cmd_id), None)

    async def _r_get_command(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        scope, err = self._command_scope(m)
        if err is not None:
            return err
        cmd = self._find_command_by_id(scope, m["cmd"])
        return _json_response(cmd) if cmd else _error(404, "Unknown application command", 10063)

    async def _r_patch_command(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        scope, err = self._command_scope(m)
        if err is not None:
            return err
        cmd = self._find_command_by_id(scope, m["cmd"])
        if cmd is None:
            return _error(404, "Unknown application command", 10063)
        cmd.update(rec.json or {})
        cmd["version"] = snowflake()
        return _json_response(cmd)

    async def _r_delete_command(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        scope, err = self._command_scope(m)
        if err is not None:
            return err
        cmd = self._find_command_by_id(scope, m["cmd"])
        if cmd is None:
            return _error(404, "Unknown application command", 10063)
        self.commands[scope] = [c for c in self.commands.get(scope, []) if c is not cmd]
        return _no_content()

    # ---- messages (shared by interactions, webhooks, channels)
    def _validate_message(self, body: dict[str, Any], *, create: bool) -> web.Response | None:
        if not self.validate:
            return None
        errors: dict[str, Any] = {}
        content = body.get("content")
        if content is not None and len(str(content)) > 2000:
            _set_path(errors, "content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            _set_path(errors, "embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0

        def check(path: str, value: Any, limit: int) -> None:
            nonlocal total
            if value is None:
                return
            text = str(value)
            total += len(text)
            if len(text) > limit:
                _set_path(
                    errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )

        for i, embed in enumerate(embeds):
            check(f"embeds.{i}.title", embed.get("title"), 256)
            check(f"embeds.{i}.description", embed.get("description"), 4096)
            check(f"embeds.{i}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
            check(f"embeds.{i}.author.name", (embed.get("author") or {}).get("name"), 256)
            fields = embed.get("fields") or []
            if len(fields) > 25:
                _set_path(
                    errors,
                    f"embeds.{i}.fields",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 25 or fewer in length.",
                )
            for j, fld in enumerate(fields):
                for key, limit in (("name", 256), ("value", 1024)):
                    if not str(fld.get(key) or ""):
                        _set_path(
                            errors,
                            f"embeds.{i}.fields.{j}.{key}",
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        )
                    check(f"embeds.{i}.fields.{j}.{key}", fld.get(key), limit)
        if total > 6000:
            _set_path(
                errors,
                "embeds",
                "MAX_EMBED_SIZE_EXCEEDED",
                "Embed size exceeds maximum size of 6000",
            )
        components = body.get("components") or []
        flags = int(body.get("flags") or 0)
        if not flags & IS_COMPONENTS_V2:
            if len(components) > 5:
                _set_path(
                    errors, "components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
                )
            for i, row in enumerate(components):
                children = row.get("components") or []
                if len(children) > 5:
                    _set_path(
                        errors,
                        f"components.{i}.components",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 5 or fewer in length.",
                    )
        for path, comp in _walk_components(components):
            custom_id = comp.get("custom_id")
            if custom_id is not None and not 1 <= len(str(custom_id)) <= 100:
                _set_path(
                    errors, f"{path}.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 in length."
                )
            label = comp.get("label")
            if comp.get("type") == 2 and label is not None and len(str(label)) > 80:
                _set_path(
                    errors,
                    f"{path}.label",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 80 or fewer in length.",
                )
        if errors:
            return _form_error(errors)
        if create and not (
            content
            or embeds
            or components
            or body.get("attachments")
            or body.get("poll")
            or body.get("sticker_ids")
            or body.get("_files")
        ):
            return _error(400, "Cannot send an empty message", 50006)
        return None

    def _mentions(
        self, content: str, allowed: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], list[str], bool]:
        parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse", []))
        allowed_users = set() if allowed is None else {str(u) for u in allowed.get("users", [])}
        allowed_roles = set() if allowed is None else {str(r) for r in allowed.get("roles", [])}
        users: list[dict[str, Any]] = []
        seen: set[str] = set()
        for uid in _USER_MENTION.findall(content):
            if uid in seen or not ("users" in parse or uid in allowed_users):
                continue
            seen.add(uid)
            users.append(self.users.get(uid) or make_user(uid, "unknown"))
        roles: list[str] = []
        for rid in _ROLE_MENTION.findall(content):
            if rid not in roles and ("roles" in parse or rid in allowed_roles):
                roles.append(rid)
        everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
        return users, roles, everyone

    def _attachments(self, files: list[UploadedFile]) -> list[dict[str, Any]]:
        out = []
        for f in files:
            aid = snowflake()
            url = f"http://{self.host}:{self.port}/attachments/{aid}/{f.filename}"
            out.append(
                {
                    "id": aid,
                    "filename": f.filename,
                    "size": len(f.data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": f.content_type,
                }
            )
        return out

    def _new_message(
        self,
        body: dict[str, Any],
        *,
        channel_id: int | str,
        author: dict[str, Any],
        files: Iterable[UploadedFile] = (),
        flags_mask: int = ~0,
        msg_type: int = 0,
        webhook_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        content = str(body.get("content") or "")
        mentions, roles, everyone = self._mentions(content, body.get("allowed_mentions"))
        components = [dict(c) for c in body.get("components") or []]
        _number_components(components)
        msg: dict[str, Any] = {
            "id": snowflake(),
            "type": msg_type,
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": roles,
            "mention_channels": [],
            "attachments": self._attachments(list(files)),
            "embeds": [_normalise_embed(e) for e in body.get("embeds") or []],
            "reactions": [],
            "pinned": False,
            "flags": int(body.get("flags") or 0) & flags_mask,
            "components": components,
        }
        if body.get("poll"):
            msg["poll"] = body["poll"]
        if webhook_id is not None:
            msg["webhook_id"] = str(webhook_id)
            msg["application_id"] = str(self.application_id)
        if extra:
            msg.update(extra)
        self.messages[msg["id"]] = msg
        return msg

    def _apply_edit(
        self, msg: dict[str, Any], body: dict[str, Any], files: list[UploadedFile]
    ) -> dict[str, Any]:
        was_loading = int(msg.get("flags", 0)) & LOADING
        if "content" in body:
            msg["content"] = str(body["content"] or "")
        if "content" in body or "allowed_mentions" in body:
            mentions, roles, everyone = self._mentions(msg["content"], body.get("allowed_mentions"))
            msg.update(mentions=mentions, mention_roles=roles, mention_everyone=everyone)
        if "embeds" in body:
            msg["embeds"] = [_normalise_embed(e) for e in body["embeds"] or []]
        if "components" in body:
            comps = [dict(c) for c in body["components"] or []]
            _number_components(comps)
            msg["components"] = comps
        if "attachments" in body or files:
            keep = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in msg.get("attachments", []) if a["id"] in keep]
            msg["attachments"] = kept + self._attachments(files)
        if "poll" in body:
            msg["poll"] = body["poll"]
        flags = int(msg.get("flags", 0)) & ~LOADING
        if body.get("flags") is not None:
            new = int(body["flags"])
            flags = (flags & ~SUPPRESS_EMBEDS) | (new & SUPPRESS_EMBEDS)
            flags |= new & IS_COMPONENTS_V2
        msg["flags"] = flags
        if not was_loading:
            msg["edited_timestamp"] = _now_iso()
        else:
            msg["timestamp"] = _now_iso()
        return msg

    # ---- interactions
    def _record_for(self, token: str, app: str | None = None) -> InteractionRecord | None:
        record = self._by_token.get(token)
        if record is None or (app is not None and int(app) != self.application_id):
            return None
        return record

    def _interaction_message_type(self, record: InteractionRecord) -> int:
        if record.type == 2:
            return 20 if int(record.payload["data"].get("type", 1)) == 1 else 23
        return 0

    def _interaction_metadata(self, record: InteractionRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "id": record.id,
            "type": record.type,
            "user": record.invoking_user,
            "authorizing_integration_owners": record.payload.get(
                "authorizing_integration_owners", {}
            ),
        }
        data = record.payload.get("data") or {}
        if record.type == 2:
            meta["name"] = data.get("name")
            meta["command_type"] = data.get("type", 1)
        if record.message_id:
            meta["interacted_message_id"] = record.message_id
        return meta

    def _interaction_message(
        self, record: InteractionRecord, body: dict[str, Any], files: list[UploadedFile]
    ) -> dict[str, Any]:
        return self._new_message(
            body,
            channel_id=record.payload.get("channel_id") or self.dm_channel_id,
            author=self.bot_user,
            files=files,
            flags_mask=EPHEMERAL | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2,
            msg_type=self._interaction_message_type(record),
            webhook_id=self.application_id,
            extra={"interaction_metadata": self._interaction_metadata(record)},
        )

    def _reject(
        self, record: InteractionRecord, rec: RecordedRequest, response: web.Response, reason: str
    ) -> web.Response:
        body = jsonlib.loads(response.body) if isinstance(response.body, bytes) else {}
        record.rejected_callbacks.append(
            Rejected(rec.json, rec.at, response.status, int(body.get("code", 0)), reason)
        )
        return response

    async def _r_cb(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        record = self._record_for(m["token"])
        if record is None or record.id != m["iid"]:
            return _error(404, "Unknown interaction", 10062)
        if record.callbacks:
            resp = _error(400, "Interaction has already been acknowledged.", 40060)
            return self._reject(record, rec, resp, "already acknowledged")
        if (
            self.callback_deadline is not None
            and rec.at - record.dispatched_at > self.callback_deadline
        ):
            resp = _error(404, "Unknown interaction", 10062)
            return self._reject(record, rec, resp, "too late (3 s rule)")
        body = rec.json if isinstance(rec.json, dict) else {}
        ctype = int(body.get("type") or 0)
        data = body.get("data") or {}
        allowed = {2: {4, 5, 9, 10, 12}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}
        if ctype not in allowed.get(record.type, set()):
            errors: dict[str, Any] = {}
            _set_path(
                errors,
                "type",
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Callback type {ctype} is invalid for interaction type {record.type}",
            )
            return self._reject(record, rec, _form_error(errors), "invalid callback type")
        if ctype in (4, 7):
            check = dict(data)
            if rec.files:
                check["_files"] = True
            invalid = self._validate_message(check, create=ctype == 4)
            if invalid is not None:
                return self._reject(record, rec, invalid, "invalid message")
        if ctype == 8 and self.validate:
            choices = data.get("choices") or []
            errors = {}
            if len(choices) > 25:
                _set_path(
                    errors, "data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            for i, ch in enumerate(choices):
                if not 1 <= len(str(ch.get("name", ""))) <= 100:
                    _set_path(
                        errors,
                        f"data.choices.{i}.name",
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )
                value = ch.get("value")
                if isinstance(value, str) and len(value) > 100:
                    _set_path(
                        errors,
                        f"data.choices.{i}.value",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 100 or fewer in length.",
                    )
            if errors:
                return self._reject(record, rec, _form_error(errors), "invalid choices")

        record.callbacks.append(Callback(body, rec.at, rec.files))
        record.first_response_at = rec.at
        message: dict[str, Any] | None = None
        ephemeral = False
        if ctype == 4:
            message = self._interaction_message(record, data, rec.files)
            record.original = message
        elif ctype == 5:
            flags = int(data.get("flags") or 0) & EPHEMERAL
            message = self._interaction_message(record, {"flags": flags}, [])
            message["flags"] = flags | LOADING
            record.original = message
        elif ctype in (6, 7) and record.message_id is not None:
            target = self.messages.get(record.message_id)
            if target is not None:
                if ctype == 7:
                    self._apply_edit(target, data, rec.files)
                    message = target
                record.original = target
        if message is not None:
            ephemeral = bool(int(message.get("flags", 0)) & EPHEMERAL)
        self._notify(record)
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return _no_content()
        answer: dict[str, Any] = {
            "interaction": {
                "id": record.id,
                "type": record.type,
                "response_message_loading": ctype == 5,
                "response_message_ephemeral": ephemeral,
            }
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": ctype, "message": message}
        elif ctype == 6:
            answer["resource"] = {"type": ctype}
        elif ctype == 12:
            activity = secrets.token_hex(8)
            answer["interaction"]["activity_instance_id"] = activity
            answer["resource"] = {"type": ctype, "activity_instance": {"id": activity}}
        return _json_response(answer)

    def _webhook_target(
        self, record: InteractionRecord, mid: str
    ) -> tuple[dict[str, Any] | None, bool]:
        if mid == "@original":
            if record.original is None or record.original_deleted:
                return None, True
            return record.original, True
        is_original = record.original is not None and record.original["id"] == mid
        own = is_original or any(m["id"] == mid for m in record.followups)
        msg = self.messages.get(mid)
        if msg is None or not own or mid in self.deleted_messages:
            return None, is_original  # Discord: only this interaction's messages
        return msg, is_original

    async def _r_wh_get(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        record = self._record_for(m["token"], m["app"])
        if record is None:
            return _error(404, "Unknown Webhook", 10015)
        msg, _ = self._webhook_target(record, m["mid"])
        return _json_response(msg) if msg else _error(404, "Unknown Message", 10008)

    async def _r_wh_patch(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        record = self._record_for(m["token"], m["app"])
        if record is None:
            return _error(404, "Unknown Webhook", 10015)
        msg, is_original = self._webhook_target(record, m["mid"])
        if msg is None:
            return _error(404, "Unknown Message", 10008)
        body = rec.json if isinstance(rec.json, dict) else {}
        invalid = self._validate_message(body, create=False)
        if invalid is not None:
            return invalid
        self._apply_edit(msg, body, rec.files)
        record.edits.append(Edit(msg["id"], body, rec.at, is_original))
        self._notify(record)
        return _json_response(msg)

    async def _r_wh_delete(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        record = self._record_for(m["token"], m["app"])
        if record is None:
            return _error(404, "Unknown Webhook", 10015)
        msg, is_original = self._webhook_target(record, m["mid"])
        if msg is None:
            return _error(404, "Unknown Message", 10008)
        if is_original:
            record.original_deleted = True
        record.deleted.append(msg["id"])
        self.deleted_messages.append(msg["id"])
        self.messages.pop(msg["id"], None)
        self._notify(record)
        return _no_content()

    async def _r_wh_post(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        record = self._record_for(m["token"], m["app"])
        if record is None or not record.callbacks:
            return _error(404, "Unknown Webhook", 10015)
        body = dict(rec.json) if isinstance(rec.json, dict) else {}
        check = dict(body)
        if rec.files:
            check["_files"] = True
        invalid = self._validate_message(check, create=True)
        if invalid is not None:
            return invalid
        original = record.original
        if (
            original is not None
            and not record.original_deleted
            and int(original.get("flags", 0)) & LOADING
        ):
            # The first follow-up after a defer replaces the "thinking…" placeholder and keeps
            # the defer's visibility: its own ephemeral flag is ignored.
            body["flags"] = int(body.get("flags") or 0) & ~EPHEMERAL
            message = self._apply_edit(original, body, rec.files)
        else:
            message = self._interaction_message(record, body, rec.files)
        record.followups.append(message)
        self._notify(record)
        if rec.query.get("wait") in ("1", "true", "True"):
            return _json_response(message)
        return _no_content()

    # ---- channels
    def _channel_exists(self, cid: str) -> bool:
        return int(cid) in self.channel_ids.values() or int(cid) == self.dm_channel_id

    async def _r_get_channel(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        for gid, cid in self.channel_ids.items():
            if cid == int(m["cid"]):
                return _json_response(self._channel_payload(gid))
        if int(m["cid"]) == self.dm_channel_id:
            return _json_response(self._dm_channel_payload(self.default_user))
        return _error(404, "Unknown Channel", 10003)

    async def _r_ch_post(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        if not self._channel_exists(m["cid"]):
            return _error(404, "Unknown Channel", 10003)
        body = rec.json if isinstance(rec.json, dict) else {}
        check = dict(body)
        if rec.files:
            check["_files"] = True
        invalid = self._validate_message(check, create=True)
        if invalid is not None:
            return invalid
        msg = self._new_message(
            body,
            channel_id=m["cid"],
            author=self.bot_user,
            files=rec.files,
            flags_mask=SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2,
        )
        return _json_response(msg)

    def _channel_message(self, m: re.Match[str]) -> dict[str, Any] | None:
        msg = self.messages.get(m["mid"])
        if msg is None or msg["channel_id"] != m["cid"]:
            return None
        return msg

    async def _r_ch_get(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        msg = self._channel_message(m)
        return _json_response(msg) if msg else _error(404, "Unknown Message", 10008)

    async def _r_ch_patch(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        msg = self._channel_message(m)
        if msg is None:
            return _error(404, "Unknown Message", 10008)
        body = rec.json if isinstance(rec.json, dict) else {}
        invalid = self._validate_message(body, create=False)
        if invalid is not None:
            return invalid
        return _json_response(self._apply_edit(msg, body, rec.files))

    async def _r_ch_delete(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        msg = self._channel_message(m)
        if msg is None:
            return _error(404, "Unknown Message", 10008)
        self.messages.pop(msg["id"], None)
        self.deleted_messages.append(msg["id"])
        return _no_content()

    async def _r_create_dm(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        rid = str((rec.json or {}).get("recipient_id", ""))
        user = self.users.get(rid) or make_user(rid or None, "unknown")
        return _json_response(self._dm_channel_payload(user))

    # ------------------------------------------------------------------------------ gateway
    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(timeout=1.0, max_msg_size=0, autoping=True, compress=False)
        if not ws.can_prepare(request).ok:
            return _error(404, "404: Not Found", 0)
        transport = request.transport
        await ws.prepare(request)
        query = dict(request.query)
        compressor = None
        if self.compress and query.get("compress") == "zlib-stream":
            compressor = zlib.compressobj()
        conn = _Conn(
            ws=ws, transport=transport, path=request.path, query=query, compressor=compressor
        )
        self._conns.add(conn)
        self.gateway_connects.append({"path": request.path, "query": query, "at": time.monotonic()})
        try:
            await self._send_op(conn, 10, {"heartbeat_interval": self.heartbeat_interval})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT and msg.type is not WSMsgType.BINARY:
                    break
                try:
                    frame = jsonlib.loads(msg.data)
                except ValueError:
                    await self._close_conn(conn, 4002, b"Error while decoding payload.")
                    break
                self.gateway_received.append(frame)
                await self._on_frame(conn, frame)
                if not conn.open:
                    break
        except ConnectionError:
            pass
        finally:
            conn.open = False
            self._conns.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                if not conn.closed_by_server and ws.close_code in (1000, 1001):
                    session.invalid = True
            self._notify()
        return ws

    async def _on_frame(self, conn: _Conn, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data = frame.get("d")
        if op == 1:
            self.heartbeats += 1
            await self._send_op(conn, 11, None)
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif op == 8:
            await self._request_members(conn, data or {})
        elif op in (3, 4):
            pass  # presence / voice state: recorded in gateway_received
        elif conn.session is None:
            await self._close_conn(conn, 4003, b"Not authenticated.")
        else:
            await self._close_conn(conn, 4001, b"Unknown opcode.")

    async def _identify(self, conn: _Conn, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        self._notify()
        if data.get("token") != self.token:
            await self._close_conn(conn, 4004, b"Authentication failed.")
            return
        if conn.session is not None:
            await self._close_conn(conn, 4005, b"Already authenticated.")
            return
        intents = int(data.get("intents") or 0)
        if intents & ALL_PRIVILEGED & ~self.privileged_intents:
            await self._close_conn(conn, 4014, b"Disallowed intent(s).")
            return
        raw_shard = data.get("shard")
        shard = (int(raw_shard[0]), int(raw_shard[1])) if raw_shard else (0, 1)
        if not 0 <= shard[0] < shard[1]:
            await self._close_conn(conn, 4010, b"Invalid shard.")
            return
        guilds = [g for g in self.guild_ids if (g >> 22) % shard[1] == shard[0]]
        if self.max_guilds_per_shard is not None and len(guilds) > self.max_guilds_per_shard:
            await self._close_conn(conn, 4011, b"Sharding required.")
            return
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            identify=data,
            shard=shard,
            intents=intents,
            buffer=deque(maxlen=self.buffer_size),
        )
        self._sessions[session.session_id] = session
        session.conn = conn
        conn.session = session
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot_user,
            "user_settings": {},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application["flags"]},
            "auth": {},
            "_trace": ['["fake-discord-gateway",{"micros":0}]'],
        }
        if raw_shard:
            ready["shard"] = [shard[0], shard[1]]
        async with session.lock:
            await self._dispatch_locked(session, "READY", ready)
        session.ready = True
        self._notify()
        for gid in guilds:
            if session.invalid:  # a disconnected session still buffers them for RESUME
                break
            async with session.lock:
                await self._dispatch_locked(session, "GUILD_CREATE", self.guilds[gid])
        self._notify()

    async def _resume(self, conn: _Conn, data: dict[str, Any]) -> None:
        self.resumes.append(data)
        if data.get("token") != self.token:
            await self._close_conn(conn, 4004, b"Authentication failed.")
            return
        session = self._sessions.get(str(data.get("session_id")))
        seq = int(data.get("seq") or 0)
        if (
            session is None
            or session.invalid
            or (session.buffer and seq < session.buffer[0][0] - 1)
            or seq > session.seq
        ):
            await self._send_op(conn, 9, False)
            self._notify()
            return
        async with session.lock:
            old = session.conn
            if old is not None and old is not conn:
                old.session = None
                old.closed_by_server = True
                if old.transport is not None:
                    old.transport.abort()
            session.conn = conn
            conn.session = session
            for s, frame in list(session.buffer):
                if s > seq:
                    await self._send_raw(conn, frame)
            await self._dispatch_locked(session, "RESUMED", {"_trace": ["fake-discord-gateway"]})
        self._notify()

    async def _request_members(self, conn: _Conn, data: dict[str, Any]) -> None:
        session = conn.session
        if session is None:
            await self._close_conn(conn, 4003, b"Not authenticated.")
            return
        ids = data.get("guild_id")
        for gid in ids if isinstance(ids, list) else [ids]:
            guild = self.guilds.get(int(gid)) if gid is not None else None
            chunk: dict[str, Any] = {
                "guild_id": str(gid),
                "members": list(guild["members"]) if guild else [],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            async with session.lock:
                await self._dispatch_locked(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send_raw(self, conn: _Conn, text: str) -> None:
        if not conn.open:
            return
        try:
            async with conn.lock:
                if conn.compressor is not None:
                    payload = conn.compressor.compress(text.encode())
                    payload += conn.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await conn.ws.send_bytes(payload)
                else:
                    await conn.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            conn.open = False

    async def _send_op(self, conn: _Conn, op: int, data: Any) -> None:
        await self._send_raw(conn, jsonlib.dumps({"op": op, "d": data, "s": None, "t": None}))

    async def _dispatch_locked(self, session: GatewaySession, event: str, data: Any) -> None:
        session.seq += 1
        frame = jsonlib.dumps({"op": 0, "t": event, "s": session.seq, "d": data})
        session.buffer.append((session.seq, frame))
        conn = session.conn
        if conn is not None and conn.open:
            await self._send_raw(conn, frame)

    def _target_sessions(self, guild_id: int | None) -> list[GatewaySession]:
        live = [s for s in self._sessions.values() if s.ready and not s.invalid]
        # A connected session first, newest first: a bot that restarted left its old session
        # resumable (as Discord does) but nobody will resume it.
        live = [s for s in live if s.connected] + [s for s in reversed(live) if not s.connected]
        if guild_id is None:
            return live
        return [s for s in live if (guild_id >> 22) % s.shard[1] == s.shard[0]]

    async def dispatch(self, event: str, data: Any, *, guild_id: int | str | None = None) -> int:
        """Send a DISPATCH to every READY session (of the guild's shard); returns how many."""
        targets = self._target_sessions(int(guild_id) if guild_id is not None else None)
        for session in targets:
            async with session.lock:
                await self._dispatch_locked(session, event, data)
        return len(targets)

    async def _close_conn(self, conn: _Conn, code: int, message: bytes = b"") -> None:
        conn.closed_by_server = True
        conn.open = False
        session = conn.session
        if session is not None and session.conn is conn:
            session.conn = None
            # discord.py does not reconnect on these; Discord ends the session on 4007/4009.
            if code in (1000, 1001, 4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014):
                session.invalid = True
        self._notify()
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=message), 1.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if conn in self._conns and conn.transport is not None and not conn.ws.closed:
                conn.transport.abort()

    def _conns_for(self, shard_id: int | None) -> list[_Conn]:
        return [
            c
            for c in list(self._conns)
            if shard_id is None or (c.session is not None and c.session.shard[0] == shard_id)
        ]

    async def close_gateway(
        self, code: int = 4000, reason: str = "", *, shard_id: int | None = None
    ) -> None:
        """Close gateway connections from the server side with ``code``."""
        conns = self._conns_for(shard_id)
        await asyncio.gather(
            *(self._close_conn(c, code, reason.encode()) for c in conns), return_exceptions=True
        )

    def drop_gateway(self, *, shard_id: int | None = None) -> None:
        """Abort gateway TCP connections without a close frame (the client sees 1006)."""
        for conn in self._conns_for(shard_id):
            conn.closed_by_server = True
            conn.open = False
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
            if conn.transport is not None:
                conn.transport.abort()
        self._notify()

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 to every connected session; non-resumable sessions are forgotten."""
        for session in list(self._sessions.values()):
            if session.conn is None or session.invalid:
                continue
            if not resumable:
                session.invalid = True
            await self._send_op(session.conn, 9, resumable)
        self._notify()

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every connected session (discord.py then RESUMEs)."""
        for session in list(self._sessions.values()):
            if session.conn is not None and not session.invalid:
                await self._send_op(session.conn, 7, None)

    # ------------------------------------------------------------------------- interactions
    async def interact(self, payload: dict[str, Any]) -> InteractionRecord:
        """Dispatch INTERACTION_CREATE for ``payload`` and return its :class:`InteractionRecord`."""
        payload.setdefault("id", snowflake())
        payload.setdefault("token", _interaction_token())
        guild_id = payload.get("guild_id")
        sessions = self._target_sessions(int(guild_id) if guild_id else None)
        if not guild_id:
            sessions = [s for s in sessions if s.shard[0] == 0] or sessions
        if not sessions:
            raise RuntimeError("no READY gateway session: is the bot connected?")
        record = InteractionRecord(
            id=str(payload["id"]),
            token=str(payload["token"]),
            type=int(payload["type"]),
            payload=payload,
            dispatched_at=time.monotonic(),
        )
        if payload.get("message"):
            record.message_id = str(payload["message"]["id"])
        self.interactions.append(record)
        self._by_token[record.token] = record
        session = sessions[0]
        async with session.lock:
            await self._dispatch_locked(session, "INTERACTION_CREATE", payload)
        return record

    # ---------------------------------------------------------------------------- builders
    def _guild_of_channel(self, channel_id: Any) -> Any:
        if channel_id is None:
            return _FIRST
        for gid, cid in self.channel_ids.items():
            if cid == int(channel_id):
                return gid
        return None if int(channel_id) == self.dm_channel_id else _FIRST

    def _default_guild(self, guild_id: Any) -> int | None:
        if guild_id is _FIRST:
            return self.guild_ids[0] if self.guild_ids else None
        return int(guild_id) if guild_id is not None else None

    def _guild_payload(self, gid: int, cid: int, index: int) -> dict[str, Any]:
        joined = _now_iso()
        return {
            "id": str(gid),
            "name": f"Guild {index}",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.owner["id"],
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(cid),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "features": [],
            "roles": [self._everyone_role(gid)],
            "emojis": [],
            "stickers": [],
            "soundboard_sounds": [],
            "unavailable": False,
            "lazy": True,
            "large": False,
            "member_count": 2,
            "joined_at": joined,
            "channels": [self._channel_payload(gid, cid, with_permissions=False)],
            "threads": [],
            "members": [
                {
                    "user": self.bot_user,
                    "roles": [],
                    "joined_at": joined,
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                    "pending": False,
                    "nick": None,
                    "avatar": None,
                    "banner": None,
                    "premium_since": None,
                    "communication_disabled_until": None,
                }
            ],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "embedded_activities": [],
            "incidents_data": None,
        }

    @staticmethod
    def _everyone_role(gid: int) -> dict[str, Any]:
        return {
            "id": str(gid),
            "name": "@everyone",
            "description": None,
            "permissions": "2248473465835073",
            "position": 0,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }

    def _channel_payload(
        self, gid: int, cid: int | None = None, *, with_permissions: bool = True
    ) -> dict[str, Any]:
        channel: dict[str, Any] = {
            "id": str(cid or self.channel_ids[gid]),
            "type": 0,
            "guild_id": str(gid),
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        if with_permissions:
            channel["permissions"] = ALL_PERMISSIONS
        return channel

    def _dm_channel_payload(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(self.dm_channel_id),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [user],
        }

    def _member_payload(self, user: dict[str, Any] | None = None) -> dict[str, Any]:
        member: dict[str, Any] = {
            "roles": [],
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "nick": None,
            "avatar": None,
            "banner": None,
            "flags": 0,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
            "permissions": ALL_PERMISSIONS,
        }
        if user is not None:
            member["user"] = user
        return member

    def _remember(self, user: dict[str, Any]) -> dict[str, Any]:
        self.users[user["id"]] = user
        return user

    def _base_payload(
        self,
        itype: int,
        data: dict[str, Any] | None,
        *,
        user: dict[str, Any] | None,
        guild_id: int | None,
        locale: str = "en-US",
        context: int | None = None,
        channel_id: int | str | None = None,
    ) -> dict[str, Any]:
        invoker = self._remember(user or self.default_user)
        payload: dict[str, Any] = {
            "id": snowflake(),
            "application_id": str(self.application_id),
            "type": itype,
            "token": _interaction_token(),
            "version": 1,
            "app_permissions": ALL_PERMISSIONS,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if data is not None:
            payload["data"] = data
        if guild_id is not None:
            if guild_id not in self.guilds:
                raise ValueError(f"unknown guild {guild_id}")
            channel = self._channel_payload(guild_id)
            if channel_id is not None:
                channel["id"] = str(channel_id)
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                channel=channel,
                channel_id=channel["id"],
                member=self._member_payload(invoker),
                authorizing_integration_owners={"0": str(guild_id)},
                context=0 if context is None else context,
            )
        else:
            channel = self._dm_channel_payload(invoker)
            if channel_id is not None:
                channel["id"] = str(channel_id)
            ctx = 1 if context is None else context
            payload.update(
                channel=channel,
                channel_id=channel["id"],
                user=invoker,
                authorizing_integration_owners={"0": "0"} if ctx == 1 else {"1": invoker["id"]},
                context=ctx,
            )
        return payload

    def _lookup_command(self, name: str, ctype: int, guild_id: int | None) -> dict[str, Any] | None:
        scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for cmd in self.commands.get(scope, []):
                if cmd["name"] == name and cmd["type"] == ctype:
                    return cmd
        if self.strict_commands:
            raise LookupError(f"command {name!r} (type {ctype}) is not registered")
        return None

    def _command_data(
        self, name: str, ctype: int, guild_id: int | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        cmd = self._lookup_command(name, ctype, guild_id)
        data: dict[str, Any] = {
            "id": cmd["id"] if cmd else snowflake(),
            "name": name,
            "type": ctype,
        }
        if cmd is not None and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return data, cmd

    def _options(
        self,
        options: dict[str, Any] | list[dict[str, Any]] | None,
        schema: list[dict[str, Any]],
        guild_id: int | None,
        resolved: dict[str, dict[str, Any]],
        focused: str | None = None,
    ) -> list[dict[str, Any]]:
        if options is None:
            return []
        if isinstance(options, list):
            return [dict(o) for o in options]
        out = []
        for name, value in options.items():
            spec = next((o for o in schema if o.get("name") == name), None)
            otype = int(spec["type"]) if spec else _infer_type(value)
            if name == focused:
                # Discord sends what the user has typed so far, unvalidated: keep it raw.
                out.append({"name": name, "type": otype, "value": value, "focused": True})
                continue
            out.append(
                {
                    "name": name,
                    "type": otype,
                    "value": self._resolve(otype, value, guild_id, resolved),
                }
            )
        return out

    def _resolve(
        self, otype: int, value: Any, guild_id: int | None, resolved: dict[str, dict[str, Any]]
    ) -> Any:
        if otype == 3:
            return str(value)
        if otype == 4:
            return int(value)
        if otype == 5:
            return bool(value)
        if otype == 10:
            return float(value)
        if otype == 6 or (otype == 9 and (not isinstance(value, dict) or "username" in value)):
            user = value if isinstance(value, dict) else (self.users.get(value) or make_user(value))
            self._remember(user)
            resolved.setdefault("users", {})[user["id"]] = user
            if guild_id is not None:
                resolved.setdefault("members", {})[user["id"]] = self._member_payload()
            return user["id"]
        if otype in (8, 9):
            role = value if isinstance(value, dict) else None
            if role is None:
                role = {**self._everyone_role(guild_id or 0), "id": str(value), "name": "role"}
            resolved.setdefault("roles", {})[role["id"]] = role
            return role["id"]
        if otype == 7:
            if isinstance(value, dict):
                channel = {**value}
            else:
                gid = guild_id if guild_id is not None else self.guild_ids[0]
                channel = self._channel_payload(gid)
                channel["id"] = str(value)
            channel.setdefault("permissions", ALL_PERMISSIONS)
            resolved.setdefault("channels", {})[channel["id"]] = channel
            return channel["id"]
        if otype == 11:
            attachment = dict(value)
            attachment.setdefault("id", snowflake())
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return attachment["id"]
        return value

    def _chat_input_data(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None,
        guild_id: int | None,
        subcommand: str | None,
        focused: str | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        data, cmd = self._command_data(name, 1, guild_id)
        schema: list[dict[str, Any]] = (cmd or {}).get("options") or []
        path = subcommand.split() if subcommand else []
        for part in path:
            spec = next((o for o in schema if o.get("name") == part), None)
            schema = (spec or {}).get("options") or []
        resolved: dict[str, dict[str, Any]] = {}
        leaf = self._options(options, schema, guild_id, resolved, focused)
        opts = leaf
        for depth, part in reversed(list(enumerate(path))):
            kind = 2 if depth < len(path) - 1 else 1
            opts = [{"name": part, "type": kind, "options": opts}]
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        return data, leaf

    def slash(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        user: dict[str, Any] | None = None,
        guild_id: Any = _FIRST,
        subcommand: str | None = None,
        locale: str = "en-US",
        context: int | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE payload of a chat-input command (type 2, data.type 1)."""
        gid = self._default_guild(guild_id)
        data, _ = self._chat_input_data(name, options, gid, subcommand)
        return self._base_payload(2, data, user=user, guild_id=gid, locale=locale, context=context)

    def autocomplete(
        self,
        name: str,
        focused: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        user: dict[str, Any] | None = None,
        guild_id: Any = _FIRST,
        subcommand: str | None = None,
        locale: str = "en-US",
        context: int | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE payload of an autocomplete request (type 4) for ``focused``."""
        gid = self._default_guild(guild_id)
        opts: dict[str, Any] | list[dict[str, Any]]
        if options is None or isinstance(options, dict):
            opts = dict(options or {})
            opts.setdefault(focused, "")
        else:
            opts = options
        data, leaf = self._chat_input_data(name, opts, gid, subcommand, focused)
        for opt in leaf:  # explicit option lists: mark the focused one
            if opt["name"] == focused:
                opt["focused"] = True
            else:
                opt.pop("focused", None)
        if not any(o.get("focused") for o in leaf):
            raise ValueError(f"focused option {focused!r} is not among the options")
        return self._base_payload(4, data, user=user, guild_id=gid, locale=locale, context=context)

    def component(
        self,
        custom_id: str,
        message: dict[str, Any],
        *,
        user: dict[str, Any] | None = None,
        component_type: int = 2,
        values: list[str] | None = None,
        guild_id: Any = _FIRST,
        strict: bool = True,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE payload of a component press (type 3) on ``message``."""
        if strict and not any(
            c.get("custom_id") == custom_id for _, c in _walk_components(message.get("components"))
        ):
            raise ValueError(f"custom_id {custom_id!r} is not on message {message.get('id')}")
        if guild_id is _FIRST:
            guild_id = self._guild_of_channel(message.get("channel_id"))
        gid = self._default_guild(guild_id)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if component_type != 2:
            data["values"] = list(values or [])
        payload = self._base_payload(
            3, data, user=user, guild_id=gid, channel_id=message.get("channel_id")
        )
        payload["message"] = message
        return payload

    def modal_submit(
        self,
        custom_id: str,
        values: dict[str, str],
        *,
        message: dict[str, Any] | None = None,
        user: dict[str, Any] | None = None,
        guild_id: Any = _FIRST,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE payload of a modal submission (type 5) with text inputs."""
        gid = self._default_guild(guild_id)
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v, "id": i + 2}]}
            for i, (k, v) in enumerate(values.items())
        ]
        payload = self._base_payload(
            5, {"custom_id": custom_id, "components": rows}, user=user, guild_id=gid
        )
        if message is not None:
            payload["message"] = message
        return payload

    def user_command(
        self,
        name: str,
        target_user: dict[str, Any],
        *,
        user: dict[str, Any] | None = None,
        guild_id: Any = _FIRST,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE payload of a user context-menu command (data.type 2)."""
        gid = self._default_guild(guild_id)
        self._remember(target_user)
        data, _ = self._command_data(name, 2, gid)
        resolved: dict[str, Any] = {"users": {target_user["id"]: target_user}}
        if gid is not None:
            resolved["members"] = {target_user["id"]: self._member_payload()}
        data.update(target_id=target_user["id"], resolved=resolved)
        return self._base_payload(2, data, user=user, guild_id=gid)

    def message_command(
        self,
        name: str,
        target_message: dict[str, Any],
        *,
        user: dict[str, Any] | None = None,
        guild_id: Any = _FIRST,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE payload of a message context-menu command (data.type 3)."""
        gid = self._default_guild(guild_id)
        data, _ = self._command_data(name, 3, gid)
        data.update(
            target_id=target_message["id"],
            resolved={"messages": {target_message["id"]: target_message}},
        )
        return self._base_payload(2, data, user=user, guild_id=gid)

    def user_message(
        self,
        content: str,
        *,
        author: dict[str, Any] | None = None,
        guild_id: Any = _FIRST,
        channel_id: int | str | None = None,
    ) -> dict[str, Any]:
        """A message "sent by a user" (stored in ``messages``), e.g. a message-command target."""
        gid = self._default_guild(guild_id)
        author = self._remember(author or self.default_user)
        if channel_id is None:
            channel_id = self.channel_ids[gid] if gid is not None else self.dm_channel_id
        return self._new_message(
            {"content": content}, channel_id=channel_id, author=author, msg_type=0
        )


# --------------------------------------------------------------------------------------------
# module helpers used above
# --------------------------------------------------------------------------------------------


def _interaction_token() -> str:
    return secrets.token_urlsafe(53)[:70]


def _infer_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, dict):
        if "username" in value:
            return 6
        if "filename" in value:
            return 11
        if "permissions" in value and "type" not in value:
            return 8
        if "type" in value:
            return 7
    return 3


def _walk_components(
    components: list[dict[str, Any]] | None, prefix: str = "components"
) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, comp in enumerate(components or []):
        path = f"{prefix}.{i}"
        yield path, comp
        yield from _walk_components(comp.get("components"), f"{path}.components")
        accessory = comp.get("accessory")
        if isinstance(accessory, dict):
            yield f"{path}.accessory", accessory
        inner = comp.get("component")
        if isinstance(inner, dict):
            yield f"{path}.component", inner


def _number_components(components: list[dict[str, Any]]) -> None:
    counter = itertools.count(1)
    for _, comp in _walk_components(components):
        if "components" in comp:
            comp["components"] = [dict(c) for c in comp["components"]]
        if isinstance(comp.get("accessory"), dict):
            comp["accessory"] = dict(comp["accessory"])
        if isinstance(comp.get("component"), dict):
            comp["component"] = dict(comp["component"])
    for _, comp in _walk_components(components):
        if "id" not in comp:
            comp["id"] = next(counter)


def _normalise_embed(embed: dict[str, Any]) -> dict[str, Any]:
    out = dict(embed)
    out.setdefault("type", "rich")
    if "fields" in out:
        out["fields"] = [{"inline": False, **f} for f in out["fields"]]
    return out


# --------------------------------------------------------------------------------------------
# standalone
# --------------------------------------------------------------------------------------------


async def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="Loopback Discord stand-in")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--guilds", type=int, default=1)
    args = parser.parse_args(argv)
    async with FakeDiscord(token=args.token, guild_count=args.guilds, port=args.port) as fake:
        print(
            jsonlib.dumps(
                {
                    "rest_url": fake.rest_url,
                    "gateway_url": fake.gateway_url,
                    "token": fake.token,
                    "application_id": fake.application_id,
                    "guild_ids": fake.guild_ids,
                }
            ),
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))

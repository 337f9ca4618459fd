""":class:`FakeDiscord`: the REST API and the gateway of one loopback Discord on one port.

How to use it, what it records and what it checks: README.md beside this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.discord.gateway import HEARTBEAT_INTERVAL_MS, Connection, Gateway, GatewaySession
from tests.fakes.discord.guilds import GuildShape, realistic_guild_create
from tests.fakes.discord.payloads import (
    DISCORD_EPOCH_MS,
    InteractionBuilders,
    guild_create,
    interaction_token,
    make_user,
    snowflake,
)
from tests.fakes.discord.records import Fault, InteractionRecord, Notifier, RecordedRequest
from tests.fakes.discord.rest import RestApi

T = TypeVar("T")
_DAY_MS = 86_400_000


class FakeDiscord(RestApi, Gateway, InteractionBuilders):
    """Loopback Discord: REST under ``/api/v10`` and the gateway websocket on one port."""

    def __init__(
        self,
        token: str = "test-token",
        *,
        guild_count: int = 1,
        shard_count: int = 1,
        max_concurrency: int = 1,
        guild_shape: GuildShape | None = None,
    ) -> None:
        self.token = token
        #: With a shape, every GUILD_CREATE is a realistic server's (`guild_create_event`).
        self.guild_shape = guild_shape
        #: Shards the bot must connect (`GET /gateway/bot` recommends it; an IDENTIFY with
        #: another count is closed with 4010, one without a shard with 4011).
        self.shard_count = shard_count
        #: IDENTIFY buckets (`session_start_limit.max_concurrency` of `GET /gateway/bot`).
        self.max_concurrency = max_concurrency
        self.host = "127.0.0.1"
        self.port = 0
        #: HELLO's heartbeat interval; and, when set, seconds of silence after which a
        #: connection is dropped (its session stays resumable), as Discord drops a client that
        #: stopped heartbeating (`zombies_dropped` counts them).
        self.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS
        self.zombie_after: float | None = None
        self.zombies_dropped = 0
        #: An interaction callback later than this after :meth:`interact` gets 10062, as on
        #: Discord. Discord's window is 3 s; the stand-in grants 10 s by default so a loaded
        #: test machine does not turn scheduling delay into a failure (the 3 s figure is
        #: measured by the benchmark). A test of late callbacks sets its own; ``None``
        #: disables the check.
        self.callback_deadline: float | None = 10.0
        #: While true, a gateway connection is answered 503 before the websocket upgrade (a
        #: gateway outage: the client keeps retrying, with backoff).
        self.gateway_refused = False

        now_ms = int(time.time() * 1000)
        self.application_id = int(snowflake(now_ms - 400 * _DAY_MS))
        self.bot_user: dict[str, Any] = {
            **make_user(self.application_id, "nekocord", bot=True),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "email": None,
            "bio": "",
        }
        owner = make_user(snowflake(now_ms - 900 * _DAY_MS), "owner")
        self.default_user = make_user(
            snowflake(now_ms - 700 * _DAY_MS), "tester", global_name="Tester"
        )
        self.application: dict[str, Any] = {
            "id": str(self.application_id),
            "name": "nekocord",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": secrets.token_hex(32),
            "owner": owner,
            "team": None,
            "flags": 0,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
            "integration_types_config": {"0": {}, "1": {}},
            "approximate_guild_count": guild_count,
            "bot": self.bot_user,
        }
        # Guild ids spread over five past years, reproducibly, and over the shards in turn (the
        # shard is the id's timestamp modulo shard_count); each guild has one text channel.
        rng = random.Random(0)
        span = 5 * 365 * _DAY_MS
        self.guild_ids = []
        for index in range(guild_count):
            at = now_ms - rng.randrange(_DAY_MS, span)
            at -= (at - DISCORD_EPOCH_MS - index) % shard_count
            self.guild_ids.append(int(snowflake(at)))
        self.channel_ids: dict[int, int] = {}
        self.guilds: dict[int, dict[str, Any]] = {}
        for index, gid in enumerate(self.guild_ids):
            cid = int(snowflake((gid >> 22) + DISCORD_EPOCH_MS + 1))
            self.channel_ids[gid] = cid
            self.guilds[gid] = guild_create(gid, cid, index, self.bot_user, owner["id"])
        self.dm_channel_id = int(snowflake())
        self.users: dict[str, dict[str, Any]] = {
            u["id"]: u for u in (self.bot_user, owner, self.default_user)
        }

        # records (README.md, "What it records")
        self.requests: list[RecordedRequest] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.command_puts = 0
        self.messages: dict[str, dict[str, Any]] = {}
        self.interactions: list[InteractionRecord] = []
        self.identifies: list[dict[str, Any]] = []
        self.identify_times: list[tuple[int | None, float]] = []  # (shard id, monotonic)
        self.resumes: list[dict[str, Any]] = []
        self.gateway_connects: list[dict[str, Any]] = []

        self._faults: list[Fault] = []
        self._by_token: dict[str, InteractionRecord] = {}
        self._sessions: dict[str, GatewaySession] = {}
        self._conns: set[Connection] = set()
        self._notifier = Notifier()
        self._runner: web.AppRunner | None = None
        self._routes = self._build_routes()

    # -- addresses and lifecycle -------------------------------------------------------------
    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        """Handed out in READY: a RESUME shows up in ``gateway_connects`` with path ``/resume``."""
        return f"ws://{self.host}:{self.port}/resume"

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, sock: socket.socket | None = None) -> None:
        """Serve on a free loopback port, or on `sock` (bound and listening: another host's
        address; `host` becomes its address)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api{tail:(/.*)?}", self._handle_rest)
        app.router.add_get("/{tail:.*}", self._handle_gateway)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, 0))
            sock.setblocking(False)
        self.host, self.port = sock.getsockname()[:2]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Close every websocket (1001, aborted after 1 s) and the server; never hangs."""
        if self._runner is None:
            return
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
            record.notifier.notify()

    # -- pointing discord.py here ------------------------------------------------------------
    @contextlib.contextmanager
    def patch_client(self) -> Iterator[None]:
        """Point discord.py (process-wide) at this stand-in; restore the previous URLs on exit."""
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
        self, client: Any, *, token: str | None = None, timeout: float = 10.0
    ) -> AsyncIterator[Any]:
        """Log a plain discord.py ``client`` in, connect it, wait for READY; close it after."""
        with self.patch_client():
            task: asyncio.Task[None] | None = None
            try:
                await asyncio.wait_for(client.login(token or self.token), timeout)
                task = asyncio.create_task(client.connect(reconnect=True), name="fake-bot-connect")
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
                pending = getattr(getattr(client, "_connection", None), "_ready_task", None)
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

    # -- waiting -----------------------------------------------------------------------------
    def _notify(self, record: InteractionRecord | None = None) -> None:
        self._notifier.notify()
        if record is not None:
            record.notifier.notify()

    async def wait_until(self, predicate: Callable[[], T], timeout: float = 5) -> T:
        """Until ``predicate()`` is truthy (re-checked on every change and every 50 ms)."""
        return await self._notifier.wait_until(predicate, timeout, self._describe, poll=0.05)

    def _describe(self) -> str:
        return (
            f"sessions={self.sessions} identifies={len(self.identifies)} "
            f"resumes={len(self.resumes)} requests={len(self.requests)}"
        )

    async def wait_connected(self, timeout: float = 5) -> None:
        """Until every shard has a READY, connected session."""
        await self.wait_until(lambda: len(self.ready_shards) >= self.shard_count, timeout)

    def guild_create_event(self, guild_id: int) -> dict[str, Any]:
        """The GUILD_CREATE sent for a guild: `guilds[guild_id]`, or with `guild_shape` that
        guild as a realistic server (built on each call, the same every time)."""
        base = self.guilds[guild_id]
        if self.guild_shape is None:
            return base
        return realistic_guild_create(base, self.guild_shape, self.bot_user)

    async def join_guild(self, *, shard: int = 0) -> int:
        """The bot is added to a new guild on `shard`: it gets an id, a channel and its
        GUILD_CREATE (realistic with `guild_shape`), dispatched to that shard. Returns the id."""
        now_ms = int(time.time() * 1000)
        while True:
            gid = int(snowflake(now_ms))
            if self.shard_of(gid) == shard and gid not in self.guilds:
                break
            now_ms += 1
        cid = int(snowflake((gid >> 22) + DISCORD_EPOCH_MS + 1))
        self.guild_ids.append(gid)
        self.channel_ids[gid] = cid
        owner = str(self.application["owner"]["id"])
        self.guilds[gid] = guild_create(gid, cid, len(self.guild_ids), self.bot_user, owner)
        event = dict(self.guild_create_event(gid))
        del event["unavailable"]  # as on a join: present only when a guild becomes available
        await self.dispatch("GUILD_CREATE", event)
        return gid

    def guilds_of(self, shard: int) -> list[int]:
        """The ids of the guilds on `shard`."""
        return [g for g in self.guild_ids if self.shard_of(g) == shard]

    # -- faults and lookups ------------------------------------------------------------------
    def fail(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        json: Any = None,
        headers: dict[str, str | None] | None = None,
        times: int = 1,
        process: bool = False,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (README: "Faults")."""
        fault = Fault(
            method=method.upper(),
            pattern=re.compile(path_regex),
            status=status,
            json=json,
            headers=dict(headers or {}),
            times=times,
            process=process,
        )
        self._faults.append(fault)
        return fault

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """Recorded requests of ``method`` (``"*"``: any) whose path ``re.search``-es the regex."""
        pattern = re.compile(path_regex)
        method = method.upper()
        return [
            r
            for r in self.requests
            if (method == "*" or r.method == method) and pattern.search(r.path)
        ]

    # -- interactions ------------------------------------------------------------------------
    async def interact(
        self, payload: dict[str, Any], *, shard: int | None = None
    ) -> InteractionRecord:
        """Dispatch INTERACTION_CREATE for ``payload`` on the connection of the shard that owns
        its guild (or ``shard``) and return its :class:`InteractionRecord`."""
        payload.setdefault("id", snowflake())
        payload.setdefault("token", interaction_token())
        if shard is None:
            guild_id = payload.get("guild_id")
            shard = self.shard_of(int(guild_id) if guild_id is not None else None)
        sessions = self._live_sessions(shard)
        if not sessions:
            raise RuntimeError(f"no READY gateway session for shard {shard}: is it connected?")
        record = InteractionRecord(
            id=str(payload["id"]),
            token=str(payload["token"]),
            # a forged type (a fuzzed payload) is recorded as -1; Discord's are ints
            type=payload["type"] if isinstance(payload.get("type"), int) else -1,
            payload=payload,
            dispatched_at=time.monotonic(),
            shard=shard,
        )
        message = payload.get("message")
        if isinstance(message, dict) and "id" in message:
            record.message_id = str(message["id"])
        self.interactions.append(record)
        self._by_token[record.token] = record
        session = sessions[0]
        async with session.lock:
            await self._dispatch_locked(session, "INTERACTION_CREATE", payload)
        return record

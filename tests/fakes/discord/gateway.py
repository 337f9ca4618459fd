"""The gateway half of the stand-in: a websocket speaking Discord's gateway protocol v10.

HELLO, heartbeat ACKs, IDENTIFY → READY + one GUILD_CREATE per guild of the shard, RESUME with
replay of missed dispatches, server-side closes and dropped connections (docs/discord.md,
"Gateway"). With several shards each session is one shard's: it gets that shard's guilds and
their events, `(guild_id >> 22) % shard_count`, as on Discord.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import secrets
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord.responses import plain_error

HEARTBEAT_INTERVAL_MS = 41_250
REPLAY_BUFFER = 10_000  # dispatches kept per session for RESUME; older → op 9

# Closes after which discord.py does not reconnect, or Discord ends the session.
INVALID_SHARD = 4010
SHARDING_REQUIRED = 4011
_SESSION_ENDING_CLOSES = {1000, 1001, 4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014}

# The guilds intent (bit 0) and the events Discord sends only to a session that has it.
GUILDS_INTENT = 1 << 0
_GUILDS_INTENT_EVENTS = ("GUILD_", "CHANNEL_", "THREAD_", "STAGE_INSTANCE_")
_NOT_GUILDS_INTENT = (
    "GUILD_MEMBER",
    "GUILD_BAN_",
    "GUILD_EMOJIS_",
    "GUILD_STICKERS_",
    "GUILD_SCHEDULED_",
    "GUILD_SOUNDBOARD_",
    "GUILD_INTEGRATIONS_",
    "GUILD_AUDIT_LOG_",
)


def needs_guilds_intent(event: str) -> bool:
    """Whether Discord sends `event` only to sessions that identified with the guilds intent
    (GUILD_CREATE/UPDATE/DELETE, roles, channels, threads, stage instances)."""
    return event.startswith(_GUILDS_INTENT_EVENTS) and not event.startswith(_NOT_GUILDS_INTENT)


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    compressor: Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: GatewaySession | None = None
    open: bool = True
    closed_by_server: bool = False
    last_heard: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class GatewaySession:
    """A gateway session: survives disconnects until invalidated, so it can be RESUMEd."""

    session_id: str
    identify: dict[str, Any]
    shard: int = 0
    seq: int = 0
    ready: bool = False
    invalid: bool = False
    buffer: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=REPLAY_BUFFER))
    guild_events: bool = True  # identified with the guilds intent
    conn: Connection | None = field(default=None, repr=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def connected(self) -> bool:
        return self.conn is not None and self.conn.open


class Gateway:
    """Gateway websocket handling (mixed into :class:`FakeDiscord`)."""

    token: str
    shard_count: int
    gateway_refused: bool
    application_id: int
    application: dict[str, Any]
    bot_user: dict[str, Any]
    guild_ids: list[int]
    guilds: dict[int, dict[str, Any]]
    guild_create_event: Callable[[int], dict[str, Any]]
    identifies: list[dict[str, Any]]
    identify_times: list[tuple[int | None, float]]
    resumes: list[dict[str, Any]]
    gateway_connects: list[dict[str, Any]]
    heartbeat_interval_ms: int
    zombie_after: float | None
    zombies_dropped: int
    _sessions: dict[str, GatewaySession]
    _conns: set[Connection]

    @property
    def resume_gateway_url(self) -> str:
        raise NotImplementedError

    def _notify(self, record: Any = None) -> None:
        raise NotImplementedError

    def shard_of(self, guild_id: int | None) -> int:
        """The shard Discord sends a guild's events to (direct messages: shard 0)."""
        return 0 if guild_id is None else (int(guild_id) >> 22) % self.shard_count

    # -- the public controls -----------------------------------------------------------------
    @property
    def sessions(self) -> int:
        """Sessions that are READY and connected (a RESUMED one counts)."""
        return sum(1 for s in self._sessions.values() if s.ready and s.connected and not s.invalid)

    @property
    def ready_shards(self) -> set[int]:
        """Shards with a READY, connected session."""
        return {
            s.shard for s in self._sessions.values() if s.ready and s.connected and not s.invalid
        }

    @property
    def intents(self) -> int | None:
        return self.identifies[-1].get("intents") if self.identifies else None

    async def dispatch(self, event: str, data: Any, *, shard: int | None = None) -> int:
        """Send a DISPATCH to the READY sessions of `shard` (default: the shard of the
        event's guild; every session for an event of no guild); returns how many got it (or
        buffered it). Pass `shard` to deliver it where Discord would not (a replay on another
        process)."""
        if shard is None:
            shard = self._event_shard(event, data)
        targets = self._live_sessions(shard)
        if needs_guilds_intent(event):
            targets = [s for s in targets if s.guild_events]
        for session in targets:
            async with session.lock:
                await self._dispatch_locked(session, event, data)
        return len(targets)

    async def close_gateway(self, code: int = 4000, reason: str = "") -> None:
        """Close every gateway connection from the server side with ``code``."""
        await asyncio.gather(
            *(self._close_conn(c, code, reason.encode()) for c in list(self._conns)),
            return_exceptions=True,
        )

    def drop_gateway(self) -> None:
        """Abort every gateway TCP connection without a close frame (the client sees 1006)."""
        for conn in list(self._conns):
            self._drop(conn)
        self._notify()

    def _drop(self, conn: Connection) -> None:
        conn.closed_by_server = True
        conn.open = False
        session = conn.session
        if session is not None and session.conn is conn:
            session.conn = None
        if conn.transport is not None:
            conn.transport.abort()

    async def _watch_heartbeats(self, conn: Connection, silent_for: float) -> None:
        """Drop a connection that sent nothing for `silent_for` s, its session left resumable
        (Discord closes a connection that stopped heartbeating)."""
        while conn.open:
            await asyncio.sleep(silent_for / 4)
            if conn.open and time.monotonic() - conn.last_heard > silent_for:
                self.zombies_dropped += 1
                self._drop(conn)
                self._notify()

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every connected session (discord.py then RESUMEs)."""
        for session in list(self._sessions.values()):
            if session.conn is not None and not session.invalid:
                await self._send_op(session.conn, 7, None)

    # -- connections -------------------------------------------------------------------------
    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        if self.gateway_refused:
            return plain_error(503)
        ws = web.WebSocketResponse(timeout=1.0, max_msg_size=0, autoping=True, compress=False)
        if not ws.can_prepare(request).ok:
            return plain_error(404)
        transport = request.transport
        await ws.prepare(request)
        query = dict(request.query)
        # discord.py always asks for zlib-stream: one zlib context for the whole connection.
        # Level 1: 10,000 realistic GUILD_CREATEs (400 MB of JSON) compress 3× faster.
        compressor = zlib.compressobj(1) if query.get("compress") == "zlib-stream" else None
        conn = Connection(ws=ws, transport=transport, compressor=compressor)
        self._conns.add(conn)
        self.gateway_connects.append({"path": request.path, "query": query, "at": time.monotonic()})
        watchdog = None
        if self.zombie_after is not None:
            watchdog = asyncio.create_task(self._watch_heartbeats(conn, self.zombie_after))
        try:
            await self._send_op(conn, 10, {"heartbeat_interval": self.heartbeat_interval_ms})
            async for msg in ws:
                conn.last_heard = time.monotonic()
                if msg.type is not WSMsgType.TEXT and msg.type is not WSMsgType.BINARY:
                    break
                try:
                    frame = jsonlib.loads(msg.data)
                except ValueError:
                    await self._close_conn(conn, 4002, b"Error while decoding payload.")
                    break
                await self._on_frame(conn, frame)
                if not conn.open:
                    break
        except ConnectionError:
            pass
        finally:
            if watchdog is not None:
                watchdog.cancel()
            conn.open = False
            self._conns.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client closing with 1000/1001 ends its session, as on Discord.
                if not conn.closed_by_server and ws.close_code in (1000, 1001):
                    session.invalid = True
            self._notify()
        return ws

    async def _on_frame(self, conn: Connection, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data = frame.get("d")
        if op == 1:
            await self._send_op(conn, 11, None)
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif op in (3, 4, 8):
            pass  # presence, voice state, member requests: nothing the bot relies on
        elif conn.session is None:
            await self._close_conn(conn, 4003, b"Not authenticated.")
        else:
            await self._close_conn(conn, 4001, b"Unknown opcode.")

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        raw_shard = data.get("shard")
        shard_id = raw_shard[0] if isinstance(raw_shard, list) and raw_shard else None
        self.identify_times.append((shard_id, time.monotonic()))
        self._notify()
        if data.get("token") != self.token:
            await self._close_conn(conn, 4004, b"Authentication failed.")
            return
        if conn.session is not None:
            await self._close_conn(conn, 4005, b"Already authenticated.")
            return
        if raw_shard is None and self.shard_count > 1:
            await self._close_conn(conn, SHARDING_REQUIRED, b"Sharding required.")
            return
        shard, count = raw_shard if raw_shard is not None else (0, 1)
        if not (isinstance(shard, int) and count == self.shard_count and 0 <= shard < count):
            await self._close_conn(conn, INVALID_SHARD, b"Invalid shard.")
            return
        intents = data.get("intents")
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            identify=data,
            shard=shard,
            # Discord's rule: no guild events without the guilds intent (READY still lists
            # the guilds, as unavailable placeholders).
            guild_events=isinstance(intents, int) and bool(intents & GUILDS_INTENT),
        )
        guild_ids = [g for g in self.guild_ids if self.shard_of(g) == shard]
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
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application["flags"]},
            "shard": [shard, self.shard_count],
            "auth": {},
            "_trace": ['["fake-discord-gateway",{"micros":0}]'],
        }
        async with session.lock:
            await self._dispatch_locked(session, "READY", ready)
        session.ready = True
        self._notify()
        for gid in guild_ids if session.guild_events else ():
            if session.invalid:  # a disconnected session still buffers them for RESUME
                break
            async with session.lock:
                await self._dispatch_locked(session, "GUILD_CREATE", self.guild_create_event(gid))
        self._notify()

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
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
            await self._send_op(conn, 9, False)  # not resumable: identify again
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

    # -- sending -----------------------------------------------------------------------------
    async def _send_raw(self, conn: Connection, text: str) -> None:
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

    async def _send_op(self, conn: Connection, op: int, data: Any) -> None:
        await self._send_raw(conn, jsonlib.dumps({"op": op, "d": data, "s": None, "t": None}))

    async def _dispatch_locked(self, session: GatewaySession, event: str, data: Any) -> None:
        session.seq += 1
        frame = jsonlib.dumps({"op": 0, "t": event, "s": session.seq, "d": data})
        session.buffer.append((session.seq, frame))
        conn = session.conn
        if conn is not None and conn.open:
            await self._send_raw(conn, frame)

    def _event_shard(self, event: str, data: Any) -> int | None:
        if not isinstance(data, dict):
            return None
        guild_id = data.get("guild_id")
        if guild_id is None and event.startswith("GUILD_"):
            guild_id = data.get("id")  # GUILD_CREATE, GUILD_UPDATE, GUILD_DELETE
        return None if guild_id is None else self.shard_of(int(guild_id))

    def _live_sessions(self, shard: int | None = None) -> list[GatewaySession]:
        live = [
            s
            for s in self._sessions.values()
            if s.ready and not s.invalid and (shard is None or s.shard == shard)
        ]
        # A connected session first, newest first: a bot that restarted left its old session
        # resumable (as Discord does) but nobody will resume it.
        return [s for s in live if s.connected] + [s for s in reversed(live) if not s.connected]

    async def _close_conn(self, conn: Connection, code: int, message: bytes = b"") -> None:
        conn.closed_by_server = True
        conn.open = False
        session = conn.session
        if session is not None and session.conn is conn:
            session.conn = None
            if code in _SESSION_ENDING_CLOSES:
                session.invalid = True
        self._notify()
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=message), 1.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if conn in self._conns and conn.transport is not None and not conn.ws.closed:
                conn.transport.abort()

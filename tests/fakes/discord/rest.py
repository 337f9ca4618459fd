"""The REST half of the stand-in: routes under ``/api/v10`` (docs/discord.md, "REST routes").

Served: the bot's identity and application, gateway discovery, command registration (list and
bulk overwrite), interaction callbacks, and the interaction webhook (follow-ups, edits,
deletes). Anything else is answered 404 and kept in ``unknown_requests``.
"""

from __future__ import annotations

import json as jsonlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.fakes.discord.payloads import (
    EPHEMERAL,
    IS_COMPONENTS_V2,
    LOADING,
    SUPPRESS_EMBEDS,
    SUPPRESS_NOTIFICATIONS,
    make_user,
    normalise_embed,
    now_iso,
    number_components,
    snowflake,
)
from tests.fakes.discord.records import (
    Callback,
    Edit,
    Fault,
    InteractionRecord,
    RecordedRequest,
    Rejected,
    UploadedFile,
)
from tests.fakes.discord.responses import (
    error,
    form_error,
    json_response,
    no_content,
    plain_error,
    set_path,
)
from tests.fakes.discord.validation import check_choices, check_commands, check_message

_API_PATH = re.compile(r"^/api(?:/v\d+)?(?P<path>/.*)$")
_TOKEN_PATH = re.compile(r"^/(?:interactions|webhooks)/\d+/(?P<token>[^/]+)")
_USER_MENTION = re.compile(r"<@!?(\d{1,21})>")
_ROLE_MENTION = re.compile(r"<@&(\d{1,21})>")

# Callback types Discord accepts per interaction type: command 2, component 3, autocomplete 4.
_ALLOWED_CALLBACKS = {2: {4, 5, 9, 10, 12}, 3: {4, 5, 6, 7, 9}, 4: {8}}

Handler = Callable[[RecordedRequest, "re.Match[str]"], Awaitable[web.StreamResponse]]


class RestApi:
    """REST routes (mixed into :class:`FakeDiscord`, whose state they read and record into)."""

    token: str
    shard_count: int
    max_concurrency: int
    host: str
    port: int
    application_id: int
    application: dict[str, Any]
    bot_user: dict[str, Any]
    guilds: dict[int, dict[str, Any]]
    dm_channel_id: int
    users: dict[str, dict[str, Any]]
    callback_deadline: float | None
    requests: list[RecordedRequest]
    unknown_requests: list[RecordedRequest]
    commands: dict[int | None, list[dict[str, Any]]]
    command_puts: int
    messages: dict[str, dict[str, Any]]
    identifies: list[dict[str, Any]]
    _faults: list[Fault]
    _by_token: dict[str, InteractionRecord]
    _routes: list[tuple[str, re.Pattern[str], Handler, bool]]

    @property
    def gateway_url(self) -> str:
        raise NotImplementedError

    def _notify(self, record: InteractionRecord | None = None) -> None:
        raise NotImplementedError

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler, bool]]:
        """(method, path, handler, needs ``Authorization: Bot <token>``)."""
        app = r"(?P<app>\d+)"
        wh = r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
        message = rf"{wh}/messages/(?P<mid>@original|\d+)"
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", r"/users/@me", self._r_me, True),
            ("GET", r"/oauth2/applications/@me", self._r_application, True),
            ("GET", r"/applications/@me", self._r_application, True),
            ("GET", r"/gateway", self._r_gateway, False),
            ("GET", r"/gateway/bot", self._r_gateway_bot, True),
            ("GET", rf"/applications/{app}/commands", self._r_list_commands, True),
            ("PUT", rf"/applications/{app}/commands", self._r_put_commands, True),
            (
                "GET",
                rf"/applications/{app}/guilds/(?P<guild>\d+)/commands",
                self._r_list_commands,
                True,
            ),
            (
                "PUT",
                rf"/applications/{app}/guilds/(?P<guild>\d+)/commands",
                self._r_put_commands,
                True,
            ),
            (
                "POST",
                r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback",
                self._r_callback,
                False,
            ),
            ("GET", message, self._r_webhook_get, False),
            ("PATCH", message, self._r_webhook_patch, False),
            ("DELETE", message, self._r_webhook_delete, False),
            ("POST", wh, self._r_followup, False),
        ]
        return [(m, re.compile(f"^{p}$"), h, auth) for m, p, h, auth in table]

    # -- dispatching -------------------------------------------------------------------------
    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        match = _API_PATH.match(request.path)
        path = match["path"] if match else request.path
        rec = RecordedRequest(
            request.method, path, dict(request.query), None, dict(request.headers), at
        )
        self.requests.append(rec)
        try:
            rec.json, rec.files = await _read_body(request)
        except (ValueError, UnicodeDecodeError):
            rec.status = 400
            return error(400, "400: Bad Request", 50109)
        fault = _take(self._faults, rec.method, path)
        if fault is not None and not fault.process:
            response: web.StreamResponse = fault.response()
        else:
            response = await self._route(rec)
            if fault is not None:  # processed, but the bot sees the injected answer
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
                return plain_error(401)
            return await handler(rec, m)
        self.unknown_requests.append(rec)
        return plain_error(405 if method_mismatch else 404)

    # -- identity and gateway discovery ------------------------------------------------------
    async def _r_me(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        return json_response(self.bot_user)

    async def _r_application(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        return json_response(self.application)

    async def _r_gateway(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        return json_response({"url": self.gateway_url})

    async def _r_gateway_bot(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        limit = {
            "total": 1000,
            "remaining": max(0, 1000 - len(self.identifies)),
            "reset_after": 86_400_000,
            "max_concurrency": self.max_concurrency,
        }
        return json_response(
            {"url": self.gateway_url, "shards": self.shard_count, "session_start_limit": limit}
        )

    # -- application commands ----------------------------------------------------------------
    def _command_scope(self, m: re.Match[str]) -> tuple[int | None, web.Response | None]:
        """``None`` for global commands, else the guild id; or Discord's 403 for a wrong one."""
        if int(m["app"]) != self.application_id:
            return None, error(403, "Missing Access", 50001)
        guild = m.groupdict().get("guild")
        if guild is None:
            return None, None
        if int(guild) not in self.guilds:
            return None, error(403, "Missing Access", 50001)
        return int(guild), None

    def _command_object(
        self, data: dict[str, Any], scope: int | None, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A registered command as Discord returns it (an overwrite keeps the id of its name)."""
        cmd = dict(data)
        cmd["type"] = int(cmd.get("type", 1))
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

    async def _r_list_commands(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        scope, err = self._command_scope(m)
        return err or json_response(self.commands.get(scope, []))

    async def _r_put_commands(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        scope, err = self._command_scope(m)
        if err is not None:
            return err
        if not isinstance(rec.json, list):
            return form_error({"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Not a list"}]})
        invalid = check_commands(rec.json)
        if invalid is not None:
            return invalid
        existing = {(c["name"], c["type"]): c for c in self.commands.get(scope, [])}
        result = [
            self._command_object(c, scope, existing.get((c.get("name"), int(c.get("type", 1)))))
            for c in rec.json
        ]
        self.commands[scope] = result
        self.command_puts += 1
        return json_response(result)

    # -- messages ----------------------------------------------------------------------------
    def _mentions(
        self, content: str, allowed: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], list[str], bool]:
        """Who ``content`` pings once ``allowed_mentions`` (absent: parse all) is applied."""
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
        msg_type: int,
        files: list[UploadedFile] | None = None,
        flags_mask: int = ~0,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A message object as Discord stores it; kept in ``messages``."""
        content = str(body.get("content") or "")
        mentions, roles, everyone = self._mentions(content, body.get("allowed_mentions"))
        components = [dict(c) for c in body.get("components") or []]
        number_components(components)
        msg: dict[str, Any] = {
            "id": snowflake(),
            "type": msg_type,
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": roles,
            "mention_channels": [],
            "attachments": self._attachments(files or []),
            "embeds": [normalise_embed(e) for e in body.get("embeds") or []],
            "reactions": [],
            "pinned": False,
            "flags": int(body.get("flags") or 0) & flags_mask,
            "components": components,
            **(extra or {}),
        }
        self.messages[msg["id"]] = msg
        return msg

    def _apply_edit(
        self, msg: dict[str, Any], body: dict[str, Any], files: list[UploadedFile]
    ) -> dict[str, Any]:
        """Apply a PATCH (or the follow-up replacing a defer) to ``msg`` in place."""
        was_loading = int(msg.get("flags", 0)) & LOADING
        if "content" in body:
            msg["content"] = str(body["content"] or "")
        if "content" in body or "allowed_mentions" in body:
            mentions, roles, everyone = self._mentions(msg["content"], body.get("allowed_mentions"))
            msg.update(mentions=mentions, mention_roles=roles, mention_everyone=everyone)
        if "embeds" in body:
            msg["embeds"] = [normalise_embed(e) for e in body["embeds"] or []]
        if "components" in body:
            comps = [dict(c) for c in body["components"] or []]
            number_components(comps)
            msg["components"] = comps
        if "attachments" in body or files:
            keep = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in msg.get("attachments", []) if a["id"] in keep]
            msg["attachments"] = kept + self._attachments(files)
        flags = int(msg.get("flags", 0)) & ~LOADING
        if body.get("flags") is not None:  # an edit may only toggle these two
            new = int(body["flags"])
            flags = (flags & ~SUPPRESS_EMBEDS) | (new & SUPPRESS_EMBEDS)
            flags |= new & IS_COMPONENTS_V2
        msg["flags"] = flags
        if was_loading:
            msg["timestamp"] = now_iso()
        else:
            msg["edited_timestamp"] = now_iso()
        return msg

    # -- interaction callbacks ---------------------------------------------------------------
    def _interaction_message(
        self, record: InteractionRecord, body: dict[str, Any], files: list[UploadedFile]
    ) -> dict[str, Any]:
        """A message answering ``record`` (callback or follow-up): a webhook message."""
        metadata: dict[str, Any] = {
            "id": record.id,
            "type": record.type,
            "user": self._known_user(record.invoking_user),
            "authorizing_integration_owners": record.payload.get(
                "authorizing_integration_owners", {}
            ),
        }
        msg_type = 0
        data = record.payload.get("data")
        if record.type == 2 and isinstance(data, dict):
            metadata["name"] = data.get("name")
            metadata["command_type"] = data.get("type", 1)
            msg_type = 20 if data.get("type", 1) == 1 else 23
        if record.message_id:
            metadata["interacted_message_id"] = record.message_id
        return self._new_message(
            body,
            channel_id=record.payload.get("channel_id") or self.dm_channel_id,
            author=self.bot_user,
            msg_type=msg_type,
            files=files,
            flags_mask=EPHEMERAL | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2,
            extra={
                "webhook_id": str(self.application_id),
                "application_id": str(self.application_id),
                "interaction_metadata": metadata,
            },
        )

    def _known_user(self, user: Any) -> dict[str, Any]:
        """The invoker as Discord knows them: a forged payload's user that is not a whole user
        object reads as an ordinary user with its id (else the default user)."""
        if isinstance(user, dict) and all(
            isinstance(user.get(k), str) for k in ("id", "username", "discriminator")
        ):
            return user
        user_id = user.get("id") if isinstance(user, dict) else None
        if isinstance(user_id, str) and user_id.isdigit() and int(user_id) < 2**63:
            return make_user(user_id)
        return self.default_user

    @staticmethod
    def _reject(
        record: InteractionRecord, rec: RecordedRequest, response: web.Response, reason: str
    ) -> web.Response:
        body = jsonlib.loads(response.body) if isinstance(response.body, bytes) else {}
        record.rejected_callbacks.append(
            Rejected(rec.json, rec.at, response.status, int(body.get("code", 0)), reason)
        )
        return response

    def _check_callback(
        self, record: InteractionRecord, rec: RecordedRequest, body: dict[str, Any]
    ) -> web.Response | None:
        """Discord's refusals of a callback, recorded in ``rejected_callbacks``."""
        if record.callbacks:
            resp = error(400, "Interaction has already been acknowledged.", 40060)
            return self._reject(record, rec, resp, "already acknowledged")
        late = rec.at - record.dispatched_at
        if self.callback_deadline is not None and late > self.callback_deadline:
            resp = error(404, "Unknown interaction", 10062)
            return self._reject(record, rec, resp, "too late (3 s rule)")
        ctype = int(body.get("type") or 0)
        data = body.get("data") or {}
        if ctype not in _ALLOWED_CALLBACKS.get(record.type, set()):
            errors: dict[str, Any] = {}
            set_path(
                errors,
                "type",
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Callback type {ctype} is invalid for interaction type {record.type}",
            )
            return self._reject(record, rec, form_error(errors), "invalid callback type")
        invalid = None
        if ctype in (4, 7):
            invalid = check_message(data, create=ctype == 4, has_files=bool(rec.files))
        elif ctype == 8:
            invalid = check_choices(data.get("choices") or [])
        if invalid is not None:
            return self._reject(record, rec, invalid, "invalid body")
        return None

    async def _r_callback(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        record = self._by_token.get(m["token"])
        if record is None or record.id != m["iid"]:
            return error(404, "Unknown interaction", 10062)
        body = rec.json if isinstance(rec.json, dict) else {}
        refused = self._check_callback(record, rec, body)
        if refused is not None:
            return refused
        ctype = int(body.get("type") or 0)
        data = body.get("data") or {}
        record.callbacks.append(Callback(body, rec.at, rec.files))
        record.first_response_at = rec.at
        message: dict[str, Any] | None = None
        if ctype == 4:
            message = record.original = self._interaction_message(record, data, rec.files)
        elif ctype == 5:  # defer: a "thinking…" original, ephemeral if the defer asked so
            flags = int(data.get("flags") or 0) & EPHEMERAL
            message = self._interaction_message(record, {"flags": flags}, [])
            message["flags"] = flags | LOADING
            record.original = message
        elif ctype in (6, 7) and record.message_id is not None:
            target = self.messages.get(record.message_id)  # the message the button is on
            if target is not None:
                if ctype == 7:
                    message = self._apply_edit(target, data, rec.files)
                record.original = target
        self._notify(record)
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return no_content()
        return json_response(_callback_answer(record, ctype, message))

    # -- the interaction webhook -------------------------------------------------------------
    def _webhook_record(self, m: re.Match[str]) -> InteractionRecord | None:
        record = self._by_token.get(m["token"])
        if record is None or int(m["app"]) != self.application_id:
            return None
        return record

    def _webhook_target(
        self, record: InteractionRecord, mid: str
    ) -> tuple[dict[str, Any] | None, bool]:
        """(message, is the original) for a webhook message id; only this token's messages."""
        if mid == "@original":
            if record.original is None or record.original_deleted:
                return None, True
            return record.original, True
        is_original = record.original is not None and record.original["id"] == mid
        own = is_original or any(m["id"] == mid for m in record.followups)
        msg = self.messages.get(mid)
        if msg is None or not own:
            return None, is_original
        return msg, is_original

    def _webhook_message(
        self, m: re.Match[str]
    ) -> tuple[InteractionRecord, dict[str, Any], bool] | web.Response:
        """(record, message, is the original) named by a webhook message route, or the 404."""
        record = self._webhook_record(m)
        if record is None:
            return error(404, "Unknown Webhook", 10015)
        msg, is_original = self._webhook_target(record, m["mid"])
        if msg is None:
            return error(404, "Unknown Message", 10008)
        return record, msg, is_original

    async def _r_webhook_get(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        found = self._webhook_message(m)
        return found if isinstance(found, web.Response) else json_response(found[1])

    async def _r_webhook_patch(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        found = self._webhook_message(m)
        if isinstance(found, web.Response):
            return found
        record, msg, is_original = found
        body = rec.json if isinstance(rec.json, dict) else {}
        invalid = check_message(body, create=False)
        if invalid is not None:
            return invalid
        self._apply_edit(msg, body, rec.files)
        record.edits.append(Edit(msg["id"], body, rec.at, is_original))
        self._notify(record)
        return json_response(msg)

    async def _r_webhook_delete(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        found = self._webhook_message(m)
        if isinstance(found, web.Response):
            return found
        record, msg, is_original = found
        if is_original:
            record.original_deleted = True
        record.deleted.append(msg["id"])
        self.messages.pop(msg["id"], None)
        self._notify(record)
        return no_content()

    async def _r_followup(self, rec: RecordedRequest, m: re.Match[str]) -> web.StreamResponse:
        record = self._webhook_record(m)
        if record is None or not record.callbacks:  # Discord: no follow-up before a callback
            return error(404, "Unknown Webhook", 10015)
        body = dict(rec.json) if isinstance(rec.json, dict) else {}
        invalid = check_message(body, create=True, has_files=bool(rec.files))
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
            return json_response(message)
        return no_content()


def _callback_answer(
    record: InteractionRecord, ctype: int, message: dict[str, Any] | None
) -> dict[str, Any]:
    """The body of a callback answered ``?with_response=true`` (discord.py 2.7 asks for it)."""
    ephemeral = message is not None and bool(int(message.get("flags", 0)) & EPHEMERAL)
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
    return answer


async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    """The JSON body (``payload_json`` of a multipart upload) and the uploaded files."""
    body: Any = None
    files: list[UploadedFile] = []
    if request.headers.get("Content-Type", "").startswith("multipart/form-data"):
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files.append(
                    UploadedFile(name, value.filename, value.content_type, value.file.read())
                )
            elif name == "payload_json":
                body = jsonlib.loads(str(value))
    elif request.can_read_body:
        raw = await request.read()
        if raw:
            body = jsonlib.loads(raw)
    return body, files


def _take(faults: list[Fault], method: str, path: str) -> Fault | None:
    for fault in faults:
        if fault.matches(method, path):
            fault.times -= 1
            fault.hits += 1
            return fault
    return None

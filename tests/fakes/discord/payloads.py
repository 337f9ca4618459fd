"""Discord objects as the gateway and REST API send them, and the INTERACTION_CREATE builders.

The shapes follow docs/discord.md ("Objects the stand-in serves"): every field discord.py 2.7
reads when it builds its models is present, so a real client parses them without complaint.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
ALL_PERMISSIONS = str((1 << 51) - 1)
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

# Message flags (docs/discord.md, "Message flags").
SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7  # a deferred answer still "thinking…"
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15

_counter = itertools.count()


class _First:
    def __repr__(self) -> str:
        return "<first guild>"


#: Builders default to the first guild; ``guild_id=None`` explicitly means a DM.
FIRST_GUILD: Any = _First()


def snowflake(at_ms: int | None = None) -> str:
    """A unique Discord snowflake (string) for ``at_ms`` (Unix ms; default: now)."""
    ms = int(time.time() * 1000) if at_ms is None else at_ms
    return str(((ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (next(_counter) & 0x1FFFF))


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def interaction_token() -> str:
    return secrets.token_urlsafe(53)[:70]


def make_user(
    id: int | str | None = None,
    name: str = "tester",
    *,
    bot: bool = False,
    global_name: str | None = None,
) -> dict[str, Any]:
    """A user object as Discord sends it (``discriminator`` "0", the post-2023 default)."""
    user: dict[str, Any] = {
        "id": str(id) if id is not None else snowflake(),
        "username": name,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": None,
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


def everyone_role(guild_id: int) -> dict[str, Any]:
    return {
        "id": str(guild_id),
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


def text_channel(
    guild_id: int, channel_id: int, *, with_permissions: bool = True
) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
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
    if with_permissions:  # interactions carry the app's resolved permissions
        channel["permissions"] = ALL_PERMISSIONS
    return channel


def dm_channel(channel_id: int, user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 1,
        "last_message_id": None,
        "flags": 0,
        "recipients": [user],
    }


def member(user: dict[str, Any] | None = None) -> dict[str, Any]:
    """A guild member; without ``user`` as in ``resolved.members`` (the user is beside it)."""
    out: dict[str, Any] = {
        "roles": [],
        "joined_at": now_iso(),
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
        out["user"] = user
    return out


def guild_create(
    guild_id: int, channel_id: int, index: int, bot_user: dict[str, Any], owner_id: str
) -> dict[str, Any]:
    """The GUILD_CREATE of a guild with ``@everyone``, ``#general`` and the bot as a member."""
    joined = now_iso()
    return {
        "id": str(guild_id),
        "name": f"Guild {index}",
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": owner_id,
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
        "system_channel_id": str(channel_id),
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
        "roles": [everyone_role(guild_id)],
        "emojis": [],
        "stickers": [],
        "soundboard_sounds": [],
        "unavailable": False,
        "lazy": True,
        "large": False,
        "member_count": 2,
        "joined_at": joined,
        "channels": [text_channel(guild_id, channel_id, with_permissions=False)],
        "threads": [],
        "members": [{**member(bot_user), "joined_at": joined}],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "embedded_activities": [],
        "incidents_data": None,
    }


def walk_components(
    components: list[dict[str, Any]] | None, prefix: str = "components"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every component (rows, their children, section accessories), with its form-error path."""
    for i, comp in enumerate(components or []):
        path = f"{prefix}.{i}"
        yield path, comp
        yield from walk_components(comp.get("components"), f"{path}.components")
        accessory = comp.get("accessory")
        if isinstance(accessory, dict):
            yield f"{path}.accessory", accessory
        inner = comp.get("component")
        if isinstance(inner, dict):
            yield f"{path}.component", inner


def number_components(components: list[dict[str, Any]]) -> None:
    """Copy nested components and give each a numeric ``id``, as Discord does."""
    counter = itertools.count(1)
    for _, comp in walk_components(components):
        if "components" in comp:
            comp["components"] = [dict(c) for c in comp["components"]]
        if isinstance(comp.get("accessory"), dict):
            comp["accessory"] = dict(comp["accessory"])
        if isinstance(comp.get("component"), dict):
            comp["component"] = dict(comp["component"])
    for _, comp in walk_components(components):
        if "id" not in comp:
            comp["id"] = next(counter)


def normalise_embed(embed: dict[str, Any]) -> dict[str, Any]:
    out = dict(embed)
    out.setdefault("type", "rich")
    if "fields" in out:
        out["fields"] = [{"inline": False, **f} for f in out["fields"]]
    return out


def _infer_type(value: Any) -> int:
    """The option type of a Python value: bool 5, int 4, float 10, user dict 6, else string 3."""
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, dict) and "username" in value:
        return 6
    return 3


class InteractionBuilders:
    """INTERACTION_CREATE payloads (mixed into :class:`FakeDiscord`, whose state they read)."""

    application_id: int
    bot_user: dict[str, Any]
    default_user: dict[str, Any]
    guild_ids: list[int]
    guilds: dict[int, dict[str, Any]]
    channel_ids: dict[int, int]
    dm_channel_id: int
    users: dict[str, dict[str, Any]]
    commands: dict[int | None, list[dict[str, Any]]]

    def _new_message(
        self, body: dict[str, Any], *, channel_id: int | str, author: dict[str, Any], msg_type: int
    ) -> dict[str, Any]:
        raise NotImplementedError  # provided by the REST half

    # -- the public builders -----------------------------------------------------------------
    def slash(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        user: dict[str, Any] | None = None,
        guild_id: Any = FIRST_GUILD,
        subcommand: str | None = None,
        **context: Any,
    ) -> dict[str, Any]:
        """A chat-input command (type 2, data.type 1); with `subcommand`, `options` are that
        subcommand's. `context`: see `_base_payload` (locale, guild_locale, permissions,
        user_install, channel_id)."""
        gid = self._default_guild(guild_id)
        data, _ = self._chat_input_data(name, options, gid, subcommand=subcommand)
        return self._base_payload(2, data, user=user, guild_id=gid, **context)

    def autocomplete(
        self,
        name: str,
        focused: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        user: dict[str, Any] | None = None,
        guild_id: Any = FIRST_GUILD,
    ) -> dict[str, Any]:
        """An autocomplete request (type 4) while the user types in option ``focused``."""
        gid = self._default_guild(guild_id)
        opts: dict[str, Any] | list[dict[str, Any]]
        if options is None or isinstance(options, dict):
            opts = dict(options or {})
            opts.setdefault(focused, "")
        else:
            opts = options
        data, leaf = self._chat_input_data(name, opts, gid, focused)
        for opt in leaf:  # explicit option lists: mark the focused one
            if opt["name"] == focused:
                opt["focused"] = True
            else:
                opt.pop("focused", None)
        if not any(o.get("focused") for o in leaf):
            raise ValueError(f"focused option {focused!r} is not among the options")
        return self._base_payload(4, data, user=user, guild_id=gid)

    def component(
        self,
        custom_id: str,
        message: dict[str, Any],
        *,
        user: dict[str, Any] | None = None,
        strict: bool = True,
    ) -> dict[str, Any]:
        """A button press (type 3) on ``message``.

        With ``strict`` a ``custom_id`` that is not on the message raises ``ValueError``:
        discord.py would ignore such a press silently (docs/discord.md, "discord.py seams")."""
        if strict and not any(
            c.get("custom_id") == custom_id for _, c in walk_components(message.get("components"))
        ):
            raise ValueError(f"custom_id {custom_id!r} is not on message {message.get('id')}")
        gid = self._default_guild(self._guild_of_channel(message.get("channel_id")))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
        payload = self._base_payload(
            3, data, user=user, guild_id=gid, channel_id=message.get("channel_id")
        )
        payload["message"] = message
        return payload

    def user_command(
        self,
        name: str,
        target_user: dict[str, Any],
        *,
        user: dict[str, Any] | None = None,
        guild_id: Any = FIRST_GUILD,
    ) -> dict[str, Any]:
        """A user context-menu command (type 2, data.type 2)."""
        gid = self._default_guild(guild_id)
        self._remember(target_user)
        data, _ = self._command_data(name, 2, gid)
        resolved: dict[str, Any] = {"users": {target_user["id"]: target_user}}
        if gid is not None:
            resolved["members"] = {target_user["id"]: member()}
        data.update(target_id=target_user["id"], resolved=resolved)
        return self._base_payload(2, data, user=user, guild_id=gid)

    def message_command(
        self,
        name: str,
        target_message: dict[str, Any],
        *,
        user: dict[str, Any] | None = None,
        guild_id: Any = FIRST_GUILD,
    ) -> dict[str, Any]:
        """A message context-menu command (type 2, data.type 3)."""
        gid = self._default_guild(guild_id)
        data, _ = self._command_data(name, 3, gid)
        data.update(
            target_id=target_message["id"],
            resolved={"messages": {target_message["id"]: target_message}},
        )
        return self._base_payload(2, data, user=user, guild_id=gid)

    def user_message(
        self, content: str, *, author: dict[str, Any] | None = None, guild_id: Any = FIRST_GUILD
    ) -> dict[str, Any]:
        """A message "sent by a user" (stored in ``messages``), e.g. a message-command target."""
        gid = self._default_guild(guild_id)
        author = self._remember(author or self.default_user)
        channel_id = self.channel_ids[gid] if gid is not None else self.dm_channel_id
        return self._new_message(
            {"content": content}, channel_id=channel_id, author=author, msg_type=0
        )

    # -- shared parts ------------------------------------------------------------------------
    def _remember(self, user: dict[str, Any]) -> dict[str, Any]:
        self.users[str(user["id"])] = user
        return user

    def _guild_of_channel(self, channel_id: Any) -> Any:
        if channel_id is None:
            return FIRST_GUILD
        for gid, cid in self.channel_ids.items():
            if cid == int(channel_id):
                return gid
        return None if int(channel_id) == self.dm_channel_id else FIRST_GUILD

    def _default_guild(self, guild_id: Any) -> int | None:
        if guild_id is FIRST_GUILD:
            return self.guild_ids[0] if self.guild_ids else None
        return int(guild_id) if guild_id is not None else None

    def _base_payload(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user: dict[str, Any] | None,
        guild_id: int | None,
        channel_id: int | str | None = None,
        locale: str = "en-US",
        guild_locale: str | None = "en-US",
        permissions: int | None = None,
        user_install: bool = False,
        parent_id: int | str | None = None,
    ) -> dict[str, Any]:
        """What every INTERACTION_CREATE carries that discord.py 2.7 reads. `locale` is the
        member's, `guild_locale` the server's; `permissions` the member's (all by default);
        `user_install`: the command comes through the member's own install of the app (the
        server may not have the bot); `parent_id`: the channel is a thread of that channel."""
        invoker = self._remember(user or self.default_user)
        payload: dict[str, Any] = {
            "id": snowflake(),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": interaction_token(),
            "version": 1,
            "app_permissions": ALL_PERMISSIONS,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild_id is not None:
            if guild_id not in self.guilds and not user_install:
                raise ValueError(f"unknown guild {guild_id}")
            channel = text_channel(guild_id, self.channel_ids.get(guild_id, guild_id + 1))
            if channel_id is not None:
                channel["id"] = str(channel_id)
            if parent_id is not None:  # a public thread in that channel
                channel.update(
                    type=11,
                    parent_id=str(parent_id),
                    owner_id=invoker["id"],
                    message_count=0,
                    member_count=1,
                    rate_limit_per_user=0,
                    thread_metadata={
                        "archived": False,
                        "auto_archive_duration": 1440,
                        "archive_timestamp": now_iso(),
                        "locked": False,
                    },
                )
            invoker_member = member(invoker)
            if permissions is not None:
                invoker_member["permissions"] = str(permissions)
            owners = {"1": invoker["id"]} if user_install else {"0": str(guild_id)}
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": guild_locale or "en-US", "features": []},
                channel=channel,
                channel_id=channel["id"],
                member=invoker_member,
                authorizing_integration_owners=owners,
                context=0,
            )
            if guild_locale is not None:
                payload["guild_locale"] = guild_locale
        else:
            channel = dm_channel(self.dm_channel_id, invoker)
            if channel_id is not None:
                channel["id"] = str(channel_id)
            payload.update(
                channel=channel,
                channel_id=channel["id"],
                user=invoker,
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        return payload

    def _command_data(
        self, name: str, ctype: int, guild_id: int | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """``data`` naming a command; its id is the registered one when the bot has synced."""
        scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
        cmd = next(
            (
                c
                for scope in scopes
                for c in self.commands.get(scope, [])
                if c["name"] == name and c["type"] == ctype
            ),
            None,
        )
        data: dict[str, Any] = {
            "id": cmd["id"] if cmd else snowflake(),
            "name": name,
            "type": ctype,
        }
        if cmd is not None and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return data, cmd

    def _chat_input_data(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None,
        guild_id: int | None,
        focused: str | None = None,
        *,
        subcommand: str | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        data, cmd = self._command_data(name, 1, guild_id)
        schema: list[dict[str, Any]] = (cmd or {}).get("options") or []
        if subcommand is not None:
            sub = next((o for o in schema if o.get("name") == subcommand), None) or {}
            schema = sub.get("options") or []
        resolved: dict[str, dict[str, Any]] = {}
        opts = self._options(options, schema, guild_id, resolved, focused)
        if subcommand is not None:
            data["options"] = [{"name": subcommand, "type": 1, "options": opts}]
        elif opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        return data, opts

    def _options(
        self,
        options: dict[str, Any] | list[dict[str, Any]] | None,
        schema: list[dict[str, Any]],
        guild_id: int | None,
        resolved: dict[str, dict[str, Any]],
        focused: str | None,
    ) -> list[dict[str, Any]]:
        """``{name: value}`` → option list, typed from the registered command (else the value)."""
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
            value = self._resolve(otype, value, guild_id, resolved)
            out.append({"name": name, "type": otype, "value": value})
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
        if otype == 6:  # a USER option: the id, with the user (and member) in ``resolved``
            if isinstance(value, dict):
                user = value
            else:
                user = self.users.get(str(value)) or make_user(value)
            self._remember(user)
            resolved.setdefault("users", {})[user["id"]] = user
            if guild_id is not None:
                resolved.setdefault("members", {})[user["id"]] = member()
            return user["id"]
        if otype == 7:  # a CHANNEL option: the id, with the channel in ``resolved``
            channel_id = str(value)
            channel = {
                "id": channel_id,
                "type": 0,
                "name": f"channel-{channel_id[-4:]}",
                "permissions": ALL_PERMISSIONS,
            }
            if guild_id is not None:
                channel["guild_id"] = str(guild_id)
            resolved.setdefault("channels", {})[channel_id] = channel
            return channel_id
        return value

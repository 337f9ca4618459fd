"""Stored settings to `GuildSettings` and back: SQLite's JSON text, PostgreSQL's columns.

A stored row is not trusted: it may have been edited by hand or copied from anywhere. Decoding is
bounded (`MAX_SETTINGS_CHARS` of text, `MAX_DEPTH` levels of nesting, checked before the JSON
parser recurses) and strict about types (`decode_settings` raises `ValueError`). What the bot
reads goes through `read_settings` / `settings_from_columns`: a row that fails reads as the
defaults, so one bad row cannot leave a server's commands unanswered, and it is logged once per
process, not once per command.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from typing import Any

from bot.store.settings import GuildSettings

__all__ = [
    "MAX_DEPTH",
    "MAX_SETTINGS_CHARS",
    "decode_settings",
    "encode_settings",
    "read_settings",
    "settings_from_columns",
]

log = logging.getLogger(__name__)

# Ample for every valid row (256 names of 64 characters, 3 channels): anything longer is junk.
MAX_SETTINGS_CHARS = 32 * 1024
# A valid row nests two levels ({"cooldown": [3, 60]}).
MAX_DEPTH = 4
_KEYS = {"disabled", "channels", "cooldown", "pings", "leaderboard"}
_WARNED_SIZE = 1024


def encode_settings(settings: GuildSettings) -> str:
    """The JSON stored for `settings` (keys sorted, so equal settings store equal text).

    Text as SQLite's JSON functions write it too (`bot.store.sqlite_settings` changes it in
    SQL): compact, and UTF-8 left as it is rather than escaped."""
    document: dict[str, Any] = {
        "disabled": sorted(settings.disabled),
        "channels": list(settings.channels),
        "cooldown": list(settings.cooldown) if settings.cooldown is not None else None,
        "pings": settings.pings,
    }
    if not settings.leaderboard:
        document["leaderboard"] = False  # absent means on: older releases wrote no such key
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode_settings(text: str) -> GuildSettings:
    """Settings from stored JSON; a key that is missing (written by an older release) takes its
    default. Raises `ValueError` with the reason for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"settings are {type(text).__name__}, not text")
    if len(text) > MAX_SETTINGS_CHARS:
        raise ValueError(f"settings of {len(text):,} characters (at most {MAX_SETTINGS_CHARS:,})")
    _check_depth(text)
    document = json.loads(text)  # JSONDecodeError is a ValueError
    if not isinstance(document, dict):
        raise ValueError("settings are not a JSON object")
    unknown = set(document) - _KEYS
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    disabled = _list_of(document.get("disabled", []), str, "disabled")
    channels = _list_of(document.get("channels", []), int, "channels")
    cooldown = document.get("cooldown")
    if cooldown is not None:
        cooldown = tuple(_list_of(cooldown, int, "cooldown"))
        if len(cooldown) != 2:
            raise ValueError("cooldown is not [count, seconds]")
    pings = document.get("pings", True)
    if not isinstance(pings, bool):
        raise ValueError("pings is not true or false")
    leaderboard = document.get("leaderboard", True)
    if not isinstance(leaderboard, bool):
        raise ValueError("leaderboard is not true or false")
    return GuildSettings(
        disabled=frozenset(disabled),
        channels=tuple(channels),
        cooldown=cooldown,
        pings=pings,
        leaderboard=leaderboard,
    )


def read_settings(text: object, *, guild_id: int) -> GuildSettings:
    """`decode_settings`, or the defaults (logged once) for a row that fails."""
    try:
        return decode_settings(text)  # type: ignore[arg-type]
    except ValueError as exc:
        _warn_once(guild_id, str(text), exc)
        return GuildSettings()


def settings_from_columns(
    guild_id: int,
    disabled: Any,
    channels: Any,
    cooldown_count: Any,
    cooldown_seconds: Any,
    pings: Any,
    leaderboard: Any,
) -> GuildSettings:
    """A PostgreSQL row (typed columns, schema version 4; `leaderboard` since 6), or the defaults
    (logged once) for a row whose values `GuildSettings` refuses."""
    try:
        cooldown = None if cooldown_count is None else (cooldown_count, cooldown_seconds)
        return GuildSettings(
            disabled=frozenset(disabled),
            channels=tuple(channels),
            cooldown=cooldown,
            pings=pings,
            leaderboard=leaderboard,
        )
    except (ValueError, TypeError) as exc:
        row = repr((disabled, channels, cooldown_count, cooldown_seconds, pings, leaderboard))
        _warn_once(guild_id, row, ValueError(str(exc)))
        return GuildSettings()


def _check_depth(text: str) -> None:
    """Refuse nesting past MAX_DEPTH before the (recursive) JSON parser sees it."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"settings nested deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


def _list_of(value: object, kind: type, name: str) -> list[Any]:
    if not isinstance(value, list) or not all(
        isinstance(item, kind) and not isinstance(item, bool) for item in value
    ):
        raise ValueError(f"{name} is not a list of {kind.__name__}")
    return value


# (guild, digest of the bad row) already logged: every command of the guild reads the row
# while it is not cached, and one line says it all.
_warned: OrderedDict[tuple[int, bytes], None] = OrderedDict()


def _warn_once(guild_id: int, row: str, exc: ValueError) -> None:
    key = (guild_id, hashlib.blake2b(row.encode(errors="replace"), digest_size=16).digest())
    if key in _warned:
        return
    _warned[key] = None
    while len(_warned) > _WARNED_SIZE:
        _warned.popitem(last=False)
    log.warning("Unreadable settings of guild %d, using the defaults: %s", guild_id, str(exc)[:200])

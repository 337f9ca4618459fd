"""Check an interaction's options against what the command declares, before discord.py uses them.

Discord validates option types for its own clients, but a forged or stale payload reaches the bot
as is, and discord.py then hands the raw values to the callback (a bool where a str is declared,
a string where an int is, an unresolved user id): the callback would fail with a TypeError or an
AttributeError. `options_ok` refuses such payloads up front, so the user gets "not a valid
choice" instead of "something went wrong"; `autocomplete_ok` does the same for autocomplete.
"""

from __future__ import annotations

import math
import re
from typing import Any

import discord
from discord import app_commands

__all__ = ["autocomplete_ok", "options_ok"]

_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
_MAX_SAFE_INT = 2**53  # Discord's integer options stay within ±2^53
_RESOLVED_KEY = {6: "users", 7: "channels", 8: "roles", 11: "attachments"}


def _declared(interaction: discord.Interaction[Any]) -> dict[str, app_commands.Parameter] | None:
    command = interaction.command
    if not isinstance(command, app_commands.Command):
        return None  # context menus take no options; unknown commands are handled later
    return {p.display_name: p for p in command.parameters}


def _options(interaction: discord.Interaction[Any]) -> list[Any]:
    options = (interaction.data or {}).get("options") or []
    return options if isinstance(options, list) else [None]


def _value_ok(otype: int, value: Any, resolved: dict[str, Any]) -> bool:
    if otype == 3:
        return isinstance(value, str)
    if otype == 4:
        return (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_SAFE_INT
        )
    if otype == 5:
        return isinstance(value, bool)
    if otype == 10:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value) and abs(value) <= _MAX_SAFE_INT
    if otype in (6, 7, 8, 9, 11):
        if not isinstance(value, str | int) or isinstance(value, bool):
            return False
        key = str(value)
        if not _SNOWFLAKE.fullmatch(key) or int(key) >= 2**63:
            return False
        kinds = ("users", "roles") if otype == 9 else (_RESOLVED_KEY[otype],)
        return any(key in (resolved.get(kind) or {}) for kind in kinds)
    return False


def options_ok(interaction: discord.Interaction[Any]) -> bool:
    """True when every option is declared, once, with its declared type and a value of that
    type (users, roles… resolved), and every required option is present."""
    declared = _declared(interaction)
    if declared is None:
        return True
    resolved = (interaction.data or {}).get("resolved") or {}
    if not isinstance(resolved, dict):
        return False
    seen: set[str] = set()
    for option in _options(interaction):
        if not isinstance(option, dict):
            return False
        name, otype = option.get("name"), option.get("type")
        param = declared.get(name) if isinstance(name, str) else None
        if param is None or name in seen or otype != param.type.value:
            return False
        seen.add(name)
        if not _value_ok(otype, option.get("value"), resolved):
            return False
    return all(name in seen for name, p in declared.items() if p.required)


def autocomplete_ok(interaction: discord.Interaction[Any]) -> bool:
    """True when the focused option is one the command autocompletes, with a text value.
    (Other options of a half-typed command may be anything: they are not used.)"""
    declared = _declared(interaction)
    if declared is None:
        return False
    focused = [o for o in _options(interaction) if isinstance(o, dict) and o.get("focused")]
    if len(focused) != 1:
        return False
    param = declared.get(focused[0].get("name"))  # type: ignore[arg-type]
    if param is None or not param.autocomplete or not isinstance(focused[0].get("value"), str):
        return False
    # The rest may be half-typed, but must be plain values (callbacks read the namespace).
    scalars = (str, int, float, bool)
    return all(
        isinstance(o, dict) and isinstance(o.get("value"), scalars) for o in _options(interaction)
    )

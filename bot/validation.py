"""Check an interaction's options against what the command declares, before discord.py uses them.

Discord validates option types for its own clients, but a forged or stale payload reaches the bot
as is, and discord.py then hands the raw values to the callback (a bool where a str is declared,
a string where an int is, an unresolved user id): the callback would fail with a TypeError or an
AttributeError. `check_options` refuses such payloads up front, and values outside what the command
declares (choices, ranges, lengths), so the callbacks need not check again and the user gets a
clear message instead of "something went wrong"; `autocomplete_ok` does the same for
autocomplete.
"""

from __future__ import annotations

import math
import re
from typing import Any, cast

import discord
from discord import app_commands

from bot.responding import UserError

__all__ = ["autocomplete_ok", "check_options"]

_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
_MAX_SAFE_INT = 2**53  # Discord's integer options stay within ±2^53
_RESOLVED_KEY = {6: "users", 7: "channels", 8: "roles", 11: "attachments"}
_BAD_OPTION = "error_bad_option"
_UNREADABLE = "error_unreadable"  # options or resolved data not shaped as Discord sends them


def _declared(interaction: discord.Interaction[Any]) -> dict[str, app_commands.Parameter] | None:
    command = interaction.command
    if not isinstance(command, app_commands.Command):
        return None  # context menus take no options; unknown commands are handled later
    return {p.display_name: p for p in command.parameters}


def _data(interaction: discord.Interaction[Any]) -> dict[str, Any]:
    return cast(dict[str, Any], interaction.data or {})


def _options(interaction: discord.Interaction[Any]) -> list[Any]:
    """The options of the command that runs (below its subcommand group and subcommand)."""
    options = _data(interaction).get("options")
    while (
        isinstance(options, list)
        and len(options) == 1
        and isinstance(options[0], dict)
        and options[0].get("type") in (1, 2)
    ):
        options = options[0].get("options")
    if options is None:  # left out: no options
        return []
    return options if isinstance(options, list) else [None]  # not a list: refused


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
        kinds = ("users", "roles") if otype == 9 else (_RESOLVED_KEY[otype],)
        return any(_resolved_ok(resolved, kind, value) for kind in kinds)
    return False


def _resolved_ok(resolved: dict[str, Any], kind: str, value: Any) -> bool:
    """`value` is a snowflake whose object is in `resolved[kind]`, carrying that same id (the
    callbacks, and the store, use the object's id)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return False
    key = str(value)
    if not _SNOWFLAKE.fullmatch(key) or int(key) >= 2**63:
        return False
    entries = resolved.get(kind)
    entry = entries.get(key) if isinstance(entries, dict) else None
    return isinstance(entry, dict) and str(entry.get("id")) == key


def _context_target_ok(interaction: discord.Interaction[Any]) -> bool:
    """A context menu's target (a user or a message) is resolved, with its own id."""
    data = _data(interaction)
    resolved = data.get("resolved")
    kind = "users" if data.get("type") == 2 else "messages"
    return isinstance(resolved, dict) and _resolved_ok(resolved, kind, data.get("target_id"))


def _channel_type_ok(param: app_commands.Parameter, resolved: dict[str, Any], value: Any) -> bool:
    """A channel of a type the option declares (Discord's client offers only those)."""
    if not param.channel_types:
        return True
    channel = resolved["channels"][str(value)]  # there: `_value_ok`
    return channel.get("type") in [t.value for t in param.channel_types]


def _within_declaration(param: app_commands.Parameter, value: Any) -> UserError | None:
    """The declared choices, range (numbers) or length (text); Discord's client enforces
    them, a forged payload may not."""
    if param.choices:
        return None if value in {c.value for c in param.choices} else UserError(_BAD_OPTION)
    low, high = param.min_value, param.max_value
    if isinstance(value, str):
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            return UserError(
                "error_option_length", option=param.display_name, min=low or 0, max=high or "∞"
            )
    elif isinstance(value, int | float) and (
        (low is not None and value < low) or (high is not None and value > high)
    ):
        return UserError("error_option_range", option=param.display_name, min=low, max=high)
    return None


def check_options(interaction: discord.Interaction[Any]) -> UserError | None:
    """None when every option is declared, once, with its declared type, a value of that type
    (users, roles… resolved) within the declared choices, range or length, and every required
    option is present; else the error to answer with."""
    if isinstance(interaction.command, app_commands.ContextMenu):
        return None if _context_target_ok(interaction) else UserError(_BAD_OPTION)
    declared = _declared(interaction)
    if declared is None:
        return None
    resolved = _data(interaction).get("resolved") or {}
    if not isinstance(resolved, dict):
        return UserError(_UNREADABLE)
    seen: set[str] = set()
    for option in _options(interaction):
        if not isinstance(option, dict):
            return UserError(_UNREADABLE)
        name, otype, value = option.get("name"), option.get("type"), option.get("value")
        param = declared.get(name) if isinstance(name, str) else None
        if param is None or name in seen or otype != param.type.value:
            return UserError(_BAD_OPTION)
        seen.add(param.display_name)
        if not _value_ok(otype, value, resolved):
            return UserError(_BAD_OPTION)
        if otype == 7 and not _channel_type_ok(param, resolved, value):
            return UserError("error_channel_type")
        if (problem := _within_declaration(param, value)) is not None:
            return problem
    if not all(name in seen for name, p in declared.items() if p.required):
        return UserError(_BAD_OPTION)
    return None


def autocomplete_ok(interaction: discord.Interaction[Any]) -> bool:
    """True when the focused option is one the command autocompletes, with a text value.
    (Other options of a half-typed command may be anything: they are not used.)"""
    declared = _declared(interaction)
    if declared is None:
        return False
    focused = [o for o in _options(interaction) if isinstance(o, dict) and o.get("focused")]
    if len(focused) != 1:
        return False
    name = focused[0].get("name")
    param = declared.get(name) if isinstance(name, str) else None
    if param is None or not param.autocomplete or not isinstance(focused[0].get("value"), str):
        return False
    if focused[0].get("type") != param.type.value:
        return False  # discord.py would leave it out of the namespace the callback reads
    # The rest may be half-typed, but must be plain values (callbacks read the namespace).
    scalars = (str, int, float, bool)
    return all(
        isinstance(o, dict) and isinstance(o.get("value"), scalars) for o in _options(interaction)
    )

"""Events from Discord that discord.py cannot read: dropped or refused, never fatal.

discord.py turns each gateway event into its models in `ConnectionState.parse_<event>`
(discord/state.py), called by `DiscordWebSocket.received_message` (discord/gateway.py) from
the table `ConnectionState.parsers`, with no `try` around it. An event it cannot parse (an
INTERACTION_CREATE whose `member.permissions` is "abc", null or a list; an id that is not a
number) raises out of the shard's reader, and discord.py treats that as fatal: the connection
ends and so does `Client.start`, taking every shard of the process with it. `install`
replaces that table once, at start-up, with one that runs each parser inside a `try`: an event
that fails is dropped with one throttled line (the event type and where parsing failed, never
the payload, which holds the interaction token) and the shard reads the next event. An
INTERACTION_CREATE whose ids are not snowflakes (zero, negative, past 63 bits) or that names no
invoker is dropped the same way before discord.py reads it: it cannot come from Discord, and
the bot would use those ids.

An interaction that parses can still be unreadable for the command tree, which reads its
`data` again when it runs it (`CommandTree._call`: the command's name, the options, `resolved`
turned into users, members and channels): options that are not a list, a resolved member
that is not a member. Those errors are no `AppCommandError`, so discord.py lets them escape
the command's task unanswered. `NekoTree._call` hands them to `refuse_unreadable`, which answers
with the generic "could not read that command", privately.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import traceback
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import discord

from bot import responding
from bot.logs import ThrottledLog

if TYPE_CHECKING:
    from bot.app import NekoBot
    from bot.tree import NekoTree

log = logging.getLogger(__name__)

Parser = Callable[[Any], None]


def where(error: BaseException) -> str:
    """The exception's type and the innermost line it came from ("ValueError at
    discord/interactions.py:289"): enough to find the cause, without the exception's message,
    which may quote the payload."""
    if isinstance(error, MalformedEvent):
        return str(error)
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    path = PurePath(last.filename)
    return f"{type(error).__name__} at {'/'.join(path.parts[-2:])}:{last.lineno}"


class MalformedEvent(Exception):
    """An event that cannot be Discord's (its message names the field, never the value)."""


_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
# The ids of an interaction that discord.py turns into ints and the bot then uses (the store
# refuses ids past 63 bits, and a negative one): a snowflake each, when present.
_INTERACTION_IDS = (
    ("id",),
    ("application_id",),
    ("guild_id",),
    ("channel_id",),
    ("channel", "id"),
    ("member", "user", "id"),
    ("user", "id"),
)


def _snowflake(value: object) -> bool:
    return (
        isinstance(value, str | int)
        and not isinstance(value, bool)
        and _SNOWFLAKE.fullmatch(str(value)) is not None
        and 0 < int(value) < 2**63
    )


def check_interaction(data: Any) -> None:
    """Raise `MalformedEvent` unless each id an INTERACTION_CREATE carries is a snowflake and
    it names who invoked it where discord.py looks (`member` in a server, else `user`:
    without either, discord.py leaves `Interaction.user` unset)."""
    if not isinstance(data, dict):
        raise MalformedEvent("the event is not an object")
    invoker = data.get("member") if data.get("guild_id") is not None else data.get("user")
    if not isinstance(invoker, dict):
        raise MalformedEvent("no invoking member or user")
    for path in _INTERACTION_IDS:
        parent: Any = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent and not _snowflake(parent[path[-1]]):
            raise MalformedEvent(f"{'.'.join(path)} is not a snowflake")


# Checks run before discord.py's parser of the event.
_CHECKS: dict[str, Callable[[Any], None]] = {"INTERACTION_CREATE": check_interaction}


class GuardedParsers(dict[str, Parser]):
    """discord.py's parser table, each parser run inside a `try`. The wrapping happens on
    lookup (the gateway reads `parsers[event]` per event), so a parser set into the table
    later (`parsers["GUILD_CREATE"] = …`) is guarded too."""

    def __init__(self, parsers: Mapping[str, Parser], dropped: ThrottledLog) -> None:
        super().__init__(parsers)
        self.dropped = dropped

    def __getitem__(self, event: str) -> Parser:
        return functools.partial(self._parse, event, super().__getitem__(event))

    def _parse(self, event: str, parser: Parser, data: Any) -> None:
        try:
            if (check := _CHECKS.get(event)) is not None:
                check(data)
            parser(data)
        except Exception as exc:
            self.dropped.warning(
                event, "Dropped a gateway event %s that could not be read (%s)", event, where(exc)
            )


def install(bot: NekoBot) -> ThrottledLog:
    """Guard a bot built but not connected yet (each websocket takes the parser table when it
    is made). Returns the throttled log of dropped and refused events (its `count` is every
    one of them)."""
    unreadable = ThrottledLog(log)
    state = bot._connection
    state.parsers = GuardedParsers(state.parsers, unreadable)
    _guard_dynamic_items(state._view_store, bot.tree)
    return unreadable


def _guard_dynamic_items(view_store: Any, tree: NekoTree) -> None:
    """A press of a persistent button (`discord.ui.DynamicItem`) runs in a task of discord.py's
    that first rebuilds the pressed message's components (`View.from_message`): a forged
    message whose flags or custom_ids are not what Discord sends fails there, outside every
    handler. Refuse such a press like an unreadable command."""
    schedule = view_store.schedule_dynamic_item_call

    async def guarded(
        component_type: int,
        factory: Any,
        interaction: discord.Interaction[Any],
        custom_id: str,
        match: Any,
    ) -> None:
        try:
            await schedule(component_type, factory, interaction, custom_id, match)
        except Exception as exc:
            await refuse_unreadable(tree, interaction, exc)

    view_store.schedule_dynamic_item_call = guarded


async def refuse_unreadable(
    tree: NekoTree, interaction: discord.Interaction[Any], error: Exception
) -> None:
    """Answer an interaction the command tree could not read: no suggestions for an
    autocomplete, else the generic "could not read that command" (ephemeral). Never raises."""
    tree.client.unreadable_events.warning(
        f"interaction {interaction.type}",
        "Refused an interaction that could not be read (%s)",
        where(error),
    )
    _pin_no_command(interaction)
    if interaction.type is discord.InteractionType.autocomplete:
        with contextlib.suppress(discord.HTTPException):
            if not interaction.response.is_done():
                await interaction.response.autocomplete([])
        return
    await tree.report(interaction, responding.UserError("error_unreadable"))


def _pin_no_command(interaction: discord.Interaction[Any]) -> None:
    """`Interaction.command` walks `data` again on every read and would raise in the error
    answer too: when it cannot be read, fill discord.py's cache of it with None (the slot its
    own `CommandTree._call` fills the same way)."""
    try:
        interaction.command  # noqa: B018 - the read is the check
    except Exception:
        interaction._cs_command = None  # type: ignore[attr-defined]

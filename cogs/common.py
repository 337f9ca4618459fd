"""Glue shared by the cogs: where commands may be used, fixed choices, category autocomplete."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from discord import app_commands

from bot import render, tree, wording
from bot.nekos import Category, Kind

AUTOCOMPLETE_MAX = 25
# `extras` the gate (bot.tree) reads: commands that answer in public (the server's channel rule
# applies), that fetch from nekos.best (cooldowns apply, disabled categories are refused).
PUBLIC = {tree.PUBLIC: True}
FETCHES = {tree.FETCHES: True, tree.PUBLIC: True}
SEARCHES = {tree.FETCHES: True, tree.PUBLIC: True, tree.SEARCH: True}
# Option types shared by several commands (declared once: the tree checks them, bot.validation).
Note = app_commands.Range[str, 1, render.NOTE_MAX]
Amount = app_commands.Range[int, 1, render.IMAGES_PER_MESSAGE]


def contexts(command: Any) -> Any:
    """Installable to a server or to a member's own account, and usable in servers, in DMs with
    the bot and in private channels (counted only where the bot is installed in the server)."""
    command = app_commands.allowed_installs(guilds=True, users=True)(command)
    return app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)(command)


def category_command(
    category: str, name: str, kind: Kind, callback: Callable[..., Any]
) -> app_commands.Command[Any, ..., Any]:
    """The command a category gets: its name, its description from the wording table."""
    command: app_commands.Command[Any, ..., Any] = app_commands.Command(
        name=name,
        description=wording.description(category, kind.value),
        callback=callback,
        extras=FETCHES | {tree.CATEGORY: category, tree.KIND: kind.value},
    )
    return contexts(command)


def category_choices(
    categories: Sequence[Category], current: str
) -> list[app_commands.Choice[str]]:
    """Autocomplete: prefix matches first, then substring matches; at most 25."""
    current = (current or "").strip().lower()[:32]
    names = [c.name for c in categories]
    prefix = [n for n in names if n.startswith(current)]
    inner = [n for n in names if current in n and not n.startswith(current)]
    return [app_commands.Choice(name=n, value=n) for n in (prefix + inner)[:AUTOCOMPLETE_MAX]]


def worded_choices(key: str, values: Sequence[str]) -> list[app_commands.Choice[str]]:
    """An option's fixed choices, each named by the wording key `key` + its value (translated
    per locale by the tree's translator)."""
    return [
        app_commands.Choice(
            name=app_commands.locale_str(wording.message(key + value), key=key + value),
            value=value,
        )
        for value in values
    ]

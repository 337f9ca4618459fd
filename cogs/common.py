"""Glue shared by the cogs: where commands may be used, and category autocomplete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from discord import app_commands

from bot.nekos import Category

AUTOCOMPLETE_MAX = 25


def contexts(command: Any) -> Any:
    """Usable in servers and in DMs with the bot (no counters there)."""
    command = app_commands.allowed_installs(guilds=True, users=False)(command)
    return app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)(command)


def category_choices(
    categories: Sequence[Category], current: str
) -> list[app_commands.Choice[str]]:
    """Autocomplete: prefix matches first, then substring matches; at most 25."""
    current = (current or "").strip().lower()[:32]
    names = [c.name for c in categories]
    prefix = [n for n in names if n.startswith(current)]
    inner = [n for n in names if current in n and not n.startswith(current)]
    return [app_commands.Choice(name=n, value=n) for n in (prefix + inner)[:AUTOCOMPLETE_MAX]]

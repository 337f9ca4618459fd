"""Glue shared by the cogs: where commands may be used, category autocomplete, and the set of
commands generated from the category list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from discord import app_commands

from bot.nekos import Category, Kind

AUTOCOMPLETE_MAX = 25
Command = app_commands.Command[Any, ..., Any]


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


class GeneratedCommands:
    """Exactly one command per planned category of one kind, kept in step with the plan."""

    def __init__(
        self, tree: app_commands.CommandTree, kind: Kind, make: Callable[[str, str], Command]
    ) -> None:
        self.tree = tree
        self.kind = kind
        self.make = make  # (category, command name) -> command
        self.commands: dict[str, Command] = {}

    def apply(self, plan: dict[str, str], categories: Sequence[Category]) -> None:
        wanted = {
            c.name: plan[c.name] for c in categories if c.kind is self.kind and c.name in plan
        }
        for category, command in list(self.commands.items()):
            if wanted.get(category) != command.name:
                self.tree.remove_command(command.name)
                del self.commands[category]
        for category, name in wanted.items():
            if category not in self.commands:
                command = self.make(category, name)
                self.tree.add_command(command, override=True)
                self.commands[category] = command

    def clear(self) -> None:
        for command in self.commands.values():
            self.tree.remove_command(command.name)
        self.commands.clear()

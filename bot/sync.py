"""Commands generated from the category list, and their registration with Discord.

One command per category (named by `bot.naming`), kept in step with the catalog; registered
only when the payload changed: a bulk overwrite replaces every command and creating commands is
limited per day, so the hash of the last registered payload is kept in the data directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from bot import naming
from bot.nekos import Category, Kind
from bot.store.files import write_private

log = logging.getLogger(__name__)

Command = app_commands.Command[Any, ..., Any]


class GeneratedCommands:
    """Exactly one command per planned category of one kind (a cog's share of the plan)."""

    def __init__(self, kind: Kind, make: Callable[[str, str], Command]) -> None:
        self.kind = kind
        self.make = make  # (category, command name) -> command
        self.commands: dict[str, Command] = {}

    def apply(
        self, tree: app_commands.CommandTree[Any], plan: dict[str, str], live: Sequence[Category]
    ) -> None:
        wanted = {c.name: plan[c.name] for c in live if c.kind is self.kind and c.name in plan}
        for category, command in list(self.commands.items()):
            if wanted.get(category) != command.name:
                tree.remove_command(command.name)
                del self.commands[category]
        for category, name in wanted.items():
            if category not in self.commands:
                command = self.make(category, name)
                tree.add_command(command, override=True)
                self.commands[category] = command

    def clear(self, tree: app_commands.CommandTree[Any]) -> None:
        for command in self.commands.values():
            tree.remove_command(command.name)
        self.commands.clear()


class CommandSync:
    """Plans the per-category commands, applies the plan to every `GeneratedCommands`, and
    registers the result when it changed."""

    def __init__(
        self, tree: app_commands.CommandTree[Any], *, data_dir: Path, guild_id: int | None
    ) -> None:
        self.tree = tree
        self.data_dir = data_dir
        self.guild_id = guild_id
        self.names: dict[str, str] = {}  # category → its own command, when it has one
        self.generated: list[GeneratedCommands] = []
        # False when the application does not allow user installs: every command is then
        # offered for servers only (Discord would refuse user installs it does not allow).
        self.user_installs = True
        self._lock = asyncio.Lock()

    async def apply(self, live: Sequence[Category], *, application_id: int) -> None:
        """(Re)build the per-category commands for `live` categories and sync if changed."""
        async with self._lock:
            own = {name for g in self.generated for name in (c.name for c in g.commands.values())}
            fixed = [
                c.name
                for c in self.tree.get_commands(type=discord.AppCommandType.chat_input)
                if c.name not in own
            ]
            self.names = naming.plan([c.name for c in live], fixed, naming.MAX_CHAT_COMMANDS)
            for generated in self.generated:
                generated.apply(self.tree, self.names, live)
            if not self.user_installs:
                servers_only = app_commands.AppInstallationType(guild=True, user=False)
                for command in _every_command(self.tree):
                    command.allowed_installs = servers_only
            await self._register(application_id)

    async def _register(self, application_id: int) -> None:
        guild = discord.Object(self.guild_id) if self.guild_id else None
        if guild is not None:
            self.tree.clear_commands(guild=guild)
            self.tree.copy_global_to(guild=guild)
        total = len(self.tree.get_commands(guild=guild))
        scope = f"in server {self.guild_id}" if self.guild_id else "globally"
        try:
            synced = await sync_if_changed(
                self.tree,
                data_dir=self.data_dir,
                application_id=application_id,
                guild_id=self.guild_id,
            )
        except discord.HTTPException as exc:
            log.error("Could not register commands with Discord: %s", exc)
            return
        if synced is None:
            log.info("%d commands unchanged %s: nothing registered", total, scope)
        else:
            log.info("Registered %d commands %s", synced, scope)


def _every_command(tree: app_commands.CommandTree[Any]) -> list[Any]:
    types = (
        discord.AppCommandType.chat_input,
        discord.AppCommandType.user,
        discord.AppCommandType.message,
    )
    return [command for kind in types for command in tree.get_commands(type=kind)]


async def payload_hash(
    tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
) -> str:
    """The hash of exactly what `tree.sync` sends: the translated payload."""
    commands = tree.get_commands(guild=guild)
    translator = tree.translator
    if translator is not None:
        payload = [await command.get_translated_payload(tree, translator) for command in commands]
    else:
        payload = [command.to_dict(tree) for command in commands]
    payload.sort(key=lambda c: (c.get("type", 1), c["name"]))
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _hash_file(data_dir: Path, application_id: int, guild_id: int | None) -> Path:
    scope = f"guild-{guild_id}" if guild_id else "global"
    return data_dir / f"commands-{application_id}-{scope}.sha256"


async def sync_if_changed(
    tree: app_commands.CommandTree[Any],
    *,
    data_dir: Path,
    application_id: int,
    guild_id: int | None,
) -> int | None:
    """Sync when the payload differs from the last one registered; returns how many commands
    were registered, or None when nothing changed."""
    guild = discord.Object(guild_id) if guild_id else None
    digest = await payload_hash(tree, guild)
    path = _hash_file(data_dir, application_id, guild_id)
    try:
        if path.read_text().strip() == digest:
            return None
    except OSError:
        pass
    registered = await tree.sync(guild=guild)
    write_private(path, digest)
    return len(registered)

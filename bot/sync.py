"""Commands generated from the category list, and their registration with Discord.

One command per category (named by `bot.naming`), kept in step with the catalog; registered
only when the payload changed: a bulk overwrite replaces every command and creating commands is
limited per day, so the coordinator keeps the hash of the last registered payload (in the data
directory for one process, in PostgreSQL for several).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord import app_commands

from bot import naming
from bot.coordination import Coordinator
from bot.nekos import Category, Kind

log = logging.getLogger(__name__)

# How often a process that does not register looks for a new registered command set.
FOLLOW_INTERVAL = 30.0

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
    registers the result when it changed.

    Only the process that owns shard 0 registers (`registers`), through the coordinator, which
    remembers the last registered digest per scope. The other processes follow: they poll that
    digest and refresh their categories when a new command set was registered
    (`follow`), so every process understands the commands Discord shows."""

    def __init__(
        self,
        tree: app_commands.CommandTree[Any],
        *,
        coordinator: Coordinator,
        guild_id: int | None,
        registers: bool = True,
        follow_interval: float = FOLLOW_INTERVAL,
    ) -> None:
        self.tree = tree
        self.coordinator = coordinator
        self.guild_id = guild_id
        self.registers = registers
        self.follow_interval = follow_interval
        self.names: dict[str, str] = {}  # category → its own command, when it has one
        self.generated: list[GeneratedCommands] = []
        # False when the application does not allow user installs: every command is then
        # offered for servers only (Discord would refuse user installs it does not allow).
        self.user_installs = True
        self._lock = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None

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
            self._copy_to_guild()
            if self.registers:
                await self._register(application_id)

    def _copy_to_guild(self) -> None:
        if self.guild_id:
            guild = discord.Object(self.guild_id)
            self.tree.clear_commands(guild=guild)
            self.tree.copy_global_to(guild=guild)

    async def _register(self, application_id: int) -> None:
        guild = discord.Object(self.guild_id) if self.guild_id else None
        total = len(self.tree.get_commands(guild=guild))
        where = f"in server {self.guild_id}" if self.guild_id else "globally"
        try:
            synced = await sync_if_changed(
                self.tree,
                coordinator=self.coordinator,
                application_id=application_id,
                guild_id=self.guild_id,
            )
        except discord.HTTPException as exc:
            log.error("Could not register commands with Discord: %s", exc)
            return
        if synced is None:
            log.info("%d commands unchanged %s: nothing registered", total, where)
        else:
            log.info("Registered %d commands %s", synced, where)

    async def digest(self) -> str:
        """The digest of this process's command set (what `register` would send)."""
        guild = discord.Object(self.guild_id) if self.guild_id else None
        return await payload_hash(self.tree, guild)

    def follow(self, application_id: int, refresh: Callable[[], Awaitable[Any]]) -> None:
        """In a process that does not register: poll the registered digest and `refresh()`
        (the categories, which rebuilds the commands) when a new command set was registered
        that differs from ours. Nothing to do in the registering process."""
        if self.registers or self._follower is not None:
            return
        scope = command_scope(application_id, self.guild_id)
        self._follower = asyncio.create_task(
            self._follow(scope, refresh), name="nekocord-command-follower"
        )

    async def _follow(self, scope: str, refresh: Callable[[], Awaitable[Any]]) -> None:
        seen: str | None = None
        while True:
            try:
                registered = await self.coordinator.registered_digest(scope)
                # Once per new registration: a refresh that does not reach the same set (the
                # categories differ for a while) is not repeated every poll.
                if registered is not None and registered != seen:
                    seen = registered
                    if registered != await self.digest():
                        log.info("Another process registered new commands: refreshing")
                        await refresh()
            except Exception:
                log.exception("Following the registered commands failed")
            await asyncio.sleep(self.follow_interval)

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None


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


def command_scope(application_id: int, guild_id: int | None) -> str:
    """The coordinator's name for a command set: this application's global commands, or its
    commands in one server (in a single process, the digest file
    `commands-<scope>.sha256` in DATA_DIR, as before coordination existed)."""
    return f"{application_id}-guild-{guild_id}" if guild_id else f"{application_id}-global"


async def sync_if_changed(
    tree: app_commands.CommandTree[Any],
    *,
    coordinator: Coordinator,
    application_id: int,
    guild_id: int | None,
) -> int | None:
    """Sync when the payload differs from the last one registered (by any process); returns
    how many commands were registered, or None when nothing changed."""
    guild = discord.Object(guild_id) if guild_id else None
    digest = await payload_hash(tree, guild)
    registered: list[Any] = []

    async def register() -> None:
        registered.extend(await tree.sync(guild=guild))

    scope = command_scope(application_id, guild_id)
    if not await coordinator.register_commands(scope, digest, register):
        return None
    return len(registered)

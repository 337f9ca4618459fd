"""Register commands with Discord only when their definition changed.

A bulk overwrite replaces all commands and creating commands is limited per day, so the bot
keeps a hash of the last registered payload in the data directory and syncs only on change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import discord
from discord import app_commands

log = logging.getLogger(__name__)


def payload_hash(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    commands = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    commands.sort(key=lambda c: (c.get("type", 1), c["name"]))
    blob = json.dumps(commands, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _hash_file(data_dir: Path, application_id: int, guild_id: int | None) -> Path:
    scope = f"guild-{guild_id}" if guild_id else "global"
    return data_dir / f"commands-{application_id}-{scope}.sha256"


async def sync_if_changed(
    tree: app_commands.CommandTree,
    *,
    data_dir: Path,
    application_id: int,
    guild_id: int | None,
) -> int | None:
    """Sync when the payload differs from the last one registered; returns how many commands
    were registered, or None when nothing changed."""
    guild = discord.Object(guild_id) if guild_id else None
    digest = payload_hash(tree, guild)
    path = _hash_file(data_dir, application_id, guild_id)
    try:
        if path.read_text().strip() == digest:
            return None
    except OSError:
        pass
    registered = await tree.sync(guild=guild)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(digest)
    os.replace(tmp, path)
    return len(registered)

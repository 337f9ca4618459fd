"""The processes bench.memory starts besides `python -m bot` (BENCH_MEMORY_CHILD says which):

- `floor`: the leanest discord.py bot over SHARD_COUNT shards in one process
  (`AutoShardedClient`, no intents, no member or message cache, no chunking, the benchmark's
  commands); it prints READY_LINE with its server count once every shard is ready.
- `full-cache`: `python -m bot` with discord.py's full guild cache (`bot.guild_cache.LEAN`
  off): nekocord as it was before the lean cache, for the before/after comparison.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

import discord
from discord import app_commands

from bench.common import CATEGORIES, READY_LINE, main, make_command

CHILD_ENV = "BENCH_MEMORY_CHILD"


async def answer(interaction: discord.Interaction[Any], category: str, user: Any) -> None:
    await interaction.response.send_message(content=category)


class ShardedFloor(discord.AutoShardedClient):
    def __init__(self, shard_count: int) -> None:
        super().__init__(
            intents=discord.Intents.none(),
            member_cache_flags=discord.MemberCacheFlags.none(),
            max_messages=None,
            chunk_guilds_at_startup=False,
            guild_ready_timeout=0.5,  # nekocord's
            shard_count=shard_count,
        )
        self.tree = app_commands.CommandTree(self)
        for category in CATEGORIES:
            self.tree.add_command(make_command(category, answer))

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # the stand-in's max_concurrency covers every shard, as for nekocord

    async def on_ready(self) -> None:
        print(f"{READY_LINE} guilds={len(self.guilds)}", flush=True)


def run_full_cache() -> None:
    import bot.guild_cache

    bot.guild_cache.LEAN = False
    sys.argv = ["bot"]
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    which = os.environ.get(CHILD_ENV)
    if which == "floor":
        main(ShardedFloor(int(os.environ.get("SHARD_COUNT", "1"))))  # type: ignore[arg-type]
    elif which == "full-cache":
        run_full_cache()
    else:
        sys.exit(f"{CHILD_ENV} must be floor or full-cache")

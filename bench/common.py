"""What the floor and the naive bot share: configuration from the same environment variables as
nekocord, the endpoint patching, the commands, and the ready line the driver waits for."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import discord
import yarl
from discord import app_commands

from bench.variants import run

# The GIF categories the workload uses; the floor and the naive bot register exactly these.
CATEGORIES = ("hug", "pat", "kiss", "cuddle", "wave", "poke", "slap", "smile")
READY_LINE = "BENCH READY"

Answer = Callable[[discord.Interaction[Any], str, "discord.User | None"], Awaitable[None]]


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"{name} is not set")
    return value


def apply_discord_endpoints() -> None:
    """As bot.__main__.apply_discord_endpoints: REST base and gateway from the environment."""
    discord.http.Route.BASE = env("DISCORD_API_BASE", "https://discord.com/api/v10").rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        env("DISCORD_GATEWAY_URL", "wss://gateway.discord.gg/")
    )


def make_command(category: str, answer: Answer) -> app_commands.Command[Any, ..., Any]:
    async def callback(
        interaction: discord.Interaction[Any], user: discord.User | None = None
    ) -> None:
        await answer(interaction, category, user)

    return app_commands.Command(
        name=category, description=f"Send a {category} GIF", callback=callback
    )


class BenchClient(discord.Client):
    """A plain `discord.Client` with a command tree. `lean`: no intents, no member or message
    cache, no chunking (the least a slash-command bot can ask for); otherwise discord.py's
    defaults (default intents and caches). Either way `guild_ready_timeout` is nekocord's
    0.5 s so that on_ready comparisons are fair. Commands are synced at start when
    BENCH_SYNC=1 (a warm restart of a bot whose commands are registered already skips it)."""

    def __init__(self, answer: Answer, *, lean: bool = False) -> None:
        if lean:
            super().__init__(
                intents=discord.Intents.none(),
                member_cache_flags=discord.MemberCacheFlags.none(),
                max_messages=None,
                chunk_guilds_at_startup=False,
                guild_ready_timeout=0.5,
            )
        else:
            super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.5)
        self.tree = app_commands.CommandTree(self)
        for category in CATEGORIES:
            self.tree.add_command(make_command(category, answer))
        self.sync = env("BENCH_SYNC", "1") == "1"

    async def setup_hook(self) -> None:
        if self.sync:
            await self.tree.sync()

    async def on_ready(self) -> None:
        print(f"{READY_LINE} guilds={len(self.guilds)}", flush=True)


def main(
    client: BenchClient,
    *,
    before: Callable[[], Awaitable[None]] | None = None,
    after: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then close cleanly, on the loop BENCH_LOOP names (the one
    nekocord runs on; see bench.variants)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    apply_discord_endpoints()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if before is not None:
            await before()
        async with client:
            task = asyncio.create_task(client.start(env("DISCORD_TOKEN")))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            await client.close()
            stopper.cancel()
            if after is not None:
                await after()
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    run(runner())

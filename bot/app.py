"""The bot: owns its collaborators (handed in), loads the cogs, follows the category list.

Built like discord.py's `examples/advanced_startup.py`: the HTTP session, nekos.best client,
pool, catalog and store are created by the caller (`bot.__main__` or a test) and passed in,
with `async with` lifetimes. Interactions pass `bot.tree.NekoTree`; commands generated from the
categories and their registration live in `bot.sync`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import discord
from discord.ext import commands

from bot import buttons, event_guard, guild_cache, render
from bot.config import Config
from bot.cooldown import MemberCooldowns
from bot.coordination import Coordinator, LocalCoordinator
from bot.logs import ThrottledLog
from bot.nekos import Category
from bot.nekos.catalog import Catalog
from bot.nekos.client import NekosClient
from bot.nekos.pool import Pool
from bot.shards import CURRENT_SHARD, ShardAware, ShardedClient, connect_timeout, owns_first_shard
from bot.store import GuildSettings, Store, StoreError
from bot.sync import CommandSync
from bot.translator import Translator
from bot.tree import NekoTree

if TYPE_CHECKING:
    from bot.health import Heartbeat

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.actions",
    "cogs.images",
    "cogs.search",
    "cogs.credits",
    "cogs.meta",
    "cogs.config",
    "cogs.social",
)
# The permissions the bot needs where it is invited: answers are interaction responses, so only
# embedding links and viewing the channel matter.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, embed_links=True, use_external_emojis=True
)
SHUTDOWN_GRACE = 3.0
DEFAULT_SETTINGS = GuildSettings()
WARM_CATEGORIES = ("hug", "pat", "kiss", "cuddle", "neko", "waifu")


class NekoBot(ShardAware, commands.Bot):
    def __init__(
        self,
        *,
        config: Config,
        nekos: NekosClient,
        pool: Pool,
        catalog: Catalog,
        store: Store,
        coordinator: Coordinator | None = None,
        heartbeat: Heartbeat | None = None,
        extensions: Sequence[str] = EXTENSIONS,
        guild_ready_timeout: float = 0.5,
        store_errors: ThrottledLog | None = None,
        **options: Any,  # for discord.py's client: the shards of a `ShardedNekoBot`
    ) -> None:
        # Only the guilds intent (join/leave, no privileged intents); no member or message cache
        # and no chunking: a slash-command bot needs none of it. Of each server, only its id is
        # kept (bot.guild_cache says why).
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            max_messages=None,
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            # Interactions are served before on_ready anyway; don't wait long for guild streams.
            guild_ready_timeout=guild_ready_timeout,
            allowed_mentions=render.NO_PINGS,
            tree_cls=NekoTree,
            **options,
        )
        guild_cache.install(self._connection)
        # A gateway event discord.py cannot parse is dropped, not fatal (bot.event_guard). After
        # the guild cache's parsers are in the table: the guard wraps whatever it holds.
        self.unreadable_events = event_guard.install(self)
        self.config = config
        self.nekos = nekos
        self.pool = pool
        self.initial_extensions = tuple(extensions)
        self.catalog = catalog
        self.store = store
        self.coordinator = coordinator or LocalCoordinator(config.data_dir)
        self.heartbeat = heartbeat
        self.ready_shards = set()
        # A failing database is logged at most once a minute per kind of failure, not per command.
        self.store_errors = store_errors or ThrottledLog(logging.getLogger("bot.store"))
        self.cooldowns = MemberCooldowns(config.cooldown, config.search_cooldown)
        self.commands_sync = CommandSync(
            self.tree,
            coordinator=self.coordinator,
            guild_id=config.dev_guild_id,
            registers=owns_first_shard(config.shard_ids),
        )

    @property
    def tree(self) -> NekoTree:
        return cast(NekoTree, super().tree)

    @property
    def invite_url(self) -> str | None:
        if self.application_id is None:
            return None
        return discord.utils.oauth_url(
            self.application_id,
            permissions=INVITE_PERMISSIONS,
            scopes=("bot", "applications.commands"),
        )

    async def setup_hook(self) -> None:
        assert self.application_id is not None
        await self.claim_shards()  # before anything of a shard runs, or commands register
        self.nekos.set_contact(
            self.config.nekos_contact
            or f"https://discord.com/oauth2/authorize?client_id={self.application_id}"
        )
        await self.catalog.load()
        await self.tree.set_translator(Translator())
        if self.application is not None and self.application.user_integration_config is None:
            self.commands_sync.user_installs = False
            log.warning(
                "User install is off for this application, so commands are offered in servers "
                "only. To let members add nekocord to their own account, enable User Install in "
                "the developer portal (Installation)."
            )
        for extension in self.initial_extensions:
            await self.load_extension(extension)
        self.catalog.subscribe(self.on_categories_changed)
        await self.commands_sync.apply(self.catalog.live(), application_id=self.application_id)
        self.commands_sync.follow(self.application_id, self.catalog.refresh)
        self.pool.warm([c for c in WARM_CATEGORIES if c in self.catalog])
        self.catalog.start()
        if self.heartbeat is not None:
            self.heartbeat.start(self)
        log.info("Invite me with %s", self.invite_url)

    async def settings(self, guild_id: int | None) -> GuildSettings:
        """A server's settings (the defaults in DMs, or while the database cannot be read)."""
        if guild_id is None:
            return DEFAULT_SETTINGS
        try:
            return await self.store.guild_settings(guild_id)
        except StoreError as exc:
            self.store_errors.error("read", "Could not read server settings: %s", exc)
            return DEFAULT_SETTINGS

    async def on_categories_changed(
        self, added: Sequence[Category], removed: Sequence[Category]
    ) -> None:
        """The periodic refresh found new or removed categories: update and sync at once."""
        if added:
            log.info("New categories: %s", ", ".join(c.name for c in added))
        if removed:
            log.info("Categories no longer available: %s", ", ".join(c.name for c in removed))
        await self.commands_sync.apply(self.catalog.live(), application_id=self.application_id or 0)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        await buttons.answer_unknown_press(interaction)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server: its data goes too (privacy note in the README)."""
        try:
            await self.store.forget_guild(guild_id=guild.id)
            log.info("Removed from server %s: its data was deleted", guild.id)
        except StoreError as exc:
            self.store_errors.error("forget_guild", "Could not delete server data: %s", exc)

    async def on_ready(self) -> None:
        self._beat()
        log.info(
            "Ready as %s in %d servers with %d categories (%s)",
            self.user,
            len(self.guilds),
            len(self.catalog),
            self.catalog.source,
        )

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop taking interactions, let those being answered finish (briefly), then close."""
        left = await self.tree.drain(grace)
        if left:
            log.warning("Closing with %d interactions still in flight", left)
        await self.close()

    async def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.commands_sync.stop()
        await self.catalog.aclose()
        await self.pool.aclose()
        await super().close()


class ShardedNekoBot(ShardedClient, NekoBot, commands.AutoShardedBot):
    """The bot over several gateway connections (SHARD_COUNT): discord.py's `AutoShardedBot`
    running the shards this process owns (`bot.shards`)."""

    async def on_ready(self) -> None:
        CURRENT_SHARD.set(None)  # every owned shard is ready: a line about the whole process
        await super().on_ready()


def build_bot(config: Config, **collaborators: Any) -> NekoBot:
    """The bot `config` asks for: sharded with SHARD_COUNT (all shards, or SHARD_IDS), else
    one gateway connection as discord.py's plain `Bot`."""
    if config.shard_count is None:
        return NekoBot(config=config, **collaborators)
    return ShardedNekoBot(
        config=config,
        shard_count=config.shard_count,
        shard_ids=list(config.shard_ids) if config.shard_ids is not None else None,
        shard_connect_timeout=connect_timeout(config.shard_count),
        **collaborators,
    )

"""The bot: owns its collaborators (handed in), loads the cogs, keeps commands in sync.

Built like discord.py's `examples/advanced_startup.py`: the HTTP session, nekos.best client,
pool, catalog and store are created by the caller (`bot.__main__` or a test) and passed in,
with `async with` lifetimes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import discord
from discord import app_commands
from discord.ext import commands

from bot import naming, render, responding, sync, validation, wording
from bot.config import Config
from bot.nekos import Category, Kind
from bot.nekos.catalog import Catalog
from bot.nekos.client import NekosClient
from bot.nekos.pool import Pool
from bot.store import Store, StoreError

if TYPE_CHECKING:
    from bot.health import Heartbeat

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.actions", "cogs.images", "cogs.search", "cogs.credits", "cogs.meta")
# Slash commands with fixed names; categories never take these names (see bot.naming).
FIXED_COMMANDS = (
    "action",
    "image",
    "search",
    "source",
    "help",
    "stats",
    "optout",
    "optin",
    "forgetme",
)
# The permissions the bot needs where it is invited: answers are interaction responses, so only
# embedding links and viewing the channel matter.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, embed_links=True, use_external_emojis=True
)
SHUTDOWN_GRACE = 3.0
# Interaction ids remembered to drop gateway redeliveries (a replay comes within minutes).
SEEN_INTERACTIONS = 10_000
WARM_CATEGORIES = ("hug", "pat", "kiss", "cuddle", "neko", "waifu")


class CategoryCommands(Protocol):
    """Implemented by cogs that generate one command per category."""

    def apply_command_plan(self, plan: dict[str, str], categories: Sequence[Category]) -> None: ...


class ThrottledLog:
    """Logs a recurring failure at most once per `every` seconds (not once per command)."""

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self._logger = logger
        self._every = every
        self._last: dict[str, float] = {}
        self.suppressed = 0

    def error(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -self._every) >= self._every:
            self._last[key] = now
            self._logger.error(message + " (%d similar suppressed)", *args, self.suppressed)
            self.suppressed = 0
        else:
            self.suppressed += 1


class NekoBot(commands.Bot):
    def __init__(
        self,
        *,
        config: Config,
        nekos: NekosClient,
        pool: Pool,
        catalog: Catalog,
        store: Store,
        heartbeat: Heartbeat | None = None,
        extensions: Sequence[str] = EXTENSIONS,
        guild_ready_timeout: float = 0.5,
    ) -> None:
        # Only the guilds intent (join/leave, no privileged intents); no member or message cache
        # and no chunking: a slash-command bot needs none of it.
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
            tree_cls=app_commands.CommandTree,
        )
        self.config = config
        self.nekos = nekos
        self.pool = pool
        self.catalog = catalog
        self.store = store
        self.heartbeat = heartbeat
        self.initial_extensions = tuple(extensions)
        self.button_handlers: dict[type[render.ActionButton], render.ButtonHandler] = {}
        self.command_names: dict[str, str] = {}  # category → its own command, when it has one
        self.removed_categories: set[str] = set()
        self.registered_commands: int | None = None
        self.store_errors = ThrottledLog(logging.getLogger("bot.store"))
        self.accepting = True
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._sync_lock = asyncio.Lock()
        self._seen_interactions: OrderedDict[int, None] = OrderedDict()
        self.tree.on_error = self.on_tree_error
        self.tree.interaction_check = self.accepting_check

    # -- start-up -----------------------------------------------------------------------------

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
        self.nekos.set_contact(
            self.config.nekos_contact
            or f"https://discord.com/oauth2/authorize?client_id={self.application_id}"
        )
        await self.catalog.load()
        for extension in self.initial_extensions:
            await self.load_extension(extension)
        self.add_dynamic_items(*render.PERSISTENT_BUTTONS)
        self.catalog.subscribe(self.on_categories_changed)
        await self.apply_categories()
        self.pool.warm([c for c in WARM_CATEGORIES if c in self.catalog.categories])
        self.catalog.start()
        if self.heartbeat is not None:
            self.heartbeat.start(self)
        log.info("Invite me with %s", self.invite_url)

    async def apply_categories(self) -> None:
        """(Re)build the per-category commands from the catalog and sync if they changed."""
        async with self._sync_lock:
            categories = [
                c for c in self.catalog.categories.values() if c.name not in self.removed_categories
            ]
            self.command_names = naming.plan(
                [c.name for c in categories], FIXED_COMMANDS, naming.MAX_CHAT_COMMANDS
            )
            for cog in self.cogs.values():
                apply = getattr(cog, "apply_command_plan", None)
                if apply is not None:
                    apply(self.command_names, categories)
            await self._sync()

    async def _sync(self) -> None:
        guild_id = self.config.dev_guild_id
        if guild_id:
            guild = discord.Object(guild_id)
            self.tree.clear_commands(guild=guild)
            self.tree.copy_global_to(guild=guild)
        total = len(self.tree.get_commands(guild=discord.Object(guild_id) if guild_id else None))
        try:
            synced = await sync.sync_if_changed(
                self.tree,
                data_dir=self.config.data_dir,
                application_id=self.application_id or 0,
                guild_id=guild_id,
            )
        except discord.HTTPException as exc:
            log.error("Could not register commands with Discord: %s", exc)
            return
        scope = f"in server {guild_id}" if guild_id else "globally"
        if synced is None:
            log.info("%d commands unchanged %s: nothing registered", total, scope)
        else:
            self.registered_commands = synced
            log.info("Registered %d commands %s", synced, scope)

    async def on_categories_changed(
        self, added: Sequence[Category], removed: Sequence[Category]
    ) -> None:
        """The periodic refresh found new or removed categories: update and sync at once."""
        for category in added:
            self.removed_categories.discard(category.name)
        self.removed_categories.update(c.name for c in removed)
        if added:
            log.info("New categories: %s", ", ".join(c.name for c in added))
        if removed:
            log.info("Categories no longer available: %s", ", ".join(c.name for c in removed))
        await self.apply_categories()

    def category(self, name: str, kind: Kind | None = None) -> Category:
        """A live category by name; a removed one answers "no longer available", a name that
        never was one "doesn't exist" (without echoing what the user typed)."""
        category = self.catalog.categories.get(name)
        if name in self.removed_categories:
            raise responding.CategoryGone(name)
        if category is None:
            raise responding.UserError("error_unknown_category")
        if kind is not None and category.kind is not kind:
            raise responding.UserError("error_wrong_kind", category=name)
        return category

    def categories(self, kind: Kind | None = None) -> list[Category]:
        return [
            c
            for c in self.catalog.categories.values()
            if c.name not in self.removed_categories and (kind is None or c.kind is kind)
        ]

    # -- interactions ---------------------------------------------------------------------------

    def first_delivery(self, interaction: discord.Interaction[Any]) -> bool:
        """False for an interaction id handled before: a gateway replay, already answered."""
        if interaction.id in self._seen_interactions:
            return False
        self._seen_interactions[interaction.id] = None
        if len(self._seen_interactions) > SEEN_INTERACTIONS:
            self._seen_interactions.popitem(last=False)
        return True

    async def accepting_check(self, interaction: discord.Interaction[Any]) -> bool:
        if not self.first_delivery(interaction):
            raise responding.Redelivered()
        if interaction.type is discord.InteractionType.autocomplete:
            if validation.autocomplete_ok(interaction):
                return True
            # A forged autocomplete (an option that has none, odd values): no suggestions.
            with contextlib.suppress(discord.HTTPException):
                await interaction.response.autocomplete([])
            return False
        if not validation.options_ok(interaction):
            raise responding.UserError("error_bad_option")
        if not self.accepting:
            raise responding.UserError("error_restarting")
        return True

    @contextlib.asynccontextmanager
    async def in_flight(self) -> AsyncIterator[None]:
        """Marks work that a clean shutdown lets finish."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def press_button(
        self, interaction: discord.Interaction[Any], button: render.ActionButton
    ) -> None:
        """Every persistent button press: what all of them check, then the cog's handler, with
        the commands' error path (a clear ephemeral answer)."""
        if not self.first_delivery(interaction):
            return  # a gateway replay of a press already handled
        handler = self.button_handlers.get(type(button))
        if handler is None:
            return
        try:
            # Snowflakes are positive and below 2**63; base 36 in a forged custom_id can say more.
            if not all(0 < snowflake < 2**63 for snowflake in button.snowflakes):
                raise responding.UserError("error_button_expired")
            if not self.accepting:
                raise responding.UserError("error_restarting")
            async with self.in_flight():
                await handler(interaction, button)
        except Exception as exc:
            await responding.send_error(interaction, exc)

    async def on_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        gone = self.removed_categories
        if isinstance(error, app_commands.CommandNotFound) and error.name in gone:
            # Discord still shows a command whose category nekos.best dropped.
            error = responding.CategoryGone(error.name)
        await responding.send_error(interaction, error)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A press on a component no handler knows (forged, or from a version long gone):
        say it expired, rather than leave the user with "This interaction failed"."""
        if interaction.type is not discord.InteractionType.component:
            return
        data = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        # discord.py runs a persistent button's handler only for a custom_id that is really on
        # the message; anything else it drops without a word.
        if _on_message(interaction.message, custom_id) and any(
            button.__discord_ui_compiled_template__.fullmatch(custom_id)
            for button in render.PERSISTENT_BUTTONS
        ):
            return  # the button's own handler answers
        # A message-bound view (none today) would answer for its own components.
        views = getattr(getattr(self._connection, "_view_store", None), "_views", {})
        key = (data.get("component_type"), custom_id)
        message_id = interaction.message.id if interaction.message is not None else None
        if key in views.get(message_id, {}) or key in views.get(None, {}):
            return
        if not self.first_delivery(interaction):
            return
        log.info("Unknown button pressed: %r", custom_id[:100])
        reply = render.error(wording.message("error_button_expired"))
        await responding.send_ephemeral(interaction, reply)

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
            len(self.catalog.categories),
            self.catalog.source,
        )

    async def on_resumed(self) -> None:
        self._beat()

    def _beat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat(latency=self.latency)

    # -- shutdown -------------------------------------------------------------------------------

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop taking interactions, let those in flight finish (briefly), then close."""
        self.accepting = False
        deadline = asyncio.get_running_loop().time() + grace
        # Twice: interactions received just before the flag flipped may not have reached
        # `in_flight` yet; a short pause lets them start (or be told "restarting") first.
        for pause in (0.0, 0.1):
            await asyncio.sleep(pause)
            left = deadline - asyncio.get_running_loop().time()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=max(0.0, left))
        if self._in_flight:
            log.warning("Closing with %d interactions still in flight", self._in_flight)
        await self.close()

    async def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        await self.catalog.aclose()
        await self.pool.aclose()
        await super().close()


def _on_message(message: discord.Message | None, custom_id: str) -> bool:
    """Whether the message carries a component with this custom_id."""
    stack: list[Any] = list(message.components) if message is not None else []
    while stack:
        component = stack.pop()
        if getattr(component, "custom_id", None) == custom_id:
            return True
        stack.extend(getattr(component, "children", None) or [])
    return False


def data_dir_ready(path: Path) -> None:
    """Create the data directory, or explain why it cannot be used."""
    path.mkdir(parents=True, exist_ok=True)
    probe = path / ".write-test"
    probe.write_text("ok")
    probe.unlink()

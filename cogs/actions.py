"""GIF actions: one command per GIF category, `/action`, the return and reroll buttons, and the
user context menus. Thin glue: services come from the bot, output from `bot.render`, answers go
through `bot.responding`."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, responding, wording
from bot.app import NekoBot
from bot.buttons import PersistentButton, bot_of
from bot.nekos import Kind
from bot.responding import UserError
from bot.store import ActionCounts, StoreError
from bot.sync import GeneratedCommands
from bot.wording import Case
from cogs.common import FETCHES, Note, category_choices, category_command, contexts

log = logging.getLogger(__name__)

REROLL_WINDOW = 15 * 60.0
RETURNED_MEMORY = 10_000


class Actions(commands.Cog):
    def __init__(self, bot: NekoBot) -> None:
        self.bot = bot
        self.generated = GeneratedCommands(Kind.GIF, self._make_command)
        self._menus: list[app_commands.ContextMenu] = []
        # Returns claimed in this process: a quick "no" for double clicks, and the only record
        # while the database cannot be written. Bounded: the store is the real memory.
        self._returned: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._returning: set[tuple[int, int]] = set()  # claims under way (fetching the GIF)

    async def cog_load(self) -> None:
        self.bot.commands_sync.generated.append(self.generated)
        self.bot.add_dynamic_items(ReturnButton, RerollButton)
        for name in self.bot.config.context_menu_actions:
            category = self.bot.catalog.get(name)
            if category is None or category.kind is not Kind.GIF:
                log.warning("CONTEXT_MENU_ACTIONS: %r is not a GIF category; skipped", name)
                continue
            menu = app_commands.ContextMenu(
                name=wording.message("menu_action", action=wording.noun(name, 1).capitalize()),
                callback=self._menu_callback(name),
                extras=FETCHES,
            )
            contexts(menu)
            self.bot.tree.add_command(menu)
            self._menus.append(menu)

    async def cog_unload(self) -> None:
        for menu in self._menus:
            self.bot.tree.remove_command(menu.name, type=discord.AppCommandType.user)
        self.bot.remove_dynamic_items(ReturnButton, RerollButton)
        self.bot.commands_sync.generated.remove(self.generated)
        self.generated.clear(self.bot.tree)

    # -- commands ----------------------------------------------------------------------------

    def _make_command(self, category: str, name: str) -> app_commands.Command[Any, ..., Any]:
        cog = self

        @app_commands.describe(
            user=wording.message("option_user"), message=wording.message("option_message")
        )
        async def callback(
            interaction: discord.Interaction[Any],
            user: discord.User | None = None,
            message: Note | None = None,
        ) -> None:
            await cog.perform(interaction, category, user, message)

        return category_command(category, name, Kind.GIF, callback)

    @app_commands.command(
        name="action", description=wording.message("command_action"), extras=FETCHES
    )
    @app_commands.describe(**wording.option_texts("action", "category", "user", "message"))
    @contexts
    async def action_command(
        self,
        interaction: discord.Interaction[Any],
        category: str,
        user: discord.User | None = None,
        message: Note | None = None,
    ) -> None:
        await self.perform(interaction, category.strip().lower(), user, message)

    @action_command.autocomplete("category")
    async def action_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return category_choices(self.bot.catalog.live(Kind.GIF), current)

    def _menu_callback(self, category: str) -> Any:
        async def callback(interaction: discord.Interaction[Any], user: discord.User) -> None:
            await self.perform(interaction, category, user, None)

        return callback

    async def perform(
        self,
        interaction: discord.Interaction[Any],
        name: str,
        target: render.Person | None,
        note: str | None,
    ) -> None:
        """Cheap checks first (they can still answer ephemerally), then fetch, count, send."""
        category = self.bot.catalog.require(name, Kind.GIF)
        actor = interaction.user
        case = self.case_of(actor, target)
        if case is Case.OTHER and target is not None and await self.opted_out(target.id):
            raise UserError("error_target_opted_out", name=render.display_name(target))
        guild_id = interaction.guild_id

        async def work() -> render.Reply:
            result = await self.bot.pool.take(category.name, budget=responding.WORK_BUDGET)
            counts = None
            if case is Case.OTHER and target is not None and guild_id is not None:
                counts = await self.count(interaction.id, guild_id, category.name, actor, target)
            return render.action(
                category=category.name,
                result=result,
                actor=actor,
                target=target,
                case=case,
                note=note,
                counts=counts,
                action_id=interaction.id,
                returnable=guild_id is not None and wording.is_reciprocal(category.name),
            )

        await responding.answer(interaction, work())

    def case_of(self, actor: render.Person, target: render.Person | None) -> Case:
        if target is None:
            return Case.NONE
        if target.id == actor.id:
            return Case.SELF
        if self.bot.user is not None and target.id == self.bot.user.id:
            return Case.BOT
        return Case.OTHER

    # -- the store, where an action carries on without it on purpose ---------------------------

    async def opted_out(self, user_id: int) -> bool:
        try:
            return await self.bot.store.is_opted_out(user_id)
        except StoreError as exc:
            self.bot.store_errors.error("read", "Could not read opt-outs: %s", exc)
            return False

    async def count(
        self,
        action_id: int,
        guild_id: int,
        category: str,
        actor: render.Person,
        target: render.Person,
    ) -> ActionCounts | None:
        """Commit the count before the answer that shows it; a failing database lets the
        action through without figures."""
        try:
            return await self.bot.store.record_action(
                action_id=action_id,
                guild_id=guild_id,
                action=category,
                actor_id=actor.id,
                target_id=target.id,
            )
        except StoreError as exc:
            self.bot.store_errors.error("write", "Could not record an action: %s", exc)
            return None

    # -- buttons (checks common to every press: bot.buttons.PersistentButton) -----------------

    async def on_return(
        self, interaction: discord.Interaction[Any], button: render.ReturnId
    ) -> None:
        """ "Hug back": only the target, once. The claim is keyed by the button's action and
        target, so nobody else can use a return up; a press that cannot win it is refused before
        it takes a GIF from the pool."""
        if interaction.user.id != button.target_id:
            raise UserError("error_not_your_button", name=f"<@{button.target_id}>")
        category = self.bot.catalog.require(button.category, Kind.GIF)
        if await self.opted_out(button.actor_id):
            raise UserError("error_target_opted_out", name=f"<@{button.actor_id}>")
        claim = (button.action_id, button.target_id)
        if claim in self._returned or claim in self._returning:
            raise UserError("error_already_returned")
        self._returning.add(claim)
        try:
            if await self.returned_before(*claim):
                raise UserError("error_already_returned")
        except BaseException:
            self._returning.discard(claim)
            raise
        custom_id = button.custom_id

        async def work() -> render.Reply:
            try:
                result = await self.bot.pool.take(category.name, budget=responding.WORK_BUDGET)
                if not await self.claim(*claim):
                    raise UserError("error_already_returned")
            finally:
                self._returning.discard(claim)
            actor = interaction.user
            target = await self.resolve_user(interaction, button.actor_id)
            counts = None
            if interaction.guild_id is not None:
                counts = await self.count(
                    interaction.id, interaction.guild_id, category.name, actor, target
                )
            then = render.action(
                category=category.name,
                result=result,
                actor=actor,
                target=target,
                case=Case.OTHER,
                counts=counts,
                action_id=interaction.id,
                returnable=True,
            )
            return render.returned(interaction.message, custom_id, then)

        await responding.answer(interaction, work(), update=True)

    async def returned_before(self, action_id: int, target_id: int) -> bool:
        try:
            return await self.bot.store.is_returned(action_id=action_id, target_id=target_id)
        except StoreError as exc:
            self.bot.store_errors.error("read", "Could not read returns: %s", exc)
            return False

    async def claim(self, action_id: int, target_id: int) -> bool:
        """Once only: the store remembers (double clicks, restarts); memory backs it up while
        the database cannot be written."""
        key = (action_id, target_id)
        if key in self._returned:
            return False
        try:
            claimed = await self.bot.store.claim_return(action_id=action_id, target_id=target_id)
        except StoreError as exc:
            self.bot.store_errors.error("write", "Could not record a return: %s", exc)
            claimed = True
        self._returned[key] = None
        if len(self._returned) > RETURNED_MEMORY:
            self._returned.popitem(last=False)
        return claimed

    async def resolve_user(
        self, interaction: discord.Interaction[Any], user_id: int
    ) -> render.Person:
        """The original actor, for a name: from the message's metadata or the cache, else the
        API."""
        message = interaction.message
        metadata = message.interaction_metadata if message is not None else None
        if metadata is not None and metadata.user.id == user_id:
            return metadata.user
        cached = self.bot.get_user(user_id)
        if cached is not None:
            return cached
        try:
            return await self.bot.fetch_user(user_id)
        except discord.HTTPException:
            return UnknownUser(user_id)

    async def on_reroll(
        self, interaction: discord.Interaction[Any], button: render.RerollId
    ) -> None:
        """ "Another": only the invoker, within 15 minutes; edits a fresh GIF in."""
        if interaction.user.id != button.actor_id:
            raise UserError("error_not_your_reroll", name=f"<@{button.actor_id}>")
        created = discord.utils.snowflake_time(button.action_id).timestamp()
        if time.time() - created > REROLL_WINDOW:
            raise UserError("error_reroll_expired")
        category = self.bot.catalog.require(button.category, Kind.GIF)
        message = interaction.message
        if message is None:
            raise UserError("error_button_expired")

        async def work() -> render.Reply:
            result = await self.bot.pool.take(category.name, budget=responding.WORK_BUDGET)
            return render.rerolled(message, result)

        await responding.answer(interaction, work(), update=True)


@dataclass(frozen=True)
class UnknownUser:
    """A user we could not look up: still mentionable, with a neutral name."""

    id: int
    name: str = "someone"
    display_name: str = "someone"

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


def _cog(interaction: discord.Interaction[Any]) -> Actions:
    cog = bot_of(interaction).get_cog(Actions.__cog_name__)
    if cog is None:  # unloaded: nothing answers these presses now
        raise UserError("error_button_expired")
    return cast(Actions, cog)


class ReturnButton(PersistentButton, template=render.ReturnId.TEMPLATE):
    codec = render.ReturnId
    value: render.ReturnId

    async def press(self, interaction: discord.Interaction[Any]) -> None:
        await _cog(interaction).on_return(interaction, self.value)


class RerollButton(PersistentButton, template=render.RerollId.TEMPLATE):
    codec = render.RerollId
    value: render.RerollId

    async def press(self, interaction: discord.Interaction[Any]) -> None:
        await _cog(interaction).on_reroll(interaction, self.value)


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Actions(bot))

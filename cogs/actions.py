"""GIF actions: one command per GIF category, `/action`, return and reroll buttons, and the
user context menus. Thin glue: services come from the bot, output from `bot.render`."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, responding, wording
from bot.app import NekoBot
from bot.nekos import Category, Kind, Result
from bot.responding import UserError
from bot.store import ActionCounts, StoreError
from bot.wording import Case
from cogs.common import GeneratedCommands, category_choices, contexts

log = logging.getLogger(__name__)

NOTE_MAX = render.NOTE_MAX
REROLL_WINDOW = 15 * 60.0
RETURNED_MEMORY = 10_000


class Actions(commands.Cog):
    def __init__(self, bot: NekoBot) -> None:
        self.bot = bot
        self.generated = GeneratedCommands(bot.tree, Kind.GIF, self._make_command)
        self._menus: list[app_commands.ContextMenu] = []
        # Returns claimed in this process: a quick "no" for double clicks, and the only record
        # while the database cannot be written. Bounded: the store is the real memory.
        self._returned: OrderedDict[int, None] = OrderedDict()

    async def cog_load(self) -> None:
        self.bot.button_handlers[render.ReturnButton] = self.on_return
        self.bot.button_handlers[render.RerollButton] = self.on_reroll
        for name in self.bot.config.context_menu_actions:
            category = self.bot.catalog.categories.get(name)
            if category is None or category.kind is not Kind.GIF:
                log.warning("CONTEXT_MENU_ACTIONS: %r is not a GIF category; skipped", name)
                continue
            menu = app_commands.ContextMenu(
                name=wording.message("menu_action", action=wording.noun(name, 1).capitalize()),
                callback=self._menu_callback(name),
            )
            contexts(menu)
            self.bot.tree.add_command(menu)
            self._menus.append(menu)

    async def cog_unload(self) -> None:
        for menu in self._menus:
            self.bot.tree.remove_command(menu.name, type=discord.AppCommandType.user)
        self.generated.clear()
        self.bot.button_handlers.pop(render.ReturnButton, None)
        self.bot.button_handlers.pop(render.RerollButton, None)

    # -- generated commands ----------------------------------------------------------------

    def apply_command_plan(self, plan: dict[str, str], categories: Sequence[Category]) -> None:
        self.generated.apply(plan, categories)

    def _make_command(self, category: str, name: str) -> app_commands.Command[Any, ..., Any]:
        cog = self

        @app_commands.describe(
            user=wording.message("option_user"), message=wording.message("option_message")
        )
        async def callback(
            interaction: discord.Interaction[Any],
            user: discord.User | None = None,
            message: app_commands.Range[str, 1, NOTE_MAX] | None = None,
        ) -> None:
            await cog.perform(interaction, category, user, message)

        command = app_commands.Command(
            name=name, description=wording.description(category, "gif"), callback=callback
        )
        return contexts(command)

    @app_commands.command(name="action", description=wording.message("command_action"))
    @app_commands.describe(
        category=wording.message("command_action_category"),
        user=wording.message("command_action_user"),
        message=wording.message("command_action_message"),
    )
    @contexts
    async def action_command(
        self,
        interaction: discord.Interaction[Any],
        category: str,
        user: discord.User | None = None,
        message: app_commands.Range[str, 1, NOTE_MAX] | None = None,
    ) -> None:
        await self.perform(interaction, category.strip().lower(), user, message)

    @action_command.autocomplete("category")
    async def action_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return category_choices(self.bot.categories(Kind.GIF), current)

    def _menu_callback(self, category: str) -> Any:
        async def callback(interaction: discord.Interaction[Any], user: discord.User) -> None:
            await self.perform(interaction, category, user, None)

        return callback

    # -- performing an action --------------------------------------------------------------

    async def perform(
        self,
        interaction: discord.Interaction[Any],
        name: str,
        target: discord.abc.User | None,
        note: str | None,
    ) -> None:
        """Cheap checks first (they can still answer ephemerally), then fetch, count, send."""
        category = self.bot.category(name, Kind.GIF)
        if note is not None and len(note.strip()) > NOTE_MAX:
            raise UserError("error_note_too_long", limit=NOTE_MAX)
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

        async with self.bot.in_flight():
            await responding.answer(interaction, work())

    def case_of(self, actor: discord.abc.User, target: discord.abc.User | None) -> Case:
        if target is None:
            return Case.NONE
        if target.id == actor.id:
            return Case.SELF
        if self.bot.user is not None and target.id == self.bot.user.id:
            return Case.BOT
        return Case.OTHER

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
        actor: discord.abc.User,
        target: discord.abc.User,
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

    # -- buttons ---------------------------------------------------------------------------

    async def on_return(
        self, interaction: discord.Interaction[Any], button: render.ActionButton
    ) -> None:
        """ "Hug back" (checks common to every button: `NekoBot.press_button`)."""
        assert isinstance(button, render.ReturnButton)
        if interaction.user.id != button.target_id:
            raise UserError("error_not_your_button", name=f"<@{button.target_id}>")
        category = self.bot.category(button.category, Kind.GIF)
        if await self.opted_out(button.actor_id):
            raise UserError("error_target_opted_out", name=f"<@{button.actor_id}>")
        message = interaction.message
        custom_id = (interaction.data or {}).get("custom_id", "")
        result = self.bot.pool.take_nowait(category.name)
        deferred = False
        if result is None:
            await interaction.response.defer()
            deferred = True
            result = await self.bot.pool.take(category.name, budget=responding.WORK_BUDGET)
        if not await self.claim(button.action_id):
            raise UserError("error_already_returned")
        actor = interaction.user
        target = await self.resolve_user(interaction, button.actor_id)
        counts = None
        if interaction.guild_id is not None:
            counts = await self.count(
                interaction.id, interaction.guild_id, category.name, actor, target
            )
        reply = render.action(
            category=category.name,
            result=result,
            actor=actor,
            target=target,
            case=Case.OTHER,
            counts=counts,
            action_id=interaction.id,
            returnable=True,
        )
        view = render.returned(message, custom_id) if message is not None else None
        if deferred:
            await interaction.edit_original_response(view=view)
        else:
            await interaction.response.edit_message(view=view)
        await interaction.followup.send(**reply.send_kwargs())

    async def claim(self, action_id: int) -> bool:
        """Once only: the store remembers (double clicks, restarts); memory backs it up while
        the database cannot be written."""
        if action_id in self._returned:
            return False
        try:
            claimed = await self.bot.store.claim_return(action_id=action_id)
        except StoreError as exc:
            self.bot.store_errors.error("write", "Could not record a return: %s", exc)
            claimed = True
        self._returned[action_id] = None
        if len(self._returned) > RETURNED_MEMORY:
            self._returned.popitem(last=False)
        return claimed

    async def resolve_user(
        self, interaction: discord.Interaction[Any], user_id: int
    ) -> discord.abc.User:
        """The original actor, for a name: from the message's mentions/cache, else the API."""
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
            return _UnknownUser(user_id)

    async def on_reroll(
        self, interaction: discord.Interaction[Any], button: render.ActionButton
    ) -> None:
        """ "Another" (checks common to every button: `NekoBot.press_button`)."""
        assert isinstance(button, render.RerollButton)
        if interaction.user.id != button.actor_id:
            raise UserError("error_not_your_reroll", name=f"<@{button.actor_id}>")
        created = discord.utils.snowflake_time(button.action_id).timestamp()
        if time.time() - created > REROLL_WINDOW:
            raise UserError("error_reroll_expired")
        category = self.bot.category(button.category, Kind.GIF)
        message = interaction.message
        if message is None:
            raise UserError("error_internal")
        result: Result | None = self.bot.pool.take_nowait(category.name)
        if result is not None:
            await interaction.response.edit_message(
                **render.rerolled(message, result).edit_kwargs()
            )
            return
        await interaction.response.defer()
        result = await self.bot.pool.take(category.name, budget=responding.WORK_BUDGET)
        await interaction.edit_original_response(**render.rerolled(message, result).edit_kwargs())


class _UnknownUser(discord.Object):
    """A user we could not look up: still mentionable, with a neutral name."""

    def __init__(self, user_id: int) -> None:
        super().__init__(user_id)
        self.name = self.display_name = "someone"
        self.mention = f"<@{user_id}>"


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Actions(bot))

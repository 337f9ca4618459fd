"""GIF actions: one command per GIF category, `/action`, the return and reroll buttons, and the
user context menus. Thin glue: services come from the bot, output from `bot.render`, answers go
through `bot.responding`."""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot import custom_ids, render, responding, tree, wording
from bot.app import NekoBot
from bot.buttons import PersistentButton, bot_of
from bot.nekos import Category, Kind
from bot.responding import UserError
from bot.store import ActionCounts, StoreError
from bot.sync import GeneratedCommands
from bot.wording import Case
from cogs.common import FETCHES, Note, category_choices, category_command, contexts

log = logging.getLogger(__name__)

REROLL_WINDOW = 15 * 60.0
# Up to five targets: `user` and four more.
TARGET_TEXTS = {"user": wording.message("option_user")} | {
    f"user{n}": wording.message("option_more_users") for n in range(2, 6)
}
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
                extras=FETCHES | {tree.CATEGORY: name},
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

        @app_commands.describe(**TARGET_TEXTS, message=wording.message("option_message"))
        async def callback(
            interaction: discord.Interaction[Any],
            user: discord.User | None = None,
            user2: discord.User | None = None,
            user3: discord.User | None = None,
            user4: discord.User | None = None,
            user5: discord.User | None = None,
            message: Note | None = None,
        ) -> None:
            targets = [user, user2, user3, user4, user5]
            await cog.perform(interaction, category, targets, message)

        return category_command(category, name, Kind.GIF, callback)

    @app_commands.command(
        name="action",
        description=wording.message("command_action"),
        extras=FETCHES | {tree.KIND: Kind.GIF.value},
    )
    @app_commands.describe(**wording.option_texts("action", "category", "message"), **TARGET_TEXTS)
    @contexts
    async def action_command(
        self,
        interaction: discord.Interaction[Any],
        category: str,
        user: discord.User | None = None,
        user2: discord.User | None = None,
        user3: discord.User | None = None,
        user4: discord.User | None = None,
        user5: discord.User | None = None,
        message: Note | None = None,
    ) -> None:
        targets = [user, user2, user3, user4, user5]
        await self.perform(interaction, category.strip().lower(), targets, message)

    @action_command.autocomplete("category")
    async def action_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return category_choices(self.bot.catalog.live(Kind.GIF), current)

    def _menu_callback(self, category: str) -> Any:
        async def callback(interaction: discord.Interaction[Any], user: discord.User) -> None:
            await self.perform(interaction, category, [user], None)

        return callback

    async def perform(
        self,
        interaction: discord.Interaction[Any],
        name: str,
        given: Sequence[render.Person | None],
        note: str | None,
    ) -> None:
        """Cheap checks first (they can still answer ephemerally), then fetch, count, send."""
        category = self.bot.catalog.require(name, Kind.GIF)
        actor = interaction.user
        case, named = self.targets(actor, given)
        counted = [p for p in named if not self.is_me(p)]
        await self.check_consent(actor, counted, refusing(category))
        settings = await self.bot.settings(interaction.guild_id)
        # Counted only where the bot is installed in the server (not a user install, not DMs).
        guild_id = interaction.guild_id if interaction.is_guild_integration() else None
        # Returns wherever the targets can see the message (not in a DM with the bot).
        reciprocal = wording.is_reciprocal(category.name) and not interaction.context.dm_channel

        async def work() -> render.Reply:
            result = await self.bot.pool.take(category.name, budget=responding.WORK_BUDGET)
            counts = None
            counting = bool(counted) and guild_id is not None
            if counted and guild_id is not None:
                counts = await self.count(interaction.id, guild_id, category.name, actor, counted)
            return render.action(
                category=category.name,
                result=result,
                actor=actor,
                targets=named,
                case=case,
                note=note,
                counts=counts,
                unsaved=counting and counts is None,
                action_id=interaction.id,
                returnable=[p.id for p in counted] if reciprocal else (),
                pings=settings.pings,
                locale=responding.public_locale(interaction),
            )

        await responding.answer(interaction, work())

    def targets(
        self, actor: render.Person, given: Sequence[render.Person | None]
    ) -> tuple[Case, list[render.Person]]:
        """Who is named: the distinct targets other than the actor (at most 5), and the case."""
        distinct = list({p.id: p for p in given if p is not None}.values())
        named = [p for p in distinct if p.id != actor.id]
        if not named:
            return (Case.SELF if distinct else Case.NONE), []
        if len(named) == 1:
            return (Case.BOT if self.is_me(named[0]) else Case.OTHER), named
        return Case.SEVERAL, named

    def is_me(self, person: render.Person) -> bool:
        return self.bot.user is not None and person.id == self.bot.user.id

    async def check_consent(
        self, actor: render.Person, targets: Sequence[render.Person], actions: tuple[str, ...]
    ) -> None:
        """Consent holds both ways: nobody targets a member who opted out (or blocks one of
        `actions`: the category and its kind), a member who opted out targets nobody (nobody
        could answer in kind), and other bots take no part."""
        if not targets:
            return
        if await self.opted_out(actor.id):
            raise UserError("error_actor_opted_out")
        bots = [p for p in targets if getattr(p, "bot", False)]
        if bots:
            raise _refusal("error_target_other_bot", "error_targets_other_bots", bots)
        opted_out = await self.opted_out_among([p.id for p in targets], actions)
        if refused := [p for p in targets if p.id in opted_out]:
            raise _refusal("error_target_opted_out", "error_targets_opted_out", refused)

    # -- the store, where an action carries on without it on purpose ---------------------------

    async def opted_out(self, user_id: int) -> bool:
        return user_id in await self.opted_out_among([user_id])

    async def opted_out_among(
        self, user_ids: Sequence[int], actions: tuple[str, ...] = ()
    ) -> set[int]:
        try:
            return await self.bot.store.opted_out_among(user_ids, actions)
        except StoreError as exc:
            self.bot.store_errors.error("read", "Could not read opt-outs: %s", exc)
            return set()

    async def count(
        self,
        action_id: int,
        guild_id: int,
        category: str,
        actor: render.Person,
        targets: Sequence[render.Person],
    ) -> dict[int, ActionCounts] | None:
        """Commit the counts before the answer that shows them; a failing database lets the
        action through without figures."""
        try:
            counts = await self.bot.store.record_action(
                action_id=action_id,
                guild_id=guild_id,
                action=category,
                actor_id=actor.id,
                target_ids=[p.id for p in targets],
            )
        except StoreError as exc:
            self.bot.store_errors.error("write", "Could not record an action: %s", exc)
            return None
        return {p.id: c for p, c in zip(targets, counts, strict=True)}

    # -- buttons (checks common to every press: bot.buttons.PersistentButton) -----------------

    async def on_return(
        self, interaction: discord.Interaction[Any], button: custom_ids.ReturnId
    ) -> None:
        """ "Hug back": only the target, once. The claim is keyed by the button's action and
        target, so nobody else can use a return up; a press that cannot win it is refused before
        it takes a GIF from the pool."""
        if interaction.user.id != button.target_id:
            raise UserError("error_not_your_button", name=f"<@{button.target_id}>")
        category = self.bot.catalog.require(button.category, Kind.GIF)
        if await self.opted_out(interaction.user.id):
            raise UserError("error_actor_opted_out")
        if await self.opted_out_among([button.actor_id], refusing(category)):
            raise UserError("error_target_opted_out", name=f"<@{button.actor_id}>")
        settings = await self.bot.settings(interaction.guild_id)
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
            if interaction.guild_id is not None and interaction.is_guild_integration():
                counts = await self.count(
                    interaction.id, interaction.guild_id, category.name, actor, [target]
                )
            locale = responding.public_locale(interaction)
            then = render.action(
                category=category.name,
                result=result,
                actor=actor,
                targets=[target],
                case=Case.OTHER,
                counts=counts,
                action_id=interaction.id,
                returnable=[target.id],
                pings=settings.pings,
                locale=locale,
            )
            return render.returned(interaction.message, custom_id, then, locale)

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
        self, interaction: discord.Interaction[Any], button: custom_ids.RerollId
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
        # A member who has since opted out or blocked this action gets no new GIF of it.
        if refused := await self.opted_out_among(_targets_of(message), refusing(category)):
            raise UserError("error_target_opted_out", name=f"<@{min(refused)}>")

        async def work() -> render.Reply:
            result = await self.bot.pool.take(category.name, budget=responding.WORK_BUDGET)
            return render.rerolled(message, result, responding.public_locale(interaction))

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


def refusing(category: Category) -> tuple[str, ...]:
    """What a member's block must name to refuse this action: its category or its kind."""
    return (category.name, category.kind.value)


_RETURN_ID = re.compile(custom_ids.ReturnId.TEMPLATE)


def _targets_of(message: discord.Message) -> list[int]:
    """The members an action message names, as far as it shows them: its pings, its return
    buttons, a context menu's target (with pings off, a non-returnable action shows no ids)."""
    ids = set(message.raw_mentions)
    for row in message.components:
        for item in getattr(row, "children", ()):
            if match := _RETURN_ID.fullmatch(getattr(item, "custom_id", None) or ""):
                ids.add(custom_ids.ReturnId.from_match(match).target_id)
    metadata = message.interaction_metadata
    if metadata is not None and metadata.target_user is not None:
        ids.add(metadata.target_user.id)
    return sorted(ids)


def _refusal(one: str, several: str, people: Sequence[render.Person]) -> UserError:
    """ "Bob has opted out" / "Bob and Carol have opted out" (names escaped)."""
    names = [render.display_name(p) for p in people]
    if len(names) == 1:
        return UserError(one, name=names[0])
    return UserError(several, names=wording.NameList(tuple(names)))


def _cog(interaction: discord.Interaction[Any]) -> Actions:
    cog = bot_of(interaction).get_cog(Actions.__cog_name__)
    if cog is None:  # unloaded: nothing answers these presses now
        raise UserError("error_button_expired")
    return cast(Actions, cog)


class ReturnButton(PersistentButton, template=custom_ids.ReturnId.TEMPLATE):
    codec = custom_ids.ReturnId
    value: custom_ids.ReturnId

    async def press(self, interaction: discord.Interaction[Any]) -> None:
        await _cog(interaction).on_return(interaction, self.value)


class RerollButton(PersistentButton, template=custom_ids.RerollId.TEMPLATE):
    codec = custom_ids.RerollId
    value: custom_ids.RerollId

    async def press(self, interaction: discord.Interaction[Any]) -> None:
        await _cog(interaction).on_reroll(interaction, self.value)


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Actions(bot))

"""`/help`, `/stats`, `/optout`, `/optin`, `/forgetme`, `/mydata`."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, render_social, responding, wording
from bot.app import NekoBot
from bot.nekos import Kind
from bot.responding import UserError
from bot.store.blocks import MAX_BLOCKS, TooManyBlocks
from cogs.common import PUBLIC, category_choices, contexts

_PLAIN = re.compile(r"[a-z0-9_-]{1,64}")
GIF = Kind.GIF.value  # a block of every action
MYDATA_EVERY = 60.0  # seconds between two /mydata of one member (in this process)


class Meta(commands.Cog):
    def __init__(self, bot: NekoBot) -> None:
        self.bot = bot
        self._mydata_at: dict[int, float] = {}  # member: when they last got their data

    @app_commands.command(name="help", description=wording.message("command_help"))
    @contexts
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        reply = render.help_page(
            categories=self.bot.catalog.live(),
            command_names=self.bot.commands_sync.names,
            invite_url=self.bot.invite_url,
            locale=responding.private_locale(interaction),
        )
        await interaction.response.send_message(**reply.send_kwargs())

    @app_commands.command(name="stats", description=wording.message("command_stats"), extras=PUBLIC)
    @app_commands.describe(user=wording.message("command_stats_user"))
    @app_commands.guild_only()
    async def stats(
        self, interaction: discord.Interaction[Any], user: discord.User | None = None
    ) -> None:
        if interaction.guild_id is None:  # guild_only hides it in DMs; a forged call may not
            raise UserError("error_guild_only")
        who = user or interaction.user
        store = self.bot.store
        if who.id != interaction.user.id and await store.is_opted_out(who.id):
            raise UserError("error_stats_opted_out", name=render.display_name(who))
        stats = await store.user_stats(guild_id=interaction.guild_id, user_id=who.id)
        hidden = await store.opted_out_among(p.user_id for p in stats.top_partners)
        partners = [
            (f"<@{p.user_id}>", p.count) for p in stats.top_partners if p.user_id not in hidden
        ]
        locale = responding.public_locale(interaction)
        reply = render.stats(user=who, lines=stats.actions, partners=partners, locale=locale)
        await interaction.response.send_message(**reply.send_kwargs())

    @app_commands.command(name="optout", description=wording.message("command_optout"))
    @app_commands.describe(category=wording.message("command_optout_category"))
    @contexts
    async def optout(
        self, interaction: discord.Interaction[Any], category: str | None = None
    ) -> None:
        await self._consent(interaction, category, refuse=True)

    @app_commands.command(name="optin", description=wording.message("command_optin"))
    @app_commands.describe(category=wording.message("command_optin_category"))
    @contexts
    async def optin(
        self, interaction: discord.Interaction[Any], category: str | None = None
    ) -> None:
        await self._consent(interaction, category, refuse=False)

    @optout.autocomplete("category")
    @optin.autocomplete("category")
    async def block_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        kind = [app_commands.Choice(name=GIF, value=GIF)] if GIF.startswith(current.lower()) else []
        return (kind + category_choices(self.bot.catalog.live(Kind.GIF), current))[:25]

    async def _consent(
        self, interaction: discord.Interaction[Any], category: str | None, *, refuse: bool
    ) -> None:
        """Everything (no category: an opt-out) or one action or kind (a block); a change that
        changes nothing answers what is blocked now."""
        store, user_id = self.bot.store, interaction.user.id
        locale = responding.private_locale(interaction)
        if category is None:
            was = await store.is_opted_out(user_id)
            await store.set_opt_out(user_id=user_id, opted_out=refuse)
            key = ("optout" if refuse else "optin") + ("_already" if was is refuse else "_done")
            lines = [wording.message(key, locale)]
            if was is refuse:
                lines.append(_blocks_line(await store.blocks_of(user_id), locale))
        else:
            name = category.strip().lower()
            if name != GIF:
                name = self.bot.catalog.require(name, Kind.GIF).name
            before = await store.blocks_of(user_id)
            if (name in before) is refuse:
                now, key = before, "block_already" if refuse else "unblock_already"
            else:
                try:
                    now = await store.set_block(user_id=user_id, action=name, blocked=refuse)
                except TooManyBlocks:
                    raise UserError("error_too_many_blocks", limit=MAX_BLOCKS) from None
                key = "block_done" if refuse else "unblock_done"
            lines = [wording.message(key, locale, action=name), _blocks_line(now, locale)]
        await responding.send_ephemeral(interaction, render.notice("\n".join(lines)))

    @app_commands.command(name="forgetme", description=wording.message("command_forgetme"))
    @app_commands.describe(keep_optout=wording.message("command_forgetme_keep_optout"))
    @contexts
    async def forgetme(
        self, interaction: discord.Interaction[Any], keep_optout: bool = False
    ) -> None:

        async def work() -> render.Reply:
            # Scrubbing the files can take a moment on a big database: answer() defers then.
            await self.bot.store.forget_user(user_id=interaction.user.id, keep_opt_out=keep_optout)
            return render.notice(wording.message("forget_done", locale))

        locale = responding.private_locale(interaction)
        await responding.answer(interaction, work())

    @app_commands.command(name="mydata", description=wording.message("command_mydata"))
    @contexts
    async def mydata(self, interaction: discord.Interaction[Any]) -> None:
        user_id = interaction.user.id
        now = time.monotonic()
        last = self._mydata_at.get(user_id)
        if last is not None and now - last < MYDATA_EVERY:
            raise UserError("error_mydata_too_soon", seconds=math.ceil(MYDATA_EVERY - (now - last)))
        # Forget those whose minute is over: the map stays as small as a minute's askers.
        self._mydata_at = {u: t for u, t in self._mydata_at.items() if now - t < MYDATA_EVERY}
        self._mydata_at[user_id] = now
        locale = responding.private_locale(interaction)

        async def work() -> render.Reply:
            try:
                data = await self.bot.store.user_data(user_id)
            except BaseException:
                self._mydata_at.pop(user_id, None)  # nothing was sent: asking again is fine
                raise
            returnable = {
                a for a in {k.action for k in data.pending_returns} if wording.is_reciprocal(a)
            }
            return render_social.mydata(data, user_id=user_id, returnable=returnable, locale=locale)

        await responding.answer(interaction, work())


def _blocks_line(blocks: frozenset[str], locale: str) -> str:
    if not blocks:
        return wording.message("blocks_none", locale)
    # Stored names came through the catalog; one that did not (a hand-edited row) is escaped.
    shown = ", ".join(
        f"`{name}`" if _PLAIN.fullmatch(name) else render.safe_name(name) for name in sorted(blocks)
    )
    return wording.message("blocks_now", locale, actions=shown)


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Meta(bot))

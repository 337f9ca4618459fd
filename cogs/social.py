"""`/leaderboard` and its page buttons. Thin glue: the board comes from the store in one query,
the page from `bot.render_social`, answers go through `bot.responding`."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Self, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot import render_social, responding, wording
from bot.app import NekoBot
from bot.buttons import bot_of, first_checks
from bot.custom_ids import PageId
from bot.nekos import Kind
from bot.responding import UserError
from bot.store.base import BOARDS, PERIODS
from cogs.common import PUBLIC, category_choices, worded_choices

log = logging.getLogger(__name__)

PAGE_WINDOW = 15 * 60.0  # seconds the invoker may turn the pages


class Social(commands.Cog):
    def __init__(self, bot: NekoBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PageButton)

    @app_commands.command(
        name="leaderboard", description=wording.message("command_leaderboard"), extras=PUBLIC
    )
    @app_commands.describe(**wording.option_texts("leaderboard", "category", "board", "period"))
    @app_commands.choices(
        board=worded_choices("command_leaderboard_board_", BOARDS),
        period=worded_choices("command_leaderboard_period_", tuple(PERIODS)),
    )
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def leaderboard(
        self,
        interaction: discord.Interaction[Any],
        category: str | None = None,
        board: str = "received",
        period: str = "all",
    ) -> None:
        if interaction.guild_id is None:  # a forged call from a DM
            raise UserError("error_guild_only")
        name = None
        if category is not None:
            name = self.bot.catalog.require(category.strip().lower(), Kind.GIF).name
        await self.check_on(interaction.guild_id)
        page = PageId(board, period, name, 0, interaction.id, interaction.user.id)
        await self.show(interaction, page, update=False)

    @leaderboard.autocomplete("category")
    async def category_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return category_choices(self.bot.catalog.live(Kind.GIF), current)

    async def check_on(self, guild_id: int) -> None:
        if not (await self.bot.settings(guild_id)).leaderboard:
            raise UserError("error_leaderboard_off")

    async def show(self, interaction: discord.Interaction[Any], page: PageId, update: bool) -> None:
        assert interaction.guild_id is not None
        guild_id = interaction.guild_id

        async def work() -> render_social.Reply:
            board = await self.bot.store.leaderboard(
                guild_id=guild_id,
                user_id=page.invoker_id,
                board=page.board,
                period=page.period,
                action=page.category,
                offset=page.offset,
                limit=render_social.PAGE_SIZE,
            )
            locale = responding.public_locale(interaction)
            shown = wording.category_name(page.category, locale) if page.category else None
            return render_social.leaderboard(
                board, page=page, category_name=shown or page.category, locale=locale
            )

        await responding.answer(interaction, work(), update=update)

    async def on_page(self, interaction: discord.Interaction[Any], page: PageId) -> None:
        """Only the member who asked turns the pages, for 15 minutes, while the board is on."""
        if interaction.user.id != page.invoker_id:
            raise UserError("error_not_your_board", name=f"<@{page.invoker_id}>")
        created = discord.utils.snowflake_time(page.origin_id).timestamp()
        if time.time() - created > PAGE_WINDOW or interaction.guild_id is None:
            raise UserError("error_board_expired")
        await self.check_on(interaction.guild_id)
        await self.show(interaction, page, update=True)


class PageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PageId.TEMPLATE):
    """ "Previous" / "Next" on a leaderboard (its custom_id says which page). Presses edit the
    board in place, so the server's channel rule and cooldowns (for what posts) do not apply."""

    def __init__(self, value: PageId) -> None:
        super().__init__(discord.ui.Button(custom_id=value.custom_id, label="·"))
        self.value = value

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> Self:
        return cls(PageId.from_match(match))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        # As bot.buttons.PersistentButton: answers a refusal itself, never raises.
        try:
            checked = await first_checks(interaction, "page", self.value.snowflakes)
            if isinstance(checked, UserError):
                await responding.send_error(interaction, checked)
                return False
            return checked
        except Exception:
            log.exception("Checking a press of a leaderboard page failed")
        return False

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            cog = bot_of(interaction).get_cog(Social.__cog_name__)
            if cog is None:
                raise UserError("error_button_expired")
            await cast(Social, cog).on_page(interaction, self.value)
        except Exception as exc:
            await bot_of(interaction).tree.report(interaction, exc)


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Social(bot))

"""Images: one command per image category and `/image`, up to 10 credited images at once."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, responding, tree, wording
from bot.app import NekoBot
from bot.nekos import Kind
from bot.sync import GeneratedCommands
from cogs.common import FETCHES, Amount, category_choices, category_command, contexts


class Images(commands.Cog):
    def __init__(self, bot: NekoBot) -> None:
        self.bot = bot
        self.generated = GeneratedCommands(Kind.IMAGE, self._make_command)

    async def cog_load(self) -> None:
        self.bot.commands_sync.generated.append(self.generated)

    async def cog_unload(self) -> None:
        self.bot.commands_sync.generated.remove(self.generated)
        self.generated.clear(self.bot.tree)

    def _make_command(self, category: str, name: str) -> app_commands.Command[Any, ..., Any]:
        cog = self

        @app_commands.describe(amount=wording.message("option_amount"))
        async def callback(
            interaction: discord.Interaction[Any],
            amount: Amount = 1,
        ) -> None:
            await cog.perform(interaction, category, amount)

        return category_command(category, name, Kind.IMAGE, callback)

    @app_commands.command(
        name="image",
        description=wording.message("command_image"),
        extras=FETCHES | {tree.KIND: Kind.IMAGE.value},
    )
    @app_commands.describe(**wording.option_texts("image", "category", "amount"))
    @contexts
    async def image_command(
        self,
        interaction: discord.Interaction[Any],
        category: str,
        amount: Amount = 1,
    ) -> None:
        await self.perform(interaction, category.strip().lower(), amount)

    @image_command.autocomplete("category")
    async def image_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return category_choices(self.bot.catalog.live(Kind.IMAGE), current)

    async def perform(self, interaction: discord.Interaction[Any], name: str, amount: int) -> None:
        category = self.bot.catalog.require(name, Kind.IMAGE)

        async def work() -> render.Reply:
            results = await self.bot.pool.take_many(
                category.name, amount, budget=responding.WORK_BUDGET
            )
            return render.images(
                category=category.name,
                results=results,
                actor=interaction.user,
                locale=responding.public_locale(interaction),
            )

        await responding.answer(interaction, work())


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Images(bot))

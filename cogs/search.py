"""`/search`: nekos.best's search by anime title or artist name, with category autocomplete."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, responding, wording
from bot.app import NekoBot
from bot.nekos import QUERY_MAX, QUERY_MIN, Kind
from bot.responding import UserError
from cogs.common import SEARCHES, Amount, category_choices, contexts

TYPES = {1: Kind.IMAGE, 2: Kind.GIF}


def _text(key: str) -> app_commands.locale_str:
    """A choice name the translator finds by its message key."""
    return app_commands.locale_str(wording.message(key), key=key)


class Search(commands.Cog):
    def __init__(self, bot: NekoBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="search", description=wording.message("command_search"), extras=SEARCHES
    )
    @app_commands.describe(**wording.option_texts("search", "query", "type", "category", "amount"))
    @app_commands.choices(
        type=[
            app_commands.Choice(name=_text("command_search_type_image"), value=1),
            app_commands.Choice(name=_text("command_search_type_gif"), value=2),
        ]
    )
    @contexts
    async def search(
        self,
        interaction: discord.Interaction[Any],
        query: app_commands.Range[str, QUERY_MIN, QUERY_MAX],
        type: int = 2,
        category: str | None = None,
        amount: Amount = 1,
    ) -> None:
        # Declared ranges and choices were checked by the tree (bot.validation).
        text = " ".join(query.split())
        if len(text) < QUERY_MIN:  # long enough only thanks to runs of spaces
            raise UserError("error_query_length", min=QUERY_MIN, max=QUERY_MAX)
        kind = TYPES[type]
        category_name = None
        if category:
            category_name = self.bot.catalog.require(category.strip().lower(), kind).name

        async def work() -> render.Reply:
            results = await self.bot.nekos.search(
                text, kind, category=category_name, amount=amount, budget=responding.WORK_BUDGET
            )
            if not results:
                private = responding.private_locale(interaction)
                query = render.safe_name(text)
                return render.notice(wording.message("search_no_results", private, query=query))
            locale = responding.public_locale(interaction)
            return render.search(results=results, query=text, kind=kind, locale=locale)

        await responding.answer(interaction, work())

    @search.autocomplete("category")
    async def category_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        kind = TYPES.get(getattr(interaction.namespace, "type", None) or 2, Kind.GIF)
        return category_choices(self.bot.catalog.live(kind), current)


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Search(bot))

"""Credits: `/source url` and the "Image credit" message menu. Only nekos.best asset URLs under
the configured API base are ever fetched (no requests on behalf of users to other hosts)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, responding, tree, wording
from bot.app import NekoBot
from bot.nekos import Credit, NekosError
from bot.responding import UserError
from bot.translator import MENU
from bot.urls import without_credentials
from cogs.common import FETCHES, contexts

URL = re.compile(r"https?://[^\s<>()\"']+")
MAX_LINKS = 5


class Credits(commands.Cog):
    def __init__(self, bot: NekoBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(
            name=wording.message("menu_image_credit"),
            callback=self.image_credit,
            extras={tree.FETCHES: True, MENU: "menu_image_credit"},  # its answer is ephemeral
        )
        contexts(self.menu)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(
        name="source", description=wording.message("command_source"), extras=FETCHES
    )
    @app_commands.describe(url=wording.message("command_source_url"))
    @contexts
    async def source(self, interaction: discord.Interaction[Any], url: str) -> None:
        url = url.strip().strip("<>")
        asset = self.bot.nekos.asset_path(url)
        if asset is None:
            base = without_credentials(self.bot.config.nekos_api_base)
            raise UserError("error_not_nekos_url", example=f"{base}/neko/<id>.png")
        category = asset[0]

        async def work() -> render.Reply:
            credit = await self.bot.nekos.credit(url, budget=responding.WORK_BUDGET)
            locale = responding.public_locale(interaction)
            return render.credit(credit=credit, url=url, category=category, locale=locale)

        await responding.answer(interaction, work())

    async def image_credit(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        # url → its category, for the nekos.best asset links only (the rest is never fetched)
        assets = {
            url: asset[0]
            for url in dict.fromkeys(found_urls(message))
            if (asset := self.bot.nekos.asset_path(url))
        }
        if not assets:
            raise UserError("error_no_links")
        links = list(assets.items())[:MAX_LINKS]

        errors: list[NekosError] = []

        async def one(url: str, category: str) -> tuple[str, Credit | None, str | None]:
            try:
                credit = await self.bot.nekos.credit(url, budget=responding.WORK_BUDGET)
            except NekosError as exc:
                errors.append(exc)
                return url, None, category
            return url, credit, category

        async def work() -> render.Reply:
            entries = await asyncio.gather(*(one(url, category) for url, category in links))
            if errors and all(credit is None for _, credit, _ in entries):
                raise errors[0]  # every lookup failed: say why, as for /source
            return render.credits(entries, responding.private_locale(interaction))

        await responding.answer(interaction, work())


def found_urls(message: discord.Message) -> list[str]:
    """Links in a message's text, its embeds (images, thumbnails, URLs) and attachments."""
    texts = [message.content or ""]
    urls: list[str] = []
    for embed in message.embeds:
        texts += [embed.description or "", embed.title or ""]
        urls += [u for u in (embed.url, embed.image.url, embed.thumbnail.url) if u]
    for text in texts:
        urls += URL.findall(text)
    return urls


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Credits(bot))

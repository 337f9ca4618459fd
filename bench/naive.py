"""The naive bot: one nekos.best request per command, then the embed. What most bots do
(`python -m bench.naive`, configured like nekocord). Errors from nekos.best (a 429 once the
category's budget is spent) are answered with a short ephemeral message."""

from __future__ import annotations

from typing import Any

import aiohttp
import discord

from bench.common import BenchClient, env, main

USER_AGENT = "nekocord-bench-naive/1.0 (https://example.invalid/nekocord-bench)"


class Naive:
    def __init__(self) -> None:
        self.base = env("NEKOS_API_BASE", "https://nekos.best/api/v2").rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def answer(self, interaction: discord.Interaction[Any], category: str, user: Any) -> None:
        assert self.session is not None
        try:
            async with self.session.get(f"{self.base}/{category}") as response:
                if response.status != 200:
                    await interaction.response.send_message(
                        f"nekos.best answered {response.status}, try again later", ephemeral=True
                    )
                    return
                data = await response.json()
        except aiohttp.ClientError:
            await interaction.response.send_message("nekos.best is unreachable", ephemeral=True)
            return
        result = data["results"][0]
        text = f"{interaction.user.mention} sends a {category}"
        if user is not None:
            text += f" to {user.mention}"
        embed = discord.Embed(description=text, colour=0xF4A6C8).set_image(url=result["url"])
        if result.get("anime_name"):
            embed.set_footer(text=result["anime_name"])
        await interaction.response.send_message(embed=embed)


if __name__ == "__main__":
    naive = Naive()
    main(BenchClient(naive.answer), before=naive.open, after=naive.close)

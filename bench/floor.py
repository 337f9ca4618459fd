"""The floor: the leanest discord.py bot. No intents, no member or message cache, no chunking;
answers every command with one constant embed, no I/O: the least any discord.py bot can do
per command (`python -m bench.floor`, configured like nekocord, on nekocord's event loop)."""

from __future__ import annotations

from typing import Any

import discord

from bench.common import BenchClient, main

EMBED = discord.Embed(description="A hug for you", colour=0xF4A6C8).set_image(
    url="https://nekos.best/api/v2/hug/00000000-0000-0000-0000-000000000000.gif"
)


async def answer(interaction: discord.Interaction[Any], category: str, user: Any) -> None:
    await interaction.response.send_message(embed=EMBED)


if __name__ == "__main__":
    main(BenchClient(answer, lean=True))

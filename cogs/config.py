"""`/config`: a server's own settings (Manage Server). Every answer is ephemeral."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, responding, wording
from bot.app import NekoBot
from bot.responding import UserError
from bot.store import GuildSettings, SettingsChange
from cogs.common import category_choices, worded_choices

KINDS = ("gif", "image")
ON_OFF = ("on", "off")  # a yes/no setting's values, named alike for every one
# Channels that can hold the bot's answers: text and announcement channels, the text chat of
# voice and stage channels, threads, and forum and media channels (whose posts are threads,
# which follow their parent). Not categories, directories or DMs.
ANSWER_CHANNEL_TYPES = [
    discord.ChannelType.text,
    discord.ChannelType.news,
    discord.ChannelType.voice,
    discord.ChannelType.stage_voice,
    discord.ChannelType.forum,
    discord.ChannelType.media,
    discord.ChannelType.news_thread,
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
]
MAX_CHANNELS = 3
COOLDOWN_COUNT_MAX = 100
COOLDOWN_SECONDS_MAX = 3600


class AnswerChannel(app_commands.Transformer):
    """A channel option offering only `ANSWER_CHANNEL_TYPES` (Discord's `channel_types`); a
    forged payload with another type is refused by `bot.validation` before the callback."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return list(ANSWER_CHANNEL_TYPES)

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> Any:
        return value


Channel = app_commands.Transform[
    app_commands.AppCommandChannel | app_commands.AppCommandThread, AnswerChannel
]


@app_commands.default_permissions(manage_guild=True)
@app_commands.allowed_installs(guilds=True, users=False)
@app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
class Config(commands.GroupCog, group_name="config", description=wording.message("command_config")):
    def __init__(self, bot: NekoBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """The command is hidden from members without Manage Server; a forged call is not."""
        if interaction.guild_id is None:
            raise UserError("error_guild_only")
        if not interaction.permissions.manage_guild:
            raise UserError("error_not_manager")
        return True

    async def _settings(self, interaction: discord.Interaction[Any]) -> tuple[int, GuildSettings]:
        assert interaction.guild_id is not None  # interaction_check
        return interaction.guild_id, await self.bot.store.guild_settings(interaction.guild_id)

    async def _change(
        self, interaction: discord.Interaction[Any], change: SettingsChange, key: str, **fields: Any
    ) -> None:
        """Made to the stored settings in one database update: concurrent changes all hold."""
        assert interaction.guild_id is not None  # interaction_check
        await self.bot.store.change_guild_settings(interaction.guild_id, change)
        await self._tell(interaction, key, **fields)

    async def _tell(self, interaction: discord.Interaction[Any], key: str, **fields: Any) -> None:
        locale = responding.private_locale(interaction)
        text = wording.message(key, locale, **wording.resolved(fields, locale))
        await responding.send_ephemeral(interaction, render.notice(text))

    @app_commands.command(name="show", description=wording.message("command_config_show"))
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        _, settings = await self._settings(interaction)
        default = self.bot.config.cooldown
        reply = render.config_page(
            settings,
            default_cooldown=str(default) if default else None,
            locale=responding.private_locale(interaction),
        )
        await responding.send_ephemeral(interaction, reply)

    @app_commands.command(name="disable", description=wording.message("command_config_disable"))
    @app_commands.describe(**wording.option_texts("config_disable", "category"))
    async def disable(self, interaction: discord.Interaction[Any], category: str) -> None:
        name = self._known(category)
        change = SettingsChange(disable=frozenset({name}))
        await self._change(interaction, change, "config_disabled_done", name=_shown(name))

    @app_commands.command(name="enable", description=wording.message("command_config_enable"))
    @app_commands.describe(**wording.option_texts("config_enable", "category"))
    async def enable(self, interaction: discord.Interaction[Any], category: str) -> None:
        name = self._known(category)
        _, settings = await self._settings(interaction)
        if name not in settings.disabled:
            await self._tell(interaction, "config_not_disabled", name=_shown(name))
            return
        change = SettingsChange(enable=frozenset({name}))
        await self._change(interaction, change, "config_enabled_done", name=_shown(name))

    @disable.autocomplete("category")
    @enable.autocomplete("category")
    async def category_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        kinds = [
            app_commands.Choice(name=k, value=k) for k in KINDS if k.startswith(current.lower())
        ]
        return (kinds + category_choices(self.bot.catalog.live(), current))[:25]

    @app_commands.command(name="channels", description=wording.message("command_config_channels"))
    @app_commands.describe(
        **wording.option_texts("config_channels", "channel", "channel2", "channel3")
    )
    async def channels(
        self,
        interaction: discord.Interaction[Any],
        channel: Channel | None = None,
        channel2: Channel | None = None,
        channel3: Channel | None = None,
    ) -> None:
        chosen = tuple(dict.fromkeys(c.id for c in (channel, channel2, channel3) if c is not None))
        change = SettingsChange(channels=chosen[:MAX_CHANNELS])
        if not chosen:
            await self._change(interaction, change, "config_channels_cleared")
            return
        names = wording.NameList(tuple(f"<#{c}>" for c in chosen))
        await self._change(interaction, change, "config_channels_done", channels=names)

    @app_commands.command(name="cooldown", description=wording.message("command_config_cooldown"))
    @app_commands.describe(**wording.option_texts("config_cooldown", "count", "seconds"))
    async def cooldown(
        self,
        interaction: discord.Interaction[Any],
        count: app_commands.Range[int, 0, COOLDOWN_COUNT_MAX],
        seconds: app_commands.Range[int, 1, COOLDOWN_SECONDS_MAX],
    ) -> None:
        change = SettingsChange(cooldown=(count, seconds))
        if count == 0:
            await self._change(interaction, change, "config_cooldown_off_done")
            return
        await self._change(
            interaction, change, "config_cooldown_done", count=count, seconds=seconds
        )

    @app_commands.command(name="pings", description=wording.message("command_config_pings"))
    @app_commands.describe(**wording.option_texts("config_pings", "value"))
    @app_commands.choices(value=worded_choices("command_config_pings_value_", ON_OFF))
    async def pings(self, interaction: discord.Interaction[Any], value: str) -> None:
        on = value == "on"
        change = SettingsChange(pings=on)
        await self._change(
            interaction, change, "config_pings_on_done" if on else "config_pings_off_done"
        )

    @app_commands.command(
        name="leaderboard", description=wording.message("command_config_leaderboard")
    )
    @app_commands.describe(**wording.option_texts("config_leaderboard", "value"))
    @app_commands.choices(value=worded_choices("command_config_pings_value_", ON_OFF))
    async def leaderboard(self, interaction: discord.Interaction[Any], value: str) -> None:
        on = value == "on"
        change = SettingsChange(leaderboard=on)
        key = "config_leaderboard_on_done" if on else "config_leaderboard_off_done"
        await self._change(interaction, change, key)

    def _known(self, name: str) -> str:
        """A category as nekos.best spells it, or a kind; anything else is refused."""
        name = name.strip().lower()
        if name in KINDS or name in self.bot.catalog:
            return name
        raise UserError("config_unknown_name")


def _shown(name: str) -> str:
    return render.safe_name(name[:64])


async def setup(bot: NekoBot) -> None:
    await bot.add_cog(Config(bot))

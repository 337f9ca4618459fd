"""`/config`: a server's own settings (Manage Server). Every answer is ephemeral."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, responding, wording
from bot.app import NekoBot
from bot.responding import UserError
from bot.store import GuildSettings
from cogs.common import category_choices

KINDS = ("gif", "image")
MAX_CHANNELS = 3
COOLDOWN_COUNT_MAX = 100
COOLDOWN_SECONDS_MAX = 3600


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

    async def _save(
        self,
        interaction: discord.Interaction[Any],
        guild_id: int,
        settings: GuildSettings,
        key: str,
        **fields: Any,
    ) -> None:
        await self.bot.store.save_guild_settings(guild_id, settings)
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
        guild_id, settings = await self._settings(interaction)
        updated = replace(settings, disabled=settings.disabled | {name})
        await self._save(interaction, guild_id, updated, "config_disabled_done", name=_shown(name))

    @app_commands.command(name="enable", description=wording.message("command_config_enable"))
    @app_commands.describe(**wording.option_texts("config_enable", "category"))
    async def enable(self, interaction: discord.Interaction[Any], category: str) -> None:
        name = self._known(category)
        guild_id, settings = await self._settings(interaction)
        if name not in settings.disabled:
            await self._tell(interaction, "config_not_disabled", name=_shown(name))
            return
        updated = replace(settings, disabled=settings.disabled - {name})
        await self._save(interaction, guild_id, updated, "config_enabled_done", name=_shown(name))

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
        channel: app_commands.AppCommandChannel | None = None,
        channel2: app_commands.AppCommandChannel | None = None,
        channel3: app_commands.AppCommandChannel | None = None,
    ) -> None:
        chosen = tuple(dict.fromkeys(c.id for c in (channel, channel2, channel3) if c is not None))
        guild_id, settings = await self._settings(interaction)
        updated = replace(settings, channels=chosen[:MAX_CHANNELS])
        if not chosen:
            await self._save(interaction, guild_id, updated, "config_channels_cleared")
            return
        names = wording.NameList(tuple(f"<#{c}>" for c in chosen))
        await self._save(interaction, guild_id, updated, "config_channels_done", channels=names)

    @app_commands.command(name="cooldown", description=wording.message("command_config_cooldown"))
    @app_commands.describe(**wording.option_texts("config_cooldown", "count", "seconds"))
    async def cooldown(
        self,
        interaction: discord.Interaction[Any],
        count: app_commands.Range[int, 0, COOLDOWN_COUNT_MAX],
        seconds: app_commands.Range[int, 1, COOLDOWN_SECONDS_MAX],
    ) -> None:
        guild_id, settings = await self._settings(interaction)
        updated = replace(settings, cooldown=(count, seconds))
        if count == 0:
            await self._save(interaction, guild_id, updated, "config_cooldown_off_done")
            return
        await self._save(
            interaction, guild_id, updated, "config_cooldown_done", count=count, seconds=seconds
        )

    @app_commands.command(name="pings", description=wording.message("command_config_pings"))
    @app_commands.describe(**wording.option_texts("config_pings", "value"))
    @app_commands.choices(
        value=[
            app_commands.Choice(
                name=app_commands.locale_str(
                    wording.message(f"command_config_pings_value_{v}"),
                    key=f"command_config_pings_value_{v}",
                ),
                value=v,
            )
            for v in ("on", "off")
        ]
    )
    async def pings(self, interaction: discord.Interaction[Any], value: str) -> None:
        guild_id, settings = await self._settings(interaction)
        on = value == "on"
        updated = replace(settings, pings=on)
        await self._save(
            interaction,
            guild_id,
            updated,
            "config_pings_on_done" if on else "config_pings_off_done",
        )

    @app_commands.command(
        name="leaderboard", description=wording.message("command_config_leaderboard")
    )
    @app_commands.describe(**wording.option_texts("config_leaderboard", "value"))
    @app_commands.choices(
        value=[
            app_commands.Choice(
                name=app_commands.locale_str(
                    wording.message(f"command_config_pings_value_{v}"),
                    key=f"command_config_pings_value_{v}",
                ),
                value=v,
            )
            for v in ("on", "off")
        ]
    )
    async def leaderboard(self, interaction: discord.Interaction[Any], value: str) -> None:
        guild_id, settings = await self._settings(interaction)
        on = value == "on"
        updated = replace(settings, leaderboard=on)
        key = "config_leaderboard_on_done" if on else "config_leaderboard_off_done"
        await self._save(interaction, guild_id, updated, key)

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

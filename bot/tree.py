"""The door every interaction passes: the command tree, and the checks buttons share with it.

Like Red-DiscordBot's `RedTree`, the tree owns what is common to every command: dropping a
gateway replay, refusing malformed options, refusing new work while the bot stops, and the one
error handler. It also knows which interactions are still being answered, so a clean shutdown
can let them finish. Persistent buttons (`bot.buttons`) pass the same gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot import responding, validation
from bot.nekos import UnknownCategory
from bot.store import StoreError

if TYPE_CHECKING:
    from bot.app import NekoBot

log = logging.getLogger(__name__)

# Keys of a command's `extras`: it fetches from nekos.best (COOLDOWN applies), it is /search.
FETCHES = "fetches"
SEARCH = "search"
# Interaction ids remembered to drop gateway redeliveries (a replay comes within minutes).
SEEN_INTERACTIONS = 10_000


class NekoTree(app_commands.CommandTree["NekoBot"]):
    def __init__(self, client: NekoBot, **options: Any) -> None:
        super().__init__(client, **options)
        self.accepting = True
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._working: set[asyncio.Task[Any]] = set()

    # -- the gate ----------------------------------------------------------------------------

    def first_delivery(self, interaction: discord.Interaction[Any]) -> bool:
        """False for an interaction id handled before: a gateway replay, already answered."""
        if interaction.id in self._seen:
            log.info("Ignored a redelivered interaction %s", interaction.id)
            return False
        self._seen[interaction.id] = None
        if len(self._seen) > SEEN_INTERACTIONS:
            self._seen.popitem(last=False)
        return True

    def admit(self, interaction: discord.Interaction[Any]) -> bool:
        """Count the interaction as being answered until its task ends (discord.py runs each
        command and each button press in a task of its own). False while stopping."""
        if not self.accepting:
            return False
        task = asyncio.current_task()
        if task is not None:
            self._working.add(task)
            task.add_done_callback(self._working.discard)
        return True

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if not self.first_delivery(interaction):
            return False
        if interaction.type is discord.InteractionType.autocomplete:
            if validation.autocomplete_ok(interaction):
                return True
            # A forged autocomplete (an option that has none, odd values): no suggestions.
            with contextlib.suppress(discord.HTTPException):
                await interaction.response.autocomplete([])
            return False
        if (problem := validation.check_options(interaction)) is not None:
            raise problem
        if not self.admit(interaction):
            raise responding.UserError("error_restarting")
        command = interaction.command
        extras = command.extras if command is not None else {}
        if extras.get(FETCHES) and (
            wait := self.cooldown(interaction, search=bool(extras.get(SEARCH)))
        ):
            raise responding.UserError("error_cooldown", seconds=math.ceil(wait))
        return True

    def cooldown(self, interaction: discord.Interaction[Any], *, search: bool = False) -> float:
        """0.0 and a use recorded, or the seconds this member must wait (before any cost)."""
        return self.client.cooldowns.try_use(
            interaction.guild_id, interaction.user.id, search=search
        )

    async def drain(self, grace: float) -> int:
        """Stop admitting interactions and wait up to `grace` s for those being answered.
        Returns how many are still running."""
        self.accepting = False
        deadline = asyncio.get_running_loop().time() + grace
        # Twice: an interaction received just before the flag flipped may not have reached the
        # gate yet; a short pause lets it start (or be told "restarting") first.
        for pause in (0.0, 0.1):
            await asyncio.sleep(pause)
            left = deadline - asyncio.get_running_loop().time()
            if self._working and left > 0:
                await asyncio.wait(set(self._working), timeout=left)
        return len(self._working)

    # -- the one error path --------------------------------------------------------------------

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        await self.report(interaction, error)

    async def report(self, interaction: discord.Interaction[Any], error: BaseException) -> None:
        """Every failure of a command or button ends here: logged as it deserves and answered
        ephemerally. Never raises."""
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(original, StoreError):
            self.client.store_errors.error("store", "Storage failed: %s", original)
        if isinstance(error, app_commands.CommandNotFound) and self.client.catalog.is_gone(
            error.name
        ):
            error = UnknownCategory(error.name)  # Discord still shows a command nekos.best dropped
        try:
            await responding.send_error(interaction, error)
        except Exception:
            log.exception("Could not report an error for interaction %s", interaction.id)

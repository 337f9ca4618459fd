"""Persistent buttons: what every press checks, and the answer to a press nobody handles.

A persistent button is a `DynamicItem` (as in discord.py's `examples/views/dynamic_counter.py`):
discord.py rebuilds it from the custom_id of a press, even after a restart. Each subclass (with
its cog) decodes its custom_id with a codec from `bot.custom_ids` and implements `press`.

discord.py 2.7 treats an exception in a `DynamicItem`'s `interaction_check` as a silent refusal
and one in `callback` as a log line, so `interaction_check` answers ephemerally itself before it
refuses and never raises, and `callback` hands every exception to the tree's error path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

import discord

from bot import custom_ids, render, render_buttons, responding, wording

if TYPE_CHECKING:
    from bot.app import NekoBot

log = logging.getLogger(__name__)

MAX_SNOWFLAKE = 2**63  # snowflakes are positive and below 2**63; a forged base-36 id can say more


def bot_of(interaction: discord.Interaction[Any]) -> NekoBot:
    return cast("NekoBot", interaction.client)


async def first_checks(
    interaction: discord.Interaction[Any], name: str, snowflakes: Iterable[int]
) -> responding.UserError | bool:
    """The checks every press of the bot's buttons passes first (counted as `button:name`):
    False for a gateway replay of a press already answered (nothing to say), the refusal to
    answer with, or True."""
    tree = bot_of(interaction).tree
    if not await tree.first_delivery(interaction):
        return False
    tree.observe(interaction, f"button:{name}")
    if not all(0 < snowflake < MAX_SNOWFLAKE for snowflake in snowflakes):
        return responding.UserError("error_button_expired")
    if not tree.admit(interaction):
        return responding.UserError("error_restarting")
    return True


class PersistentButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"nc:base"):
    """Base of the bot's persistent buttons (never registered itself). A subclass names its
    custom_id `codec` (and its template) and implements `press`."""

    codec: ClassVar[type[custom_ids.ButtonId]]

    def __init__(self, value: custom_ids.ButtonId) -> None:
        super().__init__(render_buttons.button(value))
        self.value = value

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> Self:
        return cls(cls.codec.from_match(match))

    async def press(self, interaction: discord.Interaction[Any]) -> None:
        """Answer the press (through `bot.responding`); raise to report an error."""
        raise NotImplementedError

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        try:
            name = type(self).__name__.removesuffix("Button").lower()  # ReturnButton: "return"
            checked = await first_checks(interaction, name, self.value.snowflakes)
            if checked is False:
                return False
            if checked is True:
                try:  # every press posts a GIF in public: the server's rules and cooldowns
                    await bot_of(interaction).tree.enforce(
                        interaction,
                        category=self.value.category,
                        kind=None,
                        public=True,
                        fetches=True,
                    )
                    return True
                except responding.UserError as refused:
                    checked = refused
            await responding.send_error(interaction, checked)
        except Exception:
            log.exception("Checking a press of %s failed", type(self).__name__)
        return False

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self.press(interaction)
        except Exception as exc:
            await bot_of(interaction).tree.report(interaction, exc)


async def answer_unknown_press(interaction: discord.Interaction[Any]) -> None:
    """A press on a component no handler knows (forged, or from a version long gone): say it
    expired, rather than leave the user with "This interaction failed"."""
    if interaction.type is not discord.InteractionType.component:
        return
    custom_id = responding.custom_id(interaction)
    # discord.py runs a persistent button's handler only for a custom_id that is really on the
    # message; anything else it drops without a word. (The bot sends no message-bound views.)
    if custom_ids.is_persistent_id(custom_id) and _on_message(interaction.message, custom_id):
        return  # the button's own handler answers
    if not await bot_of(interaction).tree.first_delivery(interaction):
        return
    log.info("Unknown button pressed: %r", custom_id[:100])
    text = wording.message("error_button_expired", responding.private_locale(interaction))
    await responding.send_ephemeral(interaction, render.error(text))


def _on_message(message: discord.Message | None, custom_id: str) -> bool:
    """Whether the message carries a component with this custom_id."""
    stack: list[Any] = list(message.components) if message is not None else []
    while stack:
        component = stack.pop()
        if getattr(component, "custom_id", None) == custom_id:
            return True
        stack.extend(getattr(component, "children", None) or [])
    return False

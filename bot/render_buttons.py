"""The buttons under the bot's messages and the views that carry them (pure, as `bot.render`,
which uses them; their own module so that `bot/render.py` stays under the size every module
keeps to). What a persistent button's custom_id holds is `bot.custom_ids`; what a press does
is `bot.buttons`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import discord

from bot import text, wording
from bot.custom_ids import ButtonId, ReturnId
from bot.text import clip
from bot.wording import ENGLISH

__all__ = ["BUTTON_LABEL", "button", "link_button", "stopped_view", "view_from"]

BUTTON_LABEL = 80  # Discord's limit (docs/discord.md)


def button(value: ButtonId, locale: str = ENGLISH) -> discord.ui.Button[Any]:
    """The persistent button a custom_id stands for ("Hug back", "Another")."""
    if isinstance(value, ReturnId):
        label = wording.return_label(value.category, locale) or wording.message(
            "label_return", locale
        )
        style = discord.ButtonStyle.primary
        emoji = None
    else:
        label, style, emoji = (
            wording.message("label_another", locale),
            discord.ButtonStyle.secondary,
            "🔁",
        )
    return discord.ui.Button(
        label=clip(label, BUTTON_LABEL), style=style, emoji=emoji, custom_id=value.custom_id
    )


def link_button(label: str, url: str | None) -> discord.ui.Button[Any] | None:
    """A button opening `url`, or None if it is no safe link."""
    link = text.safe_link(url)
    return discord.ui.Button(label=clip(label, BUTTON_LABEL), url=link) if link else None


def stopped_view(items: Iterable[discord.ui.Item[Any] | None]) -> discord.ui.View | None:
    """The items given (None ones left out, at most 25) in a view that is sent but never kept;
    None if there are none."""
    present = [item for item in items if item is not None][:25]
    if not present:
        return None
    view = discord.ui.View(timeout=None)
    for item in present:
        view.add_item(item)
    # Stopped before it is sent: discord.py then sends its components but keeps no copy. Presses
    # are answered by the DynamicItem templates (bot.buttons), not by this view; a view kept per
    # message would only grow memory by ~3 KiB a message for ever (its buttons have custom_ids
    # and no timeout) and cost a ViewStore update per answer.
    view.stop()
    return view


def view_from(message: discord.Message) -> discord.ui.View | None:
    """The buttons `message` has, as a view to edit and send again (stopped, as `stopped_view`)."""
    if not message.components:
        return None
    view = discord.ui.View.from_message(message, timeout=None)
    view.stop()  # as in `stopped_view`: sent, never kept
    return view if view.children else None

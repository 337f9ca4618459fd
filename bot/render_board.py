"""The `/leaderboard` embed and its page buttons (pure, as `bot.render`, whose helpers it uses;
its own module so that `bot/render.py` stays under the size every module keeps to)."""

from __future__ import annotations

from typing import Any

import discord

from bot import wording
from bot.custom_ids import PageId
from bot.render import (
    BUTTON_LABEL,
    EMBED_DESCRIPTION,
    EMBED_FOOTER,
    EMBED_TITLE,
    GIF_COLOUR,
    Reply,
    clip,
    safe_name,
)
from bot.store import Leaderboard
from bot.store.base import BOARD_DEPTH, BoardEntry
from bot.wording import ENGLISH

__all__ = ["PAGE_SIZE", "leaderboard"]

PAGE_SIZE = 10


def _line(entry: BoardEntry, locale: str) -> str:
    if entry.partner_id is None:
        return wording.message(
            "board_row", locale, rank=entry.rank, member=f"<@{entry.user_id}>", count=entry.count
        )
    return wording.message(
        "board_pair_row",
        locale,
        rank=entry.rank,
        member=f"<@{entry.user_id}>",
        partner=f"<@{entry.partner_id}>",
        count=entry.count,
    )


def leaderboard(
    board: Leaderboard, *, page: PageId, category_name: str | None, locale: str = ENGLISH
) -> Reply:
    """One page of a board: its lines (mentions: an embed pings nobody, and the reply allows no
    mentions either), the asker's own line when it is not on the page, Previous and Next while
    there are ranks that way (up to `BOARD_DEPTH`)."""

    def say(key: str, **fields: Any) -> str:
        return wording.message(key, locale, **fields)

    scope = safe_name(category_name) if category_name else say("board_scope_all")
    period = say(f"board_period_{page.period}")
    embed = discord.Embed(title=clip(say(f"board_title_{page.board}"), EMBED_TITLE))
    embed.colour = GIF_COLOUR
    last = min(board.ranked, BOARD_DEPTH)
    if not board.entries:
        embed.description = say("board_empty")
        embed.set_footer(text=clip(say("board_footer_empty", scope=scope, period=period), 200))
    else:
        rows = [_line(entry, locale) for entry in board.entries]
        own = board.own
        if own is not None and own not in board.entries:
            rows += ["", say("board_you", rank=own.rank, count=own.count)]
        embed.description = clip("\n".join(rows), EMBED_DESCRIPTION)
        first, shown = board.entries[0].rank, board.entries[-1].rank
        footer = say(
            "board_footer", scope=scope, period=period, first=first, last=shown, total=last
        )
        embed.set_footer(text=clip(footer, EMBED_FOOTER))
    view = None
    if last > PAGE_SIZE:
        view = discord.ui.View(timeout=None)
        previous = max(0, page.offset - PAGE_SIZE)
        for key, offset, disabled in (
            ("label_previous", previous, page.offset == 0),
            ("label_next", page.offset + PAGE_SIZE, page.offset + PAGE_SIZE >= last),
        ):
            target = PageId(
                page.board, page.period, page.category, offset, page.origin_id, page.invoker_id
            )
            view.add_item(
                discord.ui.Button(
                    label=clip(say(key), BUTTON_LABEL),
                    style=discord.ButtonStyle.secondary,
                    custom_id=target.custom_id,
                    disabled=disabled,
                )
            )
    return Reply(embeds=[embed], view=view)

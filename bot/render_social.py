"""The `/leaderboard` embed and its page buttons, and the `/mydata` file (pure, as `bot.render`,
whose helpers it uses; its own module so that `bot/render.py` stays under the size every module
keeps to)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

import discord

from bot import wording
from bot.custom_ids import PageId
from bot.render import EMBED_DESCRIPTION, EMBED_FOOTER, EMBED_TITLE, GIF_COLOUR, Reply, safe_name
from bot.render_buttons import BUTTON_LABEL
from bot.store import Leaderboard, UserData
from bot.store.base import BOARD_DEPTH, BoardEntry
from bot.text import clip
from bot.wording import ENGLISH

__all__ = ["MYDATA_FILE", "PAGE_SIZE", "leaderboard", "mydata"]

MYDATA_FILE = "nekocord-my-data.json"

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


def mydata(data: UserData, *, user_id: int, returnable: set[str], locale: str = ENGLISH) -> Reply:
    """A member's data as a JSON file (ids as strings: JavaScript cannot hold snowflakes as
    numbers) and a one-line summary. `returnable`: the actions that have a return button, so
    that only their unclaimed markers are listed as returns still to make."""
    pending = [p for p in data.pending_returns if p.action in returnable]

    def ids(row: dict[str, Any]) -> dict[str, Any]:
        return {k: str(v) if k.endswith("_id") else v for k, v in row.items()}

    document = {
        "user_id": str(user_id),
        "counts": [ids(asdict(k)) for k in data.counts],
        "day_totals": [ids(asdict(k)) for k in data.days],
        "pending_returns": [ids(asdict(p)) for p in pending],
        "opted_out_at": data.opted_out_at,
        "blocks": [asdict(b) for b in data.blocks],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False)
    summary = wording.message(
        "mydata_summary",
        locale,
        given=sum(k.given for k in data.counts),
        received=sum(k.received for k in data.counts),
        servers=len({k.guild_id for k in data.counts}),
        days=len(data.days),
        returns=len(pending),
    )
    if data.opted_out_at is not None:
        summary += " " + wording.message("mydata_opted_out", locale)
    file = discord.File(io.BytesIO(text.encode()), filename=MYDATA_FILE)
    return Reply(content=clip(summary, 2000), files=[file], ephemeral=True)

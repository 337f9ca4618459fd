"""Untrusted text made safe to show: names, notes and everything nekos.best sends.

Discord renders markdown in message content, embed titles, descriptions and field values, and
every text field shows Unicode bidi controls and line breaks as they come. So:
- names and notes are escaped (markdown, mentions) before they are put into a template;
- link targets are accepted only as http(s) URLs that cannot end a markdown link early;
- every finished text field loses its bidi embeddings, overrides and isolates (a lone U+202E
  would reverse the rest of the sentence) and shows at most two line breaks in a row, counting
  lines that show nothing (whitespace, zero-width characters, a bare `>`) as part of the run.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

import discord

# LRE, RLE, PDF, LRO, RLO and LRI, RLI, FSI, PDI: they change the order of what follows.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_LINE_BREAK = re.compile("\r\n|[\r\n\u2028\u2029\u0085]")
# What a line may hold and still show nothing: whitespace, zero-width characters, a quote mark.
_SHOWS_NOTHING = re.compile("[\\s\u200b\u200c\u200d\u2060\ufeff\u180e>]*")
# Characters that may end a markdown link target early or split it.
_UNSAFE_IN_LINK = re.compile(r"[\s()<>\[\]\"'`\\]")
LINK_MAX = 512
# Read left to right: an escape pair (kept as it is) or a bare bracket (to escape).
_ESCAPE_OR_BRACKET = re.compile(r"\\.|[\[\]]", re.DOTALL)


def clip(text: str, limit: int) -> str:
    """Truncate to `limit` characters, marking the cut. Never fails."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


@functools.lru_cache(maxsize=2048)  # the same members' names, message after message
def escaped(text: str) -> str:
    """Untrusted text put into markdown: inert (no formatting, links or mentions), also as the
    text of a link of ours (a bare `]` would end it early)."""
    text = discord.utils.escape_markdown(strip_bidi(text))
    text = _ESCAPE_OR_BRACKET.sub(lambda m: m[0] if len(m[0]) == 2 else "\\" + m[0], text)
    return discord.utils.escape_mentions(text)


def strip_bidi(text: str) -> str:
    return _BIDI_CONTROLS.sub("", text)


def tame_lines(text: str) -> str:
    """One line-break character, no blank lines at either end, and at most one line that shows
    nothing between two that do (so never more than two line breaks in a row)."""
    lines = _LINE_BREAK.split(text)
    kept: list[str] = []
    blank_run = 0
    for line in lines:
        if _SHOWS_NOTHING.fullmatch(line):
            blank_run += 1
            continue
        if kept and blank_run:
            kept.append("")
        blank_run = 0
        kept.append(line)
    return "\n".join(kept)


def field_text(text: str) -> str:
    """A finished text field (description, field value, footer…): no bidi controls, no floods."""
    return tame_lines(strip_bidi(text))


def safe_link(url: str | None) -> str | None:
    """An http(s) URL fit for a markdown link or a link button, or None. Characters that could
    end the link early are percent-encoded."""
    if not url or len(url) > LINK_MAX:
        return None
    url = _UNSAFE_IN_LINK.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), url.strip())
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def finish_embed(embed: discord.Embed) -> discord.Embed:
    """Apply `field_text` to every text field of a built embed."""
    if embed.title:
        embed.title = field_text(embed.title)
    if embed.description:
        embed.description = field_text(embed.description)
    if embed.footer.text:
        embed.set_footer(text=field_text(embed.footer.text), icon_url=embed.footer.icon_url)
    if embed.author.name:
        embed.set_author(
            name=field_text(embed.author.name), url=embed.author.url, icon_url=embed.author.icon_url
        )
    for index, item in enumerate(embed.fields):
        embed.set_field_at(
            index,
            name=field_text(item.name or "") or "\u200b",
            value=field_text(item.value or "") or "\u200b",
            inline=bool(item.inline),
        )
    return embed

"""Hostile text end to end: markdown and link tricks in what nekos.best sends, bidi controls and
line floods in what members type. Everything shown publicly must read as plain text."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.discord import FakeDiscord, make_user
from tests.helpers import is_ephemeral

BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
BREAK = re.compile("\r\n|[\r\n\u2028\u2029\u0085]")
SHOWS_NOTHING = re.compile("[\\s\u200b\u200c\u200d\u2060\ufeff>]*")
# A bracket not escaped: preceded by an even number (or no) backslashes.
BARE_OPEN = re.compile(r"(?<!\\)(?:\\\\)*\[")
BARE_CLOSE = re.compile(r"(?<!\\)(?:\\\\)*\]")
EVIL = "https://evil.example/nitro"


def texts(message: dict[str, Any]) -> list[str]:
    """Every text field of a message: content, and each embed's title, description, footer,
    author name, field names and values."""
    out = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        out += [embed.get("title") or "", embed.get("description") or ""]
        out += [(embed.get("footer") or {}).get("text") or ""]
        out += [(embed.get("author") or {}).get("name") or ""]
        for item in embed.get("fields") or []:
            out += [item.get("name") or "", item.get("value") or ""]
    return out


def most_breaks_in_a_row(text: str) -> int:
    """Line breaks in a row, counting the lines between them that show nothing."""
    most = run = 0
    for index, line in enumerate(BREAK.split(text)):
        if index:
            run += 1
        if not SHOWS_NOTHING.fullmatch(line):
            most, run = max(most, run), 0
    return max(most, run)


async def source_of(discord_api: FakeDiscord, url: str) -> dict[str, Any]:
    handle = await discord_api.interact(discord_api.slash("source", {"url": url}))
    return await handle.wait_message()


async def test_markdown_from_nekos_best_stays_text(bot, discord_api, nekos) -> None:
    asset = nekos.plant(
        "waifu",
        artist_name=f"[Free Nitro]({EVIL})",
        artist_href="https://www.pixiv.net/en/users/1)[x](https://evil.example/two",
        source_url=f"https://www.pixiv.net/en/artworks/2 [claim]({EVIL})",
    )
    message = await source_of(discord_api, asset.url)
    fields = {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}
    artist = fields["Artist"]
    # Our own link is the only one: one bare "[" and one bare "]"; its target has no ")".
    assert len(BARE_OPEN.findall(artist)) == 1 and len(BARE_CLOSE.findall(artist)) == 1, artist
    target = artist[artist.rindex("](") + 2 : -1]
    assert target.startswith("https://www.pixiv.net/en/users/1")
    assert not re.search(r"[\s()<>]", target), target
    for value in fields.values():
        assert f"]({EVIL}" not in value.replace("\\]", ""), value
    source = fields["Source"]
    assert not re.search(r"[\s()\[\]]", source), source
    assert source.startswith("https://www.pixiv.net/en/artworks/2")

    gif = nekos.plant("hug", anime_name=f"[Free Nitro]({EVIL})\u202e")
    message = await source_of(discord_api, gif.url)
    anime = next(f["value"] for f in message["embeds"][0]["fields"] if f["name"] == "Anime")
    assert not BARE_OPEN.search(anime) and not BARE_CLOSE.search(anime), anime
    assert not BIDI.search(anime)


async def test_bidi_controls_and_line_floods_are_tamed(bot, discord_api) -> None:
    sneaky = make_user(name="mallory", global_name="Mallory\u202eevil")
    bob = make_user(name="bob", global_name="\u2067Bob")
    note = "hi" + "\n" * 98 + "\u2028 \u200b \n>\n" * 10 + "\u202ebye"  # 184 characters
    handle = await discord_api.interact(
        discord_api.slash("hug", {"user": bob, "message": note}, user=sneaky)
    )
    message = await handle.wait_message()
    assert not is_ephemeral(message)  # still posted publicly
    assert message["content"] == f"<@{bob['id']}>"
    for text in texts(message):
        assert not BIDI.search(text), repr(text)
        assert most_breaks_in_a_row(text) <= 2, repr(text)
    description = message["embeds"][0]["description"]
    assert "Mallory" in description and "Bob" in description and "bye" in description

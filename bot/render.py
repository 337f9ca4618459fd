"""The only place that shapes output: embeds, buttons, mentions, and Discord's size limits.

Everything here is pure: it turns results and names into a `Reply` (and custom_ids into the
values they carry); sending is `bot.responding`'s job.
Wording comes from `bot.wording`; this module decides where it goes and how long it may be.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import discord

from bot import text, wording
from bot.nekos import CATEGORY_NAME_PATTERN, Category, Credit, Kind, Result
from bot.store import ActionCounts, ActionStat
from bot.wording import Case

# Discord's limits (docs/discord.md).
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FOOTER = 2048
EMBED_AUTHOR = 256
EMBED_FIELD_VALUE = 1024
EMBED_FIELD_NAME = 256
EMBEDS_TOTAL = 6000
EMBEDS_PER_MESSAGE = 10
IMAGES_PER_MESSAGE = EMBEDS_PER_MESSAGE  # one embed per image: the `amount` options' maximum
CONTENT = 2000
BUTTON_LABEL = 80
NOTE_MAX = 200  # the optional `message` of an action, as the command declares it

GIF_COLOUR = discord.Colour(0xF4A6C8)
IMAGE_COLOUR = discord.Colour(0x9AD0F5)
ERROR_COLOUR = discord.Colour(0xE06C75)

# Nobody is pinged unless a reply names them explicitly.
NO_PINGS = discord.AllowedMentions.none()


class Person(Protocol):
    """Whoever an answer names: a `discord.User` or `Member`, or a stand-in for one."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def mention(self) -> str: ...


@dataclass
class Reply:
    """What to send: the keyword arguments of send_message / edit_original_response.

    `followup` is a second message sent after this one (a return press updates the original
    message, then posts the returned action). `only_view` edits change the buttons alone."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    view: discord.ui.View | None = None
    allowed_mentions: discord.AllowedMentions = NO_PINGS
    ephemeral: bool = False
    followup: Reply | None = None
    only_view: bool = False

    def __post_init__(self) -> None:
        # Every text field, whatever built it: no bidi controls, no line floods (bot.text).
        for embed in self.embeds:
            text.finish_embed(embed)
        if self.content:
            self.content = text.field_text(self.content)

    def send_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "content": self.content,
            "embeds": self.embeds,
            "allowed_mentions": self.allowed_mentions,
            "ephemeral": self.ephemeral,
        }
        if self.view is not None:
            kwargs["view"] = self.view
        return kwargs

    def edit_kwargs(self) -> dict[str, Any]:
        if self.only_view:
            return {"view": self.view}
        kwargs = self.send_kwargs()
        del kwargs["ephemeral"]
        if self.view is None:
            kwargs["view"] = None
        return kwargs


def clip(text: str, limit: int) -> str:
    """Truncate to `limit` characters, marking the cut. Never fails."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def safe_name(name: str) -> str:
    """A name (a member's, an artist's, an anime's) made inert for markdown and mentions (embeds
    never ping, but `@everyone` in a name should still read as text)."""
    return text.escaped(name or "someone")


def display_name(user: Person) -> str:
    return safe_name(user.display_name or user.name)


def quote(note: str) -> str:
    """User text shown under a sentence: escaped, quoted, one block."""
    quoted = clip(text.escaped(text.tame_lines(note.strip())), NOTE_MAX * 2)
    return "\n".join("> " + line if line.strip() else ">" for line in quoted.splitlines())


def error(message: str) -> Reply:
    return Reply(
        embeds=[discord.Embed(description=clip(message, EMBED_DESCRIPTION), colour=ERROR_COLOUR)],
        ephemeral=True,
    )


def notice(message: str, *, ephemeral: bool = True) -> Reply:
    return Reply(content=clip(message, CONTENT), ephemeral=ephemeral)


# -- buttons ------------------------------------------------------------------------------------
# Persistent buttons carry everything a press needs in their custom_id, so they survive restarts.
# This is the custom_id codec only; the items that answer presses live with their cog. IDs are
# written in base 36 to stay far below Discord's 100-character limit.

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_ID = r"[0-9a-z]{1,14}"
_CATEGORY = CATEGORY_NAME_PATTERN


def b36(number: int) -> str:
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = _B36[rest] + out
        if not number:
            return out


@dataclass(frozen=True, slots=True)
class ReturnId:
    """ "Hug back" on an action from `actor_id` to `target_id`."""

    TEMPLATE: ClassVar[str] = (
        rf"nc:r:(?P<category>{_CATEGORY}):(?P<action>{_ID}):(?P<actor>{_ID}):(?P<target>{_ID})"
    )
    category: str
    action_id: int
    actor_id: int
    target_id: int

    @property
    def custom_id(self) -> str:
        ids = (self.action_id, self.actor_id, self.target_id)
        return f"nc:r:{self.category}:" + ":".join(map(b36, ids))

    @property
    def snowflakes(self) -> tuple[int, ...]:
        return (self.action_id, self.actor_id, self.target_id)

    @classmethod
    def from_match(cls, match: re.Match[str]) -> ReturnId:
        return cls(
            match["category"],
            int(match["action"], 36),
            int(match["actor"], 36),
            int(match["target"], 36),
        )

    def button(self) -> discord.ui.Button[Any]:
        label = wording.return_label(self.category) or wording.message("label_return")
        return discord.ui.Button(
            label=clip(label, BUTTON_LABEL),
            style=discord.ButtonStyle.primary,
            custom_id=self.custom_id,
        )


@dataclass(frozen=True, slots=True)
class RerollId:
    """ "Another" on an action by `actor_id`."""

    TEMPLATE: ClassVar[str] = rf"nc:a:(?P<category>{_CATEGORY}):(?P<action>{_ID}):(?P<actor>{_ID})"
    category: str
    action_id: int
    actor_id: int

    @property
    def custom_id(self) -> str:
        return f"nc:a:{self.category}:{b36(self.action_id)}:{b36(self.actor_id)}"

    @property
    def snowflakes(self) -> tuple[int, ...]:
        return (self.action_id, self.actor_id)

    @classmethod
    def from_match(cls, match: re.Match[str]) -> RerollId:
        return cls(match["category"], int(match["action"], 36), int(match["actor"], 36))

    def button(self) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label=wording.message("label_another"),
            style=discord.ButtonStyle.secondary,
            emoji="🔁",
            custom_id=self.custom_id,
        )


ButtonId = ReturnId | RerollId


# Every custom_id the bot's persistent buttons answer (a press on anything else has expired).
PERSISTENT_IDS = (re.compile(ReturnId.TEMPLATE), re.compile(RerollId.TEMPLATE))


def is_persistent_id(custom_id: str) -> bool:
    return any(pattern.fullmatch(custom_id) for pattern in PERSISTENT_IDS)


def _link_button(label: str, url: str | None) -> discord.ui.Button[Any] | None:
    link = text.safe_link(url)
    return discord.ui.Button(label=clip(label, BUTTON_LABEL), url=link) if link else None


def _view(items: Iterable[discord.ui.Item[Any] | None]) -> discord.ui.View | None:
    present = [item for item in items if item is not None][:25]
    if not present:
        return None
    view = discord.ui.View(timeout=None)
    for item in present:
        view.add_item(item)
    return view


# -- answers -------------------------------------------------------------------------------------


def _credit_footer(credit: Credit) -> str | None:
    if credit.anime_name:
        return clip(wording.message("footer_anime", anime=credit.anime_name), EMBED_FOOTER)
    return None


def _artist_author(embed: discord.Embed, credit: Credit) -> None:
    if credit.artist_name:
        href = text.safe_link(credit.artist_href)
        embed.set_author(
            name=clip(wording.message("label_art_by", artist=credit.artist_name), EMBED_AUTHOR),
            url=href,
        )


def action(
    *,
    category: str,
    result: Result,
    actor: Person,
    target: Person | None,
    case: Case,
    note: str | None = None,
    counts: ActionCounts | None = None,
    action_id: int | None = None,
    returnable: bool = False,
) -> Reply:
    """A GIF action: the sentence, the GIF, the anime credit, and the buttons.

    Only the target is pinged, through `content` (mentions in embeds notify nobody)."""
    actor_name = display_name(actor)
    target_name = display_name(target) if target is not None else None
    sentence = wording.action_sentence(category, case, actor=actor_name, target=target_name)
    parts = [sentence]
    if note and note.strip():
        parts.append(quote(note))
    if counts is not None and target is not None and case is Case.OTHER:
        parts.append(
            "-# "
            + wording.message(
                "counter_line",
                target=target_name,
                total=counts.received_total,
                noun=wording.noun(category, counts.received_total),
                pair=counts.pair,
                actor=actor_name,
            )
        )
    embed = discord.Embed(description=clip("\n".join(parts), EMBED_DESCRIPTION), colour=GIF_COLOUR)
    embed.set_image(url=result.url)
    if footer := _credit_footer(result.credit):
        embed.set_footer(text=footer)

    content = None
    mentions = NO_PINGS
    if target is not None and case is Case.OTHER:
        content = target.mention
        mentions = discord.AllowedMentions(
            everyone=False, roles=False, replied_user=False, users=[discord.Object(target.id)]
        )

    buttons: list[discord.ui.Item[Any] | None] = []
    if action_id is not None:
        if returnable and target is not None and case is Case.OTHER:
            buttons.append(ReturnId(category, action_id, actor.id, target.id).button())
        buttons.append(RerollId(category, action_id, actor.id).button())
    return Reply(content=content, embeds=[embed], view=_view(buttons), allowed_mentions=mentions)


def rerolled(message: discord.Message, result: Result) -> Reply:
    """The same action message with a fresh GIF (sentence, ping and buttons unchanged)."""
    embed = message.embeds[0].copy() if message.embeds else discord.Embed(colour=GIF_COLOUR)
    embed.set_image(url=result.url)
    footer = _credit_footer(result.credit)
    if footer:
        embed.set_footer(text=footer)
    else:
        embed.remove_footer()
    return Reply(content=message.content or None, embeds=[embed], view=_view_from(message))


def returned(message: discord.Message | None, custom_id: str, then: Reply) -> Reply:
    """The original message's buttons with its return button disabled, then `then` (the
    returned action) as a new message."""
    view = _view_from(message) if message is not None else None
    for item in view.children if view is not None else ():
        if isinstance(item, discord.ui.Button) and item.custom_id == custom_id:
            item.disabled = True
            item.label = clip(wording.message("label_returned"), BUTTON_LABEL)
    return Reply(view=view, only_view=True, followup=then)


def _view_from(message: discord.Message) -> discord.ui.View | None:
    if not message.components:
        return None
    view = discord.ui.View.from_message(message, timeout=None)
    return view if view.children else None


def _credited_embeds(
    results: Sequence[Result], kind: Kind, first: Callable[[discord.Embed], None]
) -> Reply:
    """One embed per result (at most 10): a GIF credits its anime in the footer, an image its
    artist in the author line, with a link button to its source. `first` decorates the first
    embed (the sentence or the search title)."""
    results = list(results)[:EMBEDS_PER_MESSAGE]
    embeds: list[discord.Embed] = []
    buttons: list[discord.ui.Item[Any] | None] = []
    for index, result in enumerate(results):
        embed = discord.Embed(colour=GIF_COLOUR if kind is Kind.GIF else IMAGE_COLOUR)
        if index == 0:
            first(embed)
        embed.set_image(url=result.url)
        if kind is Kind.GIF:
            if footer := _credit_footer(result.credit):
                embed.set_footer(text=footer)
        else:
            _artist_author(embed, result.credit)
            label = wording.message("label_source")
            if len(results) > 1:
                label = f"{label} {index + 1}"
            buttons.append(_link_button(label, result.credit.source_url))
        embeds.append(embed)
    return Reply(embeds=_fit(embeds), view=_view(buttons))


def images(*, category: str, results: Sequence[Result], actor: Person) -> Reply:
    """Up to 10 images, each crediting its artist, with a link button to each source."""
    line = clip(wording.image_line(category, actor=display_name(actor)), EMBED_DESCRIPTION)

    def intro(embed: discord.Embed) -> None:
        embed.description = line

    return _credited_embeds(results, Kind.IMAGE, intro)


def search(*, results: Sequence[Result], query: str, kind: Kind) -> Reply:
    """Search results as credited embeds (a GIF credits its anime, an image its artist)."""
    count = min(len(results), EMBEDS_PER_MESSAGE)
    title = clip(wording.message("search_title", query=safe_name(query), count=count), EMBED_TITLE)

    def heading(embed: discord.Embed) -> None:
        embed.title = title

    return _credited_embeds(results, kind, heading)


def credit(*, credit: Credit, url: str, category: str | None) -> Reply:
    """The credit of one nekos.best asset, as /source and "Image credit" show it."""
    embed = discord.Embed(title=clip(wording.message("credit_title"), EMBED_TITLE), url=url)
    embed.colour = GIF_COLOUR if url.endswith(".gif") else IMAGE_COLOUR
    if credit.anime_name:
        anime = clip(safe_name(credit.anime_name), EMBED_FIELD_VALUE)
        embed.add_field(name=wording.message("field_anime"), value=anime)
    if credit.artist_name:
        artist = clip(safe_name(credit.artist_name), 200)
        if href := text.safe_link(credit.artist_href):
            artist = f"[{artist}]({href})"
        embed.add_field(name=wording.message("field_artist"), value=clip(artist, EMBED_FIELD_VALUE))
    if credit.source_url:
        source = text.safe_link(credit.source_url) or safe_name(credit.source_url)
        embed.add_field(name=wording.message("field_source"), value=clip(source, EMBED_FIELD_VALUE))
    if credit.is_empty:
        embed.description = wording.message("credit_unknown")
    embed.set_thumbnail(url=url)
    if category:
        embed.set_footer(text=clip(category, EMBED_FOOTER))
    view = _view([_link_button(wording.message("label_source"), credit.source_url)])
    return Reply(embeds=[embed], view=view)


def credits(entries: Sequence[tuple[str, Credit | None, str | None]]) -> Reply:
    """Several credits (the "Image credit" menu on a message with several links)."""
    replies = [
        credit(credit=c, url=url, category=cat) if c is not None else None
        for url, c, cat in entries[:EMBEDS_PER_MESSAGE]
    ]
    embeds: list[discord.Embed] = []
    for (url, _c, _cat), reply in zip(entries, replies, strict=False):
        if reply is None:
            embeds.append(
                discord.Embed(description=wording.message("error_asset_missing"), url=url)
            )
        else:
            embeds.extend(reply.embeds)
    return Reply(embeds=_fit(embeds), ephemeral=True)


def help_page(
    *,
    categories: Sequence[Category],
    command_names: dict[str, str],
    invite_url: str | None,
) -> Reply:
    """What the bot does, the categories grouped by kind, the fixed commands, the invite."""
    embed = discord.Embed(
        title=wording.message("help_title"),
        description=clip(wording.message("help_intro"), EMBED_DESCRIPTION),
        colour=GIF_COLOUR,
    )
    for kind, key in ((Kind.GIF, "help_actions"), (Kind.IMAGE, "help_images")):
        names = [
            f"/{command_names[c.name]}" if c.name in command_names else safe_name(c.name)
            for c in categories
            if c.kind is kind
        ]
        if names:
            embed.add_field(
                name=clip(f"{wording.message(key)} ({len(names)})", EMBED_FIELD_NAME),
                value=clip(" ".join(names), EMBED_FIELD_VALUE),
                inline=False,
            )
    embed.add_field(
        name=wording.message("help_other"),
        value=clip(wording.message("help_commands"), EMBED_FIELD_VALUE),
        inline=False,
    )
    view = _view([_link_button(wording.message("label_invite"), invite_url)])
    if invite_url:
        embed.set_footer(text=clip(wording.message("help_footer"), EMBED_FOOTER))
    return Reply(embeds=[embed], view=view, ephemeral=True)


def stats(
    *,
    user: Person,
    lines: Sequence[ActionStat],
    partners: Sequence[tuple[str, int]],
) -> Reply:
    """Given and received per action in this server, and the top partners."""
    embed = discord.Embed(
        title=clip(wording.message("stats_title", name=display_name(user)), EMBED_TITLE),
        colour=GIF_COLOUR,
    )
    if not lines:
        embed.description = wording.message("stats_empty")
    else:
        rows = [
            f"**{safe_name(line.action)}** · "
            + wording.message("stats_row", given=line.given, received=line.received)
            for line in lines
        ]
        embed.add_field(
            name=wording.message("stats_actions"),
            value=clip("\n".join(rows), EMBED_FIELD_VALUE),
            inline=False,
        )
    if partners:
        embed.add_field(
            name=wording.message("stats_partners"),
            value=clip(
                "\n".join(f"{name} · {count}" for name, count in partners), EMBED_FIELD_VALUE
            ),
            inline=False,
        )
    return Reply(embeds=[embed])


def _fit(embeds: list[discord.Embed]) -> list[discord.Embed]:
    """Drop trailing embeds until the message is within Discord's 6,000-character total."""
    embeds = embeds[:EMBEDS_PER_MESSAGE]
    while len(embeds) > 1 and sum(len(e) for e in embeds) > EMBEDS_TOTAL:
        embeds.pop()
    return embeds

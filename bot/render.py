"""The only place that shapes output: embeds, buttons, mentions, and Discord's size limits.

Everything here is pure: it turns results and names into a `Reply`; sending is
`bot.responding`'s job. Wording comes from `bot.wording`, in the language the caller names
(`locale`); this module decides where it goes and how long it may be. The buttons and the views
that carry them are `bot.render_buttons`; the leaderboard and /mydata, `bot.render_social`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import discord

from bot import text, wording
from bot.custom_ids import RerollId, ReturnId
from bot.nekos import Category, Credit, Kind, Result
from bot.render_buttons import BUTTON_LABEL, button, link_button, stopped_view, view_from
from bot.store import ActionCounts, ActionStat, GuildSettings
from bot.text import clip
from bot.wording import ENGLISH, Case

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
    files: list[discord.File] = field(default_factory=list)

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
        if self.files:
            kwargs["files"] = self.files
        return kwargs

    def edit_kwargs(self) -> dict[str, Any]:
        if self.only_view:
            return {"view": self.view}
        kwargs = self.send_kwargs()
        del kwargs["ephemeral"]
        if self.view is None:
            kwargs["view"] = None
        return kwargs


def safe_name(name: str) -> str:
    """A name (a member's, an artist's, an anime's) made inert for markdown and mentions (embeds
    never ping, but `@everyone` in a name should still read as text). A name that is no text
    (a forged payload's number or list) reads "someone"."""
    return text.escaped(name if isinstance(name, str) and name else "someone")


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


# -- answers -------------------------------------------------------------------------------------


def _credit_footer(credit: Credit, locale: str) -> str | None:
    if credit.anime_name:
        footer = wording.message("footer_anime", locale, anime=credit.anime_name)
        return clip(footer, EMBED_FOOTER)
    return None


def _artist_author(embed: discord.Embed, credit: Credit, locale: str) -> None:
    if credit.artist_name:
        by = wording.message("label_art_by", locale, artist=credit.artist_name)
        embed.set_author(name=clip(by, EMBED_AUTHOR), url=text.safe_link(credit.artist_href))


def action(
    *,
    category: str,
    result: Result,
    actor: Person,
    targets: Sequence[Person] = (),
    case: Case,
    note: str | None = None,
    counts: Mapping[int, ActionCounts] | None = None,
    unsaved: bool = False,
    action_id: int | None = None,
    returnable: Collection[int] = (),
    pings: bool = True,
    locale: str = ENGLISH,
) -> Reply:
    """A GIF action: the sentence, the GIF, the anime credit, a counter line per counted target
    (`counts` by target id; `unsaved`: they could not be stored, which is said instead), and
    the buttons: a return button for each id in `returnable`, and the reroll. `targets` are the
    distinct others (one for `Case.OTHER`, 2-5 for `Case.SEVERAL`); only they are pinged,
    through `content` (mentions in embeds notify nobody), and only when `pings`."""
    named = targets if case in (Case.OTHER, Case.SEVERAL) else ()
    actor_name = display_name(actor)
    target: str | None = None
    if case is Case.SEVERAL:
        target = wording.join_names([f"**{display_name(t)}**" for t in named], locale)
    elif named:
        target = display_name(named[0])
    parts = [
        wording.action_sentence(category, case, actor=actor_name, target=target, locale=locale)
    ]
    if note and note.strip():
        parts.append(quote(note))
    for person in named:
        if counts is not None and (count := counts.get(person.id)) is not None:
            line = wording.message(
                "counter_line",
                locale,
                target=display_name(person),
                total=count.received_total,
                noun=wording.noun(category, count.received_total, locale),
                pair=count.pair,
                actor=actor_name,
            )
            parts.append("-# " + line)
    if unsaved:
        parts.append("-# " + wording.message("counter_unsaved", locale))
    embed = discord.Embed(description=clip("\n".join(parts), EMBED_DESCRIPTION), colour=GIF_COLOUR)
    embed.set_image(url=result.url)
    if footer := _credit_footer(result.credit, locale):
        embed.set_footer(text=footer)

    content, mentions = None, NO_PINGS
    if named and pings:
        content = " ".join(person.mention for person in named)
        users = [discord.Object(person.id) for person in named]
        mentions = discord.AllowedMentions(
            everyone=False, roles=False, replied_user=False, users=users
        )

    buttons: list[discord.ui.Item[Any] | None] = []
    if action_id is not None:
        for person in named:
            if person.id in returnable:
                buttons.append(button(ReturnId(category, action_id, actor.id, person.id), locale))
        buttons.append(button(RerollId(category, action_id, actor.id), locale))
    return Reply(
        content=content, embeds=[embed], view=stopped_view(buttons), allowed_mentions=mentions
    )


def rerolled(message: discord.Message, result: Result, locale: str = ENGLISH) -> Reply:
    """The same action message with a fresh GIF (sentence, ping and buttons unchanged)."""
    embed = message.embeds[0].copy() if message.embeds else discord.Embed(colour=GIF_COLOUR)
    embed.set_image(url=result.url)
    footer = _credit_footer(result.credit, locale)
    if footer:
        embed.set_footer(text=footer)
    else:
        embed.remove_footer()
    return Reply(content=message.content or None, embeds=[embed], view=view_from(message))


def returned(
    message: discord.Message | None, custom_id: str, then: Reply, locale: str = ENGLISH
) -> Reply:
    """The original message's buttons with its return button disabled, then `then` (the
    returned action) as a new message."""
    view = view_from(message) if message is not None else None
    for item in view.children if view is not None else ():
        if isinstance(item, discord.ui.Button) and item.custom_id == custom_id:
            item.disabled = True
            item.label = clip(wording.message("label_returned", locale), BUTTON_LABEL)
    return Reply(view=view, only_view=True, followup=then)


def _credited_embeds(
    results: Sequence[Result], kind: Kind, first: Callable[[discord.Embed], None], locale: str
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
            if footer := _credit_footer(result.credit, locale):
                embed.set_footer(text=footer)
        else:
            _artist_author(embed, result.credit, locale)
            label = wording.message("label_source", locale)
            if len(results) > 1:
                label = f"{label} {index + 1}"
            buttons.append(link_button(label, result.credit.source_url))
        embeds.append(embed)
    return Reply(embeds=_fit(embeds), view=stopped_view(buttons))


def images(
    *, category: str, results: Sequence[Result], actor: Person, locale: str = ENGLISH
) -> Reply:
    """Up to 10 images, each crediting its artist, with a link button to each source."""
    intro_line = wording.image_line(category, actor=display_name(actor), locale=locale)
    line = clip(intro_line, EMBED_DESCRIPTION)

    def intro(embed: discord.Embed) -> None:
        embed.description = line

    return _credited_embeds(results, Kind.IMAGE, intro, locale)


def search(*, results: Sequence[Result], query: str, kind: Kind, locale: str = ENGLISH) -> Reply:
    """Search results as credited embeds (a GIF credits its anime, an image its artist)."""
    count = min(len(results), EMBEDS_PER_MESSAGE)
    heading_text = wording.message("search_title", locale, query=safe_name(query), count=count)
    title = clip(heading_text, EMBED_TITLE)

    def heading(embed: discord.Embed) -> None:
        embed.title = title

    return _credited_embeds(results, kind, heading, locale)


def credit(*, credit: Credit, url: str, category: str | None, locale: str = ENGLISH) -> Reply:
    """The credit of one nekos.best asset, as /source and "Image credit" show it."""
    embed = discord.Embed(title=clip(wording.message("credit_title", locale), EMBED_TITLE), url=url)
    embed.colour = GIF_COLOUR if url.endswith(".gif") else IMAGE_COLOUR
    if credit.anime_name:
        anime = clip(safe_name(credit.anime_name), EMBED_FIELD_VALUE)
        embed.add_field(name=wording.message("field_anime", locale), value=anime)
    if credit.artist_name:
        artist = clip(safe_name(credit.artist_name), 200)
        if href := text.safe_link(credit.artist_href):
            artist = f"[{artist}]({href})"
        embed.add_field(
            name=wording.message("field_artist", locale), value=clip(artist, EMBED_FIELD_VALUE)
        )
    if credit.source_url:
        source = text.safe_link(credit.source_url) or safe_name(credit.source_url)
        embed.add_field(
            name=wording.message("field_source", locale), value=clip(source, EMBED_FIELD_VALUE)
        )
    if credit.is_empty:
        embed.description = wording.message("credit_unknown", locale)
    embed.set_thumbnail(url=url)
    if category:
        embed.set_footer(text=clip(category, EMBED_FOOTER))
    view = stopped_view([link_button(wording.message("label_source", locale), credit.source_url)])
    return Reply(embeds=[embed], view=view)


def credits(
    entries: Sequence[tuple[str, Credit | None, str | None]], locale: str = ENGLISH
) -> Reply:
    """Several credits (the "Image credit" menu on a message with several links)."""
    replies = [
        credit(credit=c, url=url, category=cat, locale=locale) if c is not None else None
        for url, c, cat in entries[:EMBEDS_PER_MESSAGE]
    ]
    embeds: list[discord.Embed] = []
    for (url, _c, _cat), reply in zip(entries, replies, strict=False):
        if reply is None:
            embeds.append(
                discord.Embed(description=wording.message("error_asset_missing", locale), url=url)
            )
        else:
            embeds.extend(reply.embeds)
    return Reply(embeds=_fit(embeds), ephemeral=True)


def help_page(
    *,
    categories: Sequence[Category],
    command_names: dict[str, str],
    invite_url: str | None,
    locale: str = ENGLISH,
) -> Reply:
    """What the bot does, the categories grouped by kind, the fixed commands, the invite."""
    embed = discord.Embed(
        title=wording.message("help_title", locale),
        description=clip(wording.message("help_intro", locale), EMBED_DESCRIPTION),
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
                name=clip(f"{wording.message(key, locale)} ({len(names)})", EMBED_FIELD_NAME),
                value=clip(" ".join(names), EMBED_FIELD_VALUE),
                inline=False,
            )
    embed.add_field(
        name=wording.message("help_other", locale),
        value=clip(wording.message("help_commands", locale), EMBED_FIELD_VALUE),
        inline=False,
    )
    view = stopped_view([link_button(wording.message("label_invite", locale), invite_url)])
    if invite_url:
        embed.set_footer(text=clip(wording.message("help_footer", locale), EMBED_FOOTER))
    return Reply(embeds=[embed], view=view, ephemeral=True)


def stats(
    *,
    user: Person,
    lines: Sequence[ActionStat],
    partners: Sequence[tuple[str, int]],
    locale: str = ENGLISH,
) -> Reply:
    """Given and received per action in this server, and the top partners."""
    embed = discord.Embed(
        title=clip(wording.message("stats_title", locale, name=display_name(user)), EMBED_TITLE),
        colour=GIF_COLOUR,
    )
    if not lines:
        embed.description = wording.message("stats_empty", locale)
    else:
        rows = [
            f"**{safe_name(line.action)}** · "
            + wording.message("stats_row", locale, given=line.given, received=line.received)
            for line in lines
        ]
        embed.add_field(
            name=wording.message("stats_actions", locale),
            value=clip("\n".join(rows), EMBED_FIELD_VALUE),
            inline=False,
        )
    if partners:
        embed.add_field(
            name=wording.message("stats_partners", locale),
            value=clip(
                "\n".join(f"{name} · {count}" for name, count in partners), EMBED_FIELD_VALUE
            ),
            inline=False,
        )
    return Reply(embeds=[embed])


def config_page(
    settings: GuildSettings, *, default_cooldown: str | None, locale: str = ENGLISH
) -> Reply:
    """A server's settings (/config show): what is disabled, where, how often, pings."""

    def say(key: str, **fields: Any) -> str:
        return wording.message(key, locale, **fields)

    embed = discord.Embed(title=say("config_title"), colour=GIF_COLOUR)
    disabled = sorted(settings.disabled)
    shown = [say(f"kind_{n}") if n in ("gif", "image") else safe_name(n) for n in disabled]
    embed.add_field(
        name=say("config_disabled"),
        value=clip(", ".join(shown) or say("config_nothing_disabled"), EMBED_FIELD_VALUE),
        inline=False,
    )
    channels = wording.join_names([f"<#{c}>" for c in settings.channels], locale)
    where = (
        say("config_channels_only", channels=channels) if channels else say("config_channels_any")
    )
    embed.add_field(name=say("config_channels"), value=where, inline=False)
    if settings.cooldown is None:
        value = default_cooldown or say("config_cooldown_off")
        cooldown = say("config_cooldown_default", value=value)
    elif settings.cooldown[0] == 0:
        cooldown = say("config_cooldown_off")
    else:
        count, seconds = settings.cooldown
        cooldown = say("config_cooldown_value", count=count, seconds=seconds)
    embed.add_field(name=say("config_cooldown"), value=cooldown, inline=False)
    pings = say("config_pings_on" if settings.pings else "config_pings_off")
    embed.add_field(name=say("config_pings"), value=pings, inline=False)
    board = say("config_leaderboard_on" if settings.leaderboard else "config_leaderboard_off")
    embed.add_field(name=say("config_leaderboard"), value=board, inline=False)
    return Reply(embeds=[embed], ephemeral=True)


def _fit(embeds: list[discord.Embed]) -> list[discord.Embed]:
    """Drop trailing embeds until the message is within Discord's 6,000-character total."""
    embeds = embeds[:EMBEDS_PER_MESSAGE]
    while len(embeds) > 1 and sum(len(e) for e in embeds) > EMBEDS_TOTAL:
        embeds.pop()
    return embeds

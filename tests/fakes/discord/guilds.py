"""Realistic servers: a GUILD_CREATE with channels of every common type (with permission
overwrites), roles, emojis, stickers and active threads, as a busy community server has.

`FakeDiscord(guild_shape=GuildShape())` sends these instead of the one-channel guilds; the
memory benchmark (bench.memory) and the guild cache tests use them. The payload of a guild is
built from its id alone (same id, same payload), so the stand-in keeps 10,000 of them without
holding 10,000 payloads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tests.fakes.discord.payloads import everyone_role, member

# Channel types (docs/discord.md): of every 20 channels, as in a typical community server.
GUILD_TEXT = 0
GUILD_VOICE = 2
GUILD_CATEGORY = 4
GUILD_ANNOUNCEMENT = 5
PUBLIC_THREAD = 11
GUILD_STAGE_VOICE = 13
GUILD_FORUM = 15
_MIX = (
    (GUILD_CATEGORY, 3),
    (GUILD_TEXT, 10),
    (GUILD_VOICE, 4),
    (GUILD_ANNOUNCEMENT, 1),
    (GUILD_STAGE_VOICE, 1),
    (GUILD_FORUM, 1),
)
_TOPICS = ("general", "memes", "art", "music", "gaming", "anime", "help", "off-topic", "media")


@dataclass(frozen=True)
class GuildShape:
    """How much a realistic server holds (defaults: a mid-sized community server)."""

    channels: int = 40
    overwrites: int = 3  # permission overwrites per channel (the first on @everyone)
    roles: int = 25  # @everyone included
    emojis: int = 15
    stickers: int = 3
    threads: int = 5  # active threads, in text and forum channels
    member_count: int = 1200


class _Ids:
    """Snowflakes of one guild's objects: after the guild's own, unique per guild."""

    def __init__(self, guild_id: int) -> None:
        self._ms = (guild_id >> 22) + 1
        self._n = 0

    def next(self) -> str:
        self._n += 1
        # A millisecond per object after the guild's creation; the increment keeps it unique.
        return str(((self._ms + self._n) << 22) | (2 << 17) | (self._n & 0x1FFFF))


def _role(guild_id: int, role_id: str, position: int, rng: random.Random) -> dict[str, Any]:
    colour = rng.randrange(0xFFFFFF)
    return {
        **everyone_role(guild_id),
        "id": role_id,
        "name": f"role {position}",
        "permissions": str(rng.getrandbits(40)),
        "position": position,
        "color": colour,
        "colors": {"primary_color": colour, "secondary_color": None, "tertiary_color": None},
        "hoist": position % 5 == 0,
        "mentionable": position % 3 == 0,
    }


def _overwrites(
    role_ids: list[str], count: int, rng: random.Random, guild_id: int
) -> list[dict[str, Any]]:
    out = []
    for k in range(count):
        target = str(guild_id) if k == 0 else rng.choice(role_ids)
        out.append(
            {
                "id": target,
                "type": 0,
                "allow": str(rng.getrandbits(20)),
                "deny": str(rng.getrandbits(12) << 20),
            }
        )
    return out


def _channel(
    guild_id: int,
    channel_id: str,
    ctype: int,
    position: int,
    parent_id: str | None,
    overwrites: list[dict[str, Any]],
    rng: random.Random,
) -> dict[str, Any]:
    name = f"{rng.choice(_TOPICS)}-{position}"
    channel: dict[str, Any] = {
        "id": channel_id,
        "type": ctype,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": overwrites,
        "parent_id": parent_id,
        "flags": 0,
    }
    if ctype in (GUILD_TEXT, GUILD_ANNOUNCEMENT, GUILD_FORUM):
        channel.update(
            nsfw=False,
            topic=f"Talk about {name} here. Be nice, read the rules first.",
            rate_limit_per_user=0 if ctype != GUILD_FORUM else 5,
            last_message_id=None,
            default_auto_archive_duration=1440,
        )
    if ctype == GUILD_FORUM:
        channel.update(
            available_tags=[
                {
                    "id": str(int(channel_id) + t),
                    "name": f"tag {t}",
                    "moderated": False,
                    "emoji_id": None,
                    "emoji_name": None,
                }
                for t in range(1, 4)
            ],
            default_reaction_emoji=None,
            default_sort_order=None,
            default_forum_layout=0,
            default_thread_rate_limit_per_user=0,
        )
    if ctype in (GUILD_VOICE, GUILD_STAGE_VOICE):
        channel.update(
            bitrate=64000,
            user_limit=0 if ctype == GUILD_STAGE_VOICE else 10,
            rtc_region=None,
            video_quality_mode=1,
            nsfw=False,
            rate_limit_per_user=0,
            last_message_id=None,
        )
    return channel


def _thread(
    guild_id: int, thread_id: str, parent_id: str, owner_id: str, index: int, at: str
) -> dict[str, Any]:
    return {
        "id": thread_id,
        "type": PUBLIC_THREAD,
        "guild_id": str(guild_id),
        "parent_id": parent_id,
        "owner_id": owner_id,
        "name": f"thread {index}: a question about something",
        "last_message_id": None,
        "message_count": 12 + index,
        "member_count": 4,
        "total_message_sent": 12 + index,
        "rate_limit_per_user": 0,
        "flags": 0,
        "applied_tags": [],
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": at,
            "locked": False,
            "create_timestamp": at,
        },
    }


def realistic_guild_create(
    base: dict[str, Any], shape: GuildShape, bot_user: dict[str, Any]
) -> dict[str, Any]:
    """`base` (the plain GUILD_CREATE of `payloads.guild_create`) filled with `shape`'s
    channels, roles, emojis, stickers and threads; ids unique per guild, reproducible."""
    guild_id = int(base["id"])
    rng = random.Random(guild_id)
    ids = _Ids(guild_id)
    roles = [everyone_role(guild_id)]
    roles += [_role(guild_id, ids.next(), p, rng) for p in range(1, shape.roles)]
    role_ids = [r["id"] for r in roles[1:]] or [str(guild_id)]

    kinds = [kind for kind, weight in _MIX for _ in range(weight)]
    channels: list[dict[str, Any]] = []
    category: str | None = None
    hosts: list[str] = []  # channels threads can live in
    for position in range(shape.channels):
        ctype = kinds[position % len(kinds)]
        channel_id = ids.next()
        overwrites = _overwrites(role_ids, shape.overwrites, rng, guild_id)
        parent = None if ctype == GUILD_CATEGORY else category
        channels.append(_channel(guild_id, channel_id, ctype, position, parent, overwrites, rng))
        if ctype == GUILD_CATEGORY:
            category = channel_id
        elif ctype in (GUILD_TEXT, GUILD_FORUM):
            hosts.append(channel_id)
    owner_id = str(base["owner_id"])
    threads = [
        _thread(guild_id, ids.next(), hosts[i % len(hosts)], owner_id, i, base["joined_at"])
        for i in range(shape.threads if hosts else 0)
    ]
    emojis = [
        {
            "id": ids.next(),
            "name": f"emoji_{i}",
            "roles": [],
            "require_colons": True,
            "managed": False,
            "animated": i % 4 == 0,
            "available": True,
        }
        for i in range(shape.emojis)
    ]
    stickers = [
        {
            "id": ids.next(),
            "name": f"sticker {i}",
            "tags": "smile",
            "type": 2,
            "format_type": 1,
            "description": "A sticker of this server",
            "available": True,
            "guild_id": str(guild_id),
        }
        for i in range(shape.stickers)
    ]
    bot_member = {**member(bot_user), "joined_at": base["joined_at"], "roles": role_ids[:1]}
    return {
        **base,
        "roles": roles,
        "channels": channels,
        "threads": threads,
        "emojis": emojis,
        "stickers": stickers,
        "members": [bot_member],
        "member_count": shape.member_count,
        "large": shape.member_count >= 250,
        "features": ["COMMUNITY", "NEWS", "WELCOME_SCREEN_ENABLED"],
        "system_channel_id": next(
            (c["id"] for c in channels if c["type"] == GUILD_TEXT), base["system_channel_id"]
        ),
    }

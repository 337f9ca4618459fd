"""What nekocord keeps of each server, and why so little: the one place that decides it.

With the guilds intent, discord.py turns every GUILD_CREATE into a `Guild` holding each channel
(with its permission overwrites), role, thread and stage instance as Python objects, and keeps
them current from CHANNEL_*, THREAD_*, GUILD_ROLE_* and STAGE_INSTANCE_* events: ~57 KiB of
RSS for a 40-channel server, 560 MB at 10,000 (BENCHMARKS.md, "Memory per server"; what
discord.py does: docs/discord.md, "The guild cache").
nekocord reads none of it. Everything an answer needs comes in the interaction: `guild_id`,
`guild_locale`, `locale`, the member's `permissions` (computed by Discord, channel overwrites
included), `app_permissions`, `channel` (with `parent_id` for a thread, which is how
`/config channels` lets threads follow their parent), and the resolved users.

So the bot keeps the guilds intent, for what it does need from the gateway: joins, removals
(GUILD_DELETE without `unavailable`: the server's data is deleted, `NekoBot.on_guild_remove`),
outages (`unavailable: true`: nothing is deleted), each shard's server count
(`nekocord_guilds{shard}`), and discord.py's readiness (on_shard_ready/on_ready wait for the
READY's servers to arrive). Dropping the intent would save little more (discord.py still makes
a placeholder per server from READY's list) and would lose removals, which only that intent
carries.

What `install` changes in discord.py's `ConnectionState`, and nothing else:

- GUILD_CREATE and GUILD_UPDATE reach discord.py's own parsers cut down to `KEPT_FIELDS`: a
  `Guild` with its id, whether it is available, and no channels, roles, threads, members,
  emojis or stickers. The READY placeholder is that same object, filled in place.
- A shard's READY after a new IDENTIFY forgets that shard's servers it no longer lists (the
  bot was removed while the shard was away, and no GUILD_DELETE will come): discord.py's
  sharded state keeps them otherwise, and `nekocord_guilds{shard}` would count them forever.
  Their data stays: nothing tells a removal from what READY leaves out.
- The channel, thread, role and stage events are dropped (`IGNORED_EVENTS`): with no channels
  or roles cached they would only add objects back.

Measured (bench.memory, 4 shards in one process): ~1.3 KiB of RSS per server, about what the
floor (no intents at all) pays for READY's placeholders, and a faster start (no objects to
build from 10,000 GUILD_CREATEs).

Consequences, kept true by tests/e2e/test_guild_cache.py: `interaction.guild` is a bare
`Guild` (no `get_channel`, `get_role`, `me` until discord.py adds it), `interaction.channel` is
built from the payload, `guild.channels` and `guild.roles` are empty. Nothing in `bot/` or
`cogs/` may read those from the cache; read the interaction instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Set to False before the bot starts to keep discord.py's full cache (bench.memory measures
#: the difference with it); the bot itself never turns it off.
LEAN = True

#: Of a GUILD_CREATE / GUILD_UPDATE, what reaches discord.py's parser.
KEPT_FIELDS = ("id", "unavailable")

#: Events whose parsers would rebuild what the lean guild leaves out (all sent under the
#: guilds intent); handled by nothing.
IGNORED_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_UPDATE",
    "CHANNEL_DELETE",
    "CHANNEL_PINS_UPDATE",
    "THREAD_CREATE",
    "THREAD_UPDATE",
    "THREAD_DELETE",
    "THREAD_LIST_SYNC",
    "THREAD_MEMBER_UPDATE",
    "THREAD_MEMBERS_UPDATE",
    "GUILD_ROLE_CREATE",
    "GUILD_ROLE_UPDATE",
    "GUILD_ROLE_DELETE",
    "STAGE_INSTANCE_CREATE",
    "STAGE_INSTANCE_UPDATE",
    "STAGE_INSTANCE_DELETE",
)

_TRIMMED_EVENTS = ("GUILD_CREATE", "GUILD_UPDATE")


def lean_guild(data: dict[str, Any]) -> dict[str, Any]:
    """A GUILD_CREATE / GUILD_UPDATE cut down to `KEPT_FIELDS`."""
    return {key: data[key] for key in KEPT_FIELDS if key in data}


def _trimming(parser: Callable[[Any], None]) -> Callable[[Any], None]:
    def parse(data: Any) -> None:
        parser(lean_guild(data) if isinstance(data, dict) else data)

    return parse


def _forgetting_unlisted(state: Any, parser: Callable[[Any], None]) -> Callable[[Any], None]:
    def parse(data: Any) -> None:
        shard = (data.get("shard") or [None])[0] if isinstance(data, dict) else None
        if shard is not None:  # a sharded READY: this shard's servers are all listed
            listed = {int(g["id"]) for g in data.get("guilds", ())}
            count = state.shard_count or 1
            gone = [g for g in state._guilds if (g >> 22) % count == shard and g not in listed]
            for guild_id in gone:
                del state._guilds[guild_id]
            if gone:
                log.info("Shard %d is no longer in %d servers", shard, len(gone))
        parser(data)

    return parse


def _ignore(data: Any) -> None:
    return None


def install(state: Any) -> None:
    """Make discord.py's `ConnectionState` (`client._connection`) keep lean guilds.

    discord.py looks parsers up in `state.parsers` (event name → bound method) for each
    dispatch, and its gateway holds that same dict, so replacing entries here covers every
    shard, now and after reconnects."""
    if not LEAN:
        log.info("Keeping discord.py's full guild cache")
        return
    parsers: dict[str, Callable[[Any], None]] = state.parsers
    for event in _TRIMMED_EVENTS:
        parsers[event] = _trimming(parsers[event])
    parsers["READY"] = _forgetting_unlisted(state, parsers["READY"])
    for event in IGNORED_EVENTS:
        if event in parsers:
            parsers[event] = _ignore

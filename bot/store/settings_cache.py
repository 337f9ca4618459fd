"""The in-memory cache of guild settings a store answers every command from.

Backend-neutral: a store reads through it and keeps it in step with its own writes. Bounded: a
least-recently-used map of `capacity` guilds (at a few hundred bytes each, the default costs
about a megabyte however many guilds the bot is in). Guilds with no stored settings are cached
too (as the defaults): they are most guilds, and each would otherwise cost a database trip per
command. Another process writing settings into the same database is seen once an entry ages out
or after a restart.
"""

from __future__ import annotations

from collections import OrderedDict

from bot.store.base import GuildSettings

__all__ = ["SETTINGS_CACHE_SIZE", "SettingsCache"]

SETTINGS_CACHE_SIZE = 4096


class SettingsCache:
    """Guild id → `GuildSettings`, least recently used first out.

    A read that misses takes a `ticket()` before asking the database and hands it to `fill`;
    any `store`/`forget` meanwhile makes the ticket stale, so an answer read before a write
    can never overwrite the written value."""

    def __init__(self, capacity: int = SETTINGS_CACHE_SIZE) -> None:
        if capacity < 1:
            raise ValueError(f"the settings cache needs room for at least 1 guild, not {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[int, GuildSettings] = OrderedDict()
        self._writes = 0  # bumped by every store/forget: what tickets are checked against

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, guild_id: int) -> GuildSettings | None:
        settings = self._entries.get(guild_id)
        if settings is not None:
            self._entries.move_to_end(guild_id)
        return settings

    def ticket(self) -> int:
        return self._writes

    def fill(self, guild_id: int, settings: GuildSettings, ticket: int) -> None:
        """Cache what the database answered, unless a write happened since `ticket()`."""
        if ticket == self._writes:
            self._put(guild_id, settings)

    def store(self, guild_id: int, settings: GuildSettings) -> None:
        """The guild's settings were just committed as `settings`."""
        self._writes += 1
        self._put(guild_id, settings)

    def forget(self, guild_id: int) -> None:
        """The guild's settings changed in a way not known here (deleted, or a write that may
        or may not have committed): ask the database next time."""
        self._writes += 1
        self._entries.pop(guild_id, None)

    def clear(self) -> None:
        """Any guild's settings may have changed: ask the database for each next time."""
        self._writes += 1
        self._entries.clear()

    def _put(self, guild_id: int, settings: GuildSettings) -> None:
        self._entries[guild_id] = settings
        self._entries.move_to_end(guild_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

"""The storage interface: value types, the one error type, and the abstract `Store`.

Callers depend on this module only, never on a backend (SQLite, PostgreSQL). Results are plain
frozen dataclasses of ints and strs: no backend type (rows, cursors, driver errors) ever crosses
this boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

__all__ = [
    "MAX_CHANNELS",
    "MAX_ID",
    "ActionCounts",
    "ActionStat",
    "GuildSettings",
    "Partner",
    "Store",
    "StoreError",
    "StoreUnreachable",
    "TargetIds",
    "UserStats",
    "check_action",
    "check_id",
]

# Discord snowflakes are unsigned 64-bit in theory but stay below 2**63 in practice; both SQLite
# and PostgreSQL store signed 64-bit integers, so that is the range every backend accepts.
MAX_ID = 2**63 - 1

# The members one action is aimed at, in the order its answer names them.
TargetIds = Sequence[int]


class StoreError(Exception):
    """Storage failed: the database cannot be opened or migrated (fatal at start), or a read or
    write failed at run time (the caller logs it and carries on without the count).

    The message is one sentence fit for a log line or an operator; the backend's own exception,
    if any, is chained as `__cause__`."""


class StoreUnreachable(StoreError):
    """The database server could not be reached (yet) when opening the store: refused, timed
    out, or still starting. Worth retrying at start, unlike any other `StoreError`."""


@dataclass(frozen=True, slots=True)
class ActionCounts:
    """Counts right after an action (or now, for `Store.counts`), within one guild.

    `pair`: how many times `actor` did `action` to `target`.
    `received_total`: how many times `target` received `action` from anyone."""

    pair: int
    received_total: int


@dataclass(frozen=True, slots=True)
class ActionStat:
    """One action's tally for one user in one guild."""

    action: str
    given: int
    received: int


@dataclass(frozen=True, slots=True)
class Partner:
    """Another user and the number of actions exchanged with them, either way."""

    user_id: int
    count: int


@dataclass(frozen=True, slots=True)
class UserStats:
    """A user's tallies in one guild. `actions` is ordered by given+received (most first, then by
    name); `top_partners` by count (most first, then by user id)."""

    actions: list[ActionStat]
    top_partners: list[Partner]


# At most this many channels a guild may restrict the commands to.
MAX_CHANNELS = 3


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """A guild's server settings; `GuildSettings()` is what a guild that set nothing gets.

    `disabled`: category names and the kinds "gif" / "image" that the guild turned off.
    `channels`: the channels commands answer in, at most `MAX_CHANNELS` (empty: everywhere).
    `cooldown`: (count, seconds) per member, None for the process default; count 0 is off.
    `pings`: whether answers mention their targets.

    Any iterable is accepted for `disabled` and `channels` (stored as a frozenset and an
    ordered tuple without repeats); values no backend could store raise `ValueError`."""

    disabled: frozenset[str] = field(default_factory=frozenset)
    channels: tuple[int, ...] = ()
    cooldown: tuple[int, int] | None = None
    pings: bool = True

    def __post_init__(self) -> None:
        disabled = frozenset(self.disabled)
        for name in disabled:
            check_action(name)
        channels = tuple(dict.fromkeys(check_id("channel id", c) for c in self.channels))
        if len(channels) > MAX_CHANNELS:
            raise ValueError(f"at most {MAX_CHANNELS} channels, not {len(channels)}")
        cooldown = self.cooldown
        if cooldown is not None:
            count, seconds = cooldown
            for name, value in (("cooldown count", count), ("cooldown seconds", seconds)):
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
                    raise ValueError(f"{name} must be an int in 0..2**31-1, not {value!r}")
            cooldown = (count, seconds)
        if not isinstance(self.pings, bool):
            raise ValueError(f"pings must be a bool, not {self.pings!r}")
        # Frozen: normalised once here, so equal settings compare (and cache) equal.
        object.__setattr__(self, "disabled", disabled)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "cooldown", cooldown)


class Store(ABC):
    """Counters, hug-back markers and opt-outs. Every method is a coroutine, safe to call
    concurrently from many tasks; a method that returns has committed its write.

    Every method raises `StoreError` when the backend fails, and `ValueError` for arguments no
    backend could store (an id outside 0..2**63-1, an empty action name): those are bugs."""

    @abstractmethod
    async def record_action(
        self, *, action_id: int, guild_id: int, action: str, actor_id: int, target_ids: TargetIds
    ) -> list[ActionCounts]:
        """Count one action aimed at `target_ids` and return one `ActionCounts` per given
        target, in order, each including this action. Every target's pair count, received total
        and dedupe marker are written in one transaction: all targets count, or none.

        The caller drops the actor, bots and repeats; a target given twice still counts once
        (both places get the same counts). No targets: nothing is counted, [] is returned.

        Idempotent by (`action_id`, target): a replay (a gateway event redelivered after a
        resume) returns, for a target already counted for this interaction, the counts of the
        first call without counting again, whatever the other arguments say; a replay naming
        further targets counts only those. Dedupe markers are kept for at least a day."""

    async def first_delivery(self, interaction_id: int) -> bool:
        """Record that this process answers the interaction: True for the first delivery of
        `interaction_id` in any process, False for a gateway replay that reached another
        process (after a resume, or a shard moving) and must be neither counted nor answered.
        Ids are remembered for at least a day.

        This default answers True: it is for a backend only one process uses, whose caller
        remembers the ids it answered in memory. A backend several processes share overrides
        it with a marker in the database."""
        check_id("interaction_id", interaction_id)
        return True

    @abstractmethod
    async def counts(
        self, *, guild_id: int, action: str, actor_id: int, target_id: int
    ) -> ActionCounts:
        """The current counts, without counting anything (zeros when nothing was recorded)."""

    @abstractmethod
    async def claim_return(self, *, action_id: int, target_id: int) -> bool:
        """Mark the action as returned ("hug back") by `target_id`, the member it was aimed at
        (the key comes from the button, so nobody else can use their return up). True for the
        first claim only, also under concurrent claims and across restarts. Markers are kept
        for at least 30 days."""

    @abstractmethod
    async def is_returned(self, *, action_id: int, target_id: int) -> bool:
        """Whether `claim_return` already succeeded for this action and target."""

    @abstractmethod
    async def user_stats(self, *, guild_id: int, user_id: int, top: int = 5) -> UserStats:
        """The user's per-action tallies in the guild and up to `top` partners (self excluded)."""

    @abstractmethod
    async def set_opt_out(self, *, user_id: int, opted_out: bool) -> None:
        """Record or clear a user's opt-out (global, not per guild). It does not delete their
        counts: call `forget_user` for that."""

    @abstractmethod
    async def is_opted_out(self, user_id: int) -> bool:
        """Whether the user opted out."""

    async def opted_out_among(self, user_ids: Iterable[int]) -> set[int]:
        """The subset of `user_ids` that opted out. Backends may override with one query."""
        return {uid for uid in set(user_ids) if await self.is_opted_out(uid)}

    @abstractmethod
    async def forget_user(self, *, user_id: int, keep_opt_out: bool) -> None:
        """Delete everything about the user in every guild, in one transaction: counts they gave
        (the targets' received totals drop accordingly) and received, and dedupe and hug-back
        markers naming them. Their opt-out is kept only if `keep_opt_out`."""

    @abstractmethod
    async def forget_guild(self, *, guild_id: int) -> None:
        """Delete everything recorded in the guild (the bot was removed from it): counts,
        dedupe and hug-back markers, and its settings."""

    @abstractmethod
    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """The guild's settings (`GuildSettings()` when it saved none). Every command asks, so
        it must be cheap: both backends answer from memory for guilds asked recently
        (PostgreSQL, which other processes write too, keeps its copy current with LISTEN/NOTIFY
        and reads the row while it cannot)."""

    @abstractmethod
    async def save_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """Store the guild's settings whole, replacing what was there (saving the defaults is
        the same as saving nothing). `guild_settings` answers the new value once this returns;
        `forget_guild` deletes them."""

    @abstractmethod
    async def ping(self) -> None:
        """A cheap round trip to the database; raises `StoreError` if it is unusable."""

    @abstractmethod
    async def close(self) -> None:
        """Finish in-flight calls and release the database. Idempotent; afterwards every other
        method raises `StoreError`."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def check_id(name: str, value: int) -> int:
    """Validate an id for storage; shared by backends so they reject the same inputs."""
    # bool is an int subclass; True as a user id is always a bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"{name} {value} is outside 0..2**63-1")
    return value


def check_action(action: str) -> str:
    """Validate an action name (a nekos.best category such as "hug")."""
    if not isinstance(action, str) or not action or len(action) > 64:
        raise ValueError(f"action must be a non-empty str of at most 64 characters: {action!r}")
    return action

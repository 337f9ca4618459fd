"""The storage interface: value types, the one error type, and the abstract `Store`, which
checks every argument once, for all backends.

Callers depend on this module only, never on a backend (SQLite, PostgreSQL). Results are plain
frozen dataclasses of ints and strs: no backend type (rows, cursors, driver errors) ever crosses
this boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Protocol, Self

from bot.store.blocks import Blocks, refuses
from bot.store.boards import (
    BOARD_DEPTH,
    BOARDS,
    DAILY_KEEP_DAYS,
    DAY,
    PERIODS,
    BoardEntry,
    KeptCount,
    KeptDay,
    Leaderboard,
    PendingReturn,
    UserData,
    period_start,
)
from bot.store.checks import MAX_ID, check_action, check_id
from bot.store.settings import MAX_CHANNELS, MAX_DISABLED, GuildSettings, SettingsChange

__all__ = [
    "BOARDS",
    "BOARD_DEPTH",
    "DAILY_KEEP_DAYS",
    "DAY",
    "MAX_CHANNELS",
    "MAX_DISABLED",
    "MAX_ID",
    "PERIODS",
    "ActionCounts",
    "ActionStat",
    "BoardEntry",
    "GuildSettings",
    "KeptCount",
    "KeptDay",
    "Leaderboard",
    "Partner",
    "PendingReturn",
    "SettingsChange",
    "Store",
    "StoreError",
    "StoreUnreachable",
    "TargetIds",
    "UserData",
    "UserStats",
    "check_action",
    "check_id",
    "period_start",
]

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


class Queries(Protocol):
    """What each backend's queries module provides, under the same names and keywords: the
    `Store` methods bind their checked arguments to these. The backend's hook calls the bound
    query with its own connection: SQLite's are plain functions of a sqlite3 connection,
    PostgreSQL's coroutine functions of an asyncpg one, hence `Any` here (mypy still checks
    that both modules take these names and keywords)."""

    def record_action(
        self,
        conn: Any,
        /,
        *,
        action_id: int,
        guild_id: int,
        action: str,
        actor_id: int,
        target_ids: list[int],
        now: int,
    ) -> Any: ...

    def counts(
        self, conn: Any, /, *, guild_id: int, action: str, actor_id: int, target_id: int
    ) -> Any: ...

    def claim_return(self, conn: Any, /, *, action_id: int, target_id: int, now: int) -> Any: ...

    def is_returned(self, conn: Any, /, *, action_id: int, target_id: int) -> Any: ...

    def user_stats(self, conn: Any, /, *, guild_id: int, user_id: int, top: int) -> Any: ...

    def leaderboard(
        self,
        conn: Any,
        /,
        *,
        guild_id: int,
        board: str,
        since_day: int | None,
        action: str | None,
        user_id: int,
        offset: int,
        limit: int,
    ) -> Any: ...

    def user_data(self, conn: Any, /, *, user_id: int) -> Any: ...

    def set_opt_out(self, conn: Any, /, *, user_id: int, opted_out: bool, now: int) -> Any: ...

    def opted_out_among(self, conn: Any, /, *, user_ids: list[int], refusing: list[str]) -> Any: ...

    def forget_user(self, conn: Any, /, *, user_id: int, keep_opt_out: bool) -> Any: ...

    def forget_guild(self, conn: Any, /, *, guild_id: int) -> Any: ...

    def guild_settings(self, conn: Any, /, *, guild_id: int) -> Any: ...

    def save_guild_settings(
        self, conn: Any, /, *, guild_id: int, settings: GuildSettings, now: int
    ) -> Any: ...

    def change_guild_settings(
        self, conn: Any, /, *, guild_id: int, change: SettingsChange, now: int
    ) -> Any: ...


# One of the backend's queries bound to checked arguments, waiting for a connection.
Query = Callable[[Any], Any]


class Store(Blocks, ABC):
    """Counters, hug-back markers and opt-outs. Every method is a coroutine, safe to call
    concurrently from many tasks; a method that returns has committed its write.

    Every method raises `StoreError` when the backend fails, and `ValueError` for arguments no
    backend could store (an id outside 0..2**63-1, an empty action name): those are bugs.

    For backends: the public methods check their arguments here, once, so that every backend
    rejects the same inputs with the same words; each then binds them to the same-named
    function of the backend's `_queries` module and hands that to a `_run_…` hook. A backend
    decides only how a query runs (thread, transaction, retries) and what its memory learns."""

    # Set by each backend: its queries module, and the wall clock that dates writes (`now`).
    _queries: Queries
    _clock: Callable[[], float]
    # Set by each backend too, as methods or as bound methods of its runner and caches (every
    # command calls them, so no wrapper sits in between): `_require_open` raises `StoreError`
    # once the store is closed, for the answers that need no query; `_known_settings(guild_id)`
    # and `_known_opt_outs()` answer from memory, None when memory cannot (ask the database).
    _require_open: Callable[[], object]
    _known_settings: Callable[[int], GuildSettings | None]
    _known_opt_outs: Callable[[], set[int] | None]
    _known_blocks: Callable[[], dict[int, frozenset[str]] | None]  # with the opt-outs

    # ------------------------------------------------------------------ counters

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
        # Every id is checked before anything is written, the targets first.
        targets = [check_id("target_id", target_id) for target_id in target_ids]
        query = partial(
            self._queries.record_action,
            action_id=check_id("action_id", action_id),
            guild_id=check_id("guild_id", guild_id),
            action=check_action(action),
            actor_id=check_id("actor_id", actor_id),
            target_ids=targets,
            now=int(self._clock()),
        )
        if not targets:
            self._require_open()
            return []
        return await self._run_record_action(query)

    async def first_delivery(self, interaction_id: int) -> bool:
        """Record that this process answers the interaction: True for the first delivery of
        `interaction_id` in any process, False for a gateway replay that reached another
        process (after a resume, or a shard moving) and must be neither counted nor answered.
        Ids are remembered for at least a day."""
        return await self._run_first_delivery(check_id("interaction_id", interaction_id))

    async def counts(
        self, *, guild_id: int, action: str, actor_id: int, target_id: int
    ) -> ActionCounts:
        """The current counts, without counting anything (zeros when nothing was recorded)."""
        query = partial(
            self._queries.counts,
            guild_id=check_id("guild_id", guild_id),
            action=check_action(action),
            actor_id=check_id("actor_id", actor_id),
            target_id=check_id("target_id", target_id),
        )
        return await self._run_counts(query)

    # ------------------------------------------------------------------ hug back

    async def claim_return(self, *, action_id: int, target_id: int) -> bool:
        """Mark the action as returned ("hug back") by `target_id`, the member it was aimed at
        (the key comes from the button, so nobody else can use their return up). True for the
        first claim only, also under concurrent claims and across restarts. Markers are kept
        for at least 30 days."""
        query = partial(
            self._queries.claim_return,
            action_id=check_id("action_id", action_id),
            target_id=check_id("target_id", target_id),
            now=int(self._clock()),
        )
        return await self._run_claim_return(query)

    async def is_returned(self, *, action_id: int, target_id: int) -> bool:
        """Whether `claim_return` already succeeded for this action and target."""
        query = partial(
            self._queries.is_returned,
            action_id=check_id("action_id", action_id),
            target_id=check_id("target_id", target_id),
        )
        return await self._run_is_returned(query)

    # ------------------------------------------------------------------ stats

    async def user_stats(self, *, guild_id: int, user_id: int, top: int = 5) -> UserStats:
        """The user's per-action tallies in the guild and up to `top` partners (self excluded)."""
        if not isinstance(top, int) or top < 0:
            raise ValueError(f"top must be a non-negative int, not {top!r}")
        query = partial(
            self._queries.user_stats,
            guild_id=check_id("guild_id", guild_id),
            user_id=check_id("user_id", user_id),
            top=top,
        )
        return await self._run_user_stats(query)

    async def leaderboard(
        self,
        *,
        guild_id: int,
        user_id: int,
        board: str = "received",
        period: str = "all",
        action: str | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> Leaderboard:
        """One page of a guild's leaderboard, in one query: ranks `offset + 1` to
        `offset + limit` (never past `BOARD_DEPTH`) of `board` (one of `BOARDS`) over `period`
        (one of `PERIODS`), for one `action` or all together (None), plus `user_id`'s own line.

        Members who opted out are neither listed nor ranked (for `pairs`: pairs naming them);
        members who were forgotten are gone from every period."""
        if board not in BOARDS:
            raise ValueError(f"board must be one of {BOARDS}, not {board!r}")
        if period not in PERIODS:
            raise ValueError(f"period must be one of {tuple(PERIODS)}, not {period!r}")
        for name, value in (("offset", offset), ("limit", limit)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, not {value!r}")
        query = partial(
            self._queries.leaderboard,
            guild_id=check_id("guild_id", guild_id),
            board=board,
            since_day=period_start(period, self._clock()),
            action=None if action is None else check_action(action),
            user_id=check_id("user_id", user_id),
            offset=min(offset, BOARD_DEPTH),
            limit=max(0, min(limit, BOARD_DEPTH - offset)),
        )
        return await self._run_leaderboard(query)

    # ------------------------------------------------------------------ privacy

    async def user_data(self, user_id: int) -> UserData:
        """Everything kept about the member, in every guild, from one snapshot."""
        query = partial(self._queries.user_data, user_id=check_id("user_id", user_id))
        return await self._run_user_data(query)

    async def set_opt_out(self, *, user_id: int, opted_out: bool) -> None:
        """Record or clear a user's opt-out (global, not per guild). It does not delete their
        counts: call `forget_user` for that."""
        query = partial(
            self._queries.set_opt_out,
            user_id=check_id("user_id", user_id),
            opted_out=opted_out,
            now=int(self._clock()),
        )
        await self._run_set_opt_out(query, user_id, opted_out)

    async def is_opted_out(self, user_id: int) -> bool:
        return user_id in await self.opted_out_among([user_id])  # whether the user opted out

    async def opted_out_among(
        self, user_ids: Iterable[int], refusing: Iterable[str] = ()
    ) -> set[int]:
        """The subset of `user_ids` that opted out, or block one of `refusing` (the action's
        category and kind: `set_block`)."""
        ids = sorted({check_id("user_id", uid) for uid in user_ids})
        actions = frozenset(check_action(a) for a in refusing)
        self._require_open()  # also with no ids: a closed store answers nothing
        if not ids:
            return set()
        known, blocks = self._known_opt_outs(), self._known_blocks()
        if known is not None and blocks is not None:  # every action asks: no database trip
            return refuses(ids, known, blocks, actions)
        query = partial(self._queries.opted_out_among, user_ids=ids, refusing=sorted(actions))
        return await self._run_opted_out_among(query)

    async def forget_user(self, *, user_id: int, keep_opt_out: bool) -> None:
        """Delete everything about the user in every guild, in one transaction: counts they gave
        (the targets' received totals drop accordingly) and received, and dedupe and hug-back
        markers naming them, and their blocks. Their opt-out is kept only if `keep_opt_out`."""
        query = partial(
            self._queries.forget_user,
            user_id=check_id("user_id", user_id),
            keep_opt_out=keep_opt_out,
        )
        await self._run_forget_user(query, user_id, keep_opt_out)

    async def forget_guild(self, *, guild_id: int) -> None:
        """Delete everything recorded in the guild (the bot was removed from it): counts,
        dedupe and hug-back markers, and its settings."""
        query = partial(self._queries.forget_guild, guild_id=check_id("guild_id", guild_id))
        await self._run_forget_guild(query, guild_id)

    # ------------------------------------------------------------------ server settings

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """The guild's settings (`GuildSettings()` when it saved none). Every command asks, so
        it must be cheap: both backends answer from memory for guilds asked recently
        (PostgreSQL, which other processes write too, keeps its copy current with LISTEN/NOTIFY
        and reads the row while it cannot)."""
        check_id("guild_id", guild_id)
        self._require_open()
        known = self._known_settings(guild_id)
        if known is not None:
            return known  # every command asks: no database trip
        query = partial(self._queries.guild_settings, guild_id=guild_id)
        return await self._run_guild_settings(query, guild_id)

    async def save_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """Store the guild's settings whole, replacing what was there (saving the defaults is
        the same as saving nothing). `guild_settings` answers the new value once this returns;
        `forget_guild` deletes them."""
        if not isinstance(settings, GuildSettings):
            raise ValueError(f"settings must be GuildSettings, not {type(settings).__name__}")
        query = partial(
            self._queries.save_guild_settings,
            guild_id=check_id("guild_id", guild_id),
            settings=settings,
            now=int(self._clock()),
        )
        await self._run_save_guild_settings(query, guild_id, settings)

    async def change_guild_settings(self, guild_id: int, change: SettingsChange) -> GuildSettings:
        """Make one change to the guild's stored settings, atomically in the database (the
        stored value is changed, not the caller's copy): of concurrent changes, from any
        process, none is lost. Returns the settings with the change made."""
        if not isinstance(change, SettingsChange):
            raise ValueError(f"change must be SettingsChange, not {type(change).__name__}")
        query = partial(
            self._queries.change_guild_settings,
            guild_id=check_id("guild_id", guild_id),
            change=change,
            now=int(self._clock()),
        )
        return await self._run_change_guild_settings(query, guild_id)

    # ------------------------------------------------------------------ lifecycle

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

    # ------------------------------------------------------------------ what a backend provides
    # Each `_run_…` hook gets its method's query, bound to checked arguments, and the checked
    # values its memory needs; it runs the query and returns what the public method returns.

    async def _run_first_delivery(self, interaction_id: int) -> bool:
        return True  # one process: its caller remembers ids (shared backends keep a marker)

    @abstractmethod  # there is at least one target
    async def _run_record_action(self, query: Query) -> list[ActionCounts]: ...

    @abstractmethod
    async def _run_counts(self, query: Query) -> ActionCounts: ...

    @abstractmethod
    async def _run_claim_return(self, query: Query) -> bool: ...

    @abstractmethod
    async def _run_is_returned(self, query: Query) -> bool: ...

    @abstractmethod
    async def _run_user_stats(self, query: Query) -> UserStats: ...

    @abstractmethod
    async def _run_leaderboard(self, query: Query) -> Leaderboard: ...

    @abstractmethod
    async def _run_user_data(self, query: Query) -> UserData: ...

    @abstractmethod
    async def _run_set_opt_out(self, query: Query, user_id: int, opted_out: bool) -> None: ...

    @abstractmethod
    async def _run_opted_out_among(self, query: Query) -> set[int]: ...

    @abstractmethod
    async def _run_forget_user(self, query: Query, user_id: int, keep_opt_out: bool) -> None: ...

    @abstractmethod
    async def _run_forget_guild(self, query: Query, guild_id: int) -> None: ...

    @abstractmethod  # reads what the cache did not have, and fills it unless changed meanwhile
    async def _run_guild_settings(self, query: Query, guild_id: int) -> GuildSettings: ...

    @abstractmethod
    async def _run_save_guild_settings(
        self, query: Query, guild_id: int, settings: GuildSettings
    ) -> None: ...

    @abstractmethod
    async def _run_change_guild_settings(self, query: Query, guild_id: int) -> GuildSettings: ...

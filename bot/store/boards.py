"""Leaderboards and a member's data (`/leaderboard`, `/mydata`): the boards, periods and per-day
totals' dating, and the plain value types the stores return for them (`bot.store.base`
re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.store.blocks import KeptBlock

__all__ = [
    "BOARDS",
    "BOARD_DEPTH",
    "DAILY_KEEP_DAYS",
    "DAY",
    "PERIODS",
    "BoardEntry",
    "KeptCount",
    "KeptDay",
    "Leaderboard",
    "PendingReturn",
    "UserData",
    "period_start",
]

# Leaderboards: who received most, who gave most, which (actor, target) pair counts most.
BOARDS = ("received", "given", "pairs")
# Over everything counted, or the per-day totals of the last 30 or 7 days (today included).
PERIODS = {"all": None, "month": 30, "week": 7}
# Nobody pages past this rank.
BOARD_DEPTH = 100
DAY = 86_400  # seconds; per-day totals are dated by UTC day, `now // DAY`
# Per-day totals are kept this many days (PERIODS' longest, plus one for clocks in between).
DAILY_KEEP_DAYS = 31


def period_start(period: str, now: float) -> int | None:
    """The first UTC day (`now // DAY`) a period counts, None for all time."""
    days = PERIODS[period]
    return None if days is None else int(now) // DAY - (days - 1)


@dataclass(frozen=True, slots=True)
class BoardEntry:
    """One line of a leaderboard: its `rank` (1 is first), the member and their count. For
    `pairs`, `user_id` is the actor and `partner_id` the target; otherwise `partner_id` is
    None."""

    rank: int
    user_id: int
    count: int
    partner_id: int | None = None


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """A page of a leaderboard. `entries`: the ranks asked for, best first (ties by count are
    broken by member id, so every rank is one line); `ranked`: how many lines the whole board
    has (opted-out members are left out before ranking); `own`: the asker's best line, None when
    they are not on the board."""

    entries: list[BoardEntry]
    ranked: int
    own: BoardEntry | None


@dataclass(frozen=True, slots=True)
class KeptCount:
    """What a member gave and received of one action in one guild, all time."""

    guild_id: int
    action: str
    given: int
    received: int


@dataclass(frozen=True, slots=True)
class KeptDay(KeptCount):
    """The same for one UTC day (`day`: days since 1970-01-01)."""

    day: int


@dataclass(frozen=True, slots=True)
class PendingReturn:
    """An action at the member whose return they have not claimed (its dedupe marker, kept
    for a day, still names them)."""

    guild_id: int
    action_id: int
    actor_id: int
    action: str
    created_at: int


@dataclass(frozen=True, slots=True)
class UserData:
    """Everything the store keeps that names one member (`Store.user_data`), each list sorted:
    counts per guild and action, per-day totals, actions they may still return, and when they
    opted out (None: they did not), and what they block (`bot.store.blocks`)."""

    counts: list[KeptCount]
    days: list[KeptDay]
    pending_returns: list[PendingReturn]
    opted_out_at: int | None
    blocks: list[KeptBlock] = field(default_factory=list)

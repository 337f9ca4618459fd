"""The custom_ids of the persistent buttons: a pure codec, no Discord import.

A custom_id carries everything a press needs, so buttons survive restarts. IDs are written in
base 36 to stay far below Discord's 100-character limit. The format never changes: buttons
posted by earlier releases keep working (tests/e2e/test_buttons.py presses some).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import ClassVar

from bot.nekos.limits import CATEGORY_NAME_PATTERN

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_ID = r"[0-9a-z]{1,14}"
_CATEGORY = CATEGORY_NAME_PATTERN


# Every two-digit base-36 string, "00" to "zz": two digits per division (every answer writes
# five snowflakes: a digit at a time was a tenth of rendering an action).
_PAIRS = [high + low for high in _B36 for low in _B36]


@functools.lru_cache(maxsize=4096)  # members' ids come back in message after message
def b36(number: int) -> str:
    """`number` (>= 0) in base 36, lowercase, without leading zeros."""
    if number < 36:
        return _B36[number]
    pairs = []
    while number >= 1296:
        number, rest = divmod(number, 1296)
        pairs.append(_PAIRS[rest])
    pairs.append(_PAIRS[number] if number >= 36 else _B36[number])
    return "".join(reversed(pairs))


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


# One letter per leaderboard and period in a page button's custom_id.
BOARD_LETTERS = {"received": "r", "given": "g", "pairs": "p"}
PERIOD_LETTERS = {"all": "a", "month": "m", "week": "w"}
ALL_CATEGORIES = "*"  # a page of the board of every action together


@dataclass(frozen=True, slots=True)
class PageId:
    """ "Previous" / "Next" on a leaderboard shown to `invoker_id` by interaction `origin_id`
    (its snowflake dates the board for the 15-minute window): the page starting after rank
    `offset`."""

    TEMPLATE: ClassVar[str] = (
        rf"nc:l:(?P<board>[rgp])(?P<period>[amw]):(?P<category>\*|{_CATEGORY}):"
        rf"(?P<offset>[0-9]{{1,3}}):(?P<origin>{_ID}):(?P<invoker>{_ID})"
    )
    board: str
    period: str
    category: str | None
    offset: int
    origin_id: int
    invoker_id: int

    @property
    def custom_id(self) -> str:
        letters = BOARD_LETTERS[self.board] + PERIOD_LETTERS[self.period]
        category = self.category or ALL_CATEGORIES
        ids = f"{b36(self.origin_id)}:{b36(self.invoker_id)}"
        return f"nc:l:{letters}:{category}:{self.offset}:{ids}"

    @property
    def snowflakes(self) -> tuple[int, ...]:
        return (self.origin_id, self.invoker_id)

    @classmethod
    def from_match(cls, match: re.Match[str]) -> PageId:
        board = next(b for b, letter in BOARD_LETTERS.items() if letter == match["board"])
        period = next(p for p, letter in PERIOD_LETTERS.items() if letter == match["period"])
        category = None if match["category"] == ALL_CATEGORIES else match["category"]
        return cls(
            board,
            period,
            category,
            int(match["offset"]),
            int(match["origin"], 36),
            int(match["invoker"], 36),
        )


ButtonId = ReturnId | RerollId

# Every custom_id the bot's persistent buttons answer (a press on anything else has expired).
PERSISTENT_IDS = (
    re.compile(ReturnId.TEMPLATE),
    re.compile(RerollId.TEMPLATE),
    re.compile(PageId.TEMPLATE),
)


def is_persistent_id(custom_id: str) -> bool:
    return any(pattern.fullmatch(custom_id) for pattern in PERSISTENT_IDS)

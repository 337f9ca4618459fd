"""Refusing one action: a member's blocks (`/optout category:<name>`), the value types and the
`Store` methods for them (mixed into `Store`, which keeps its argument checks in one place).

A block names what a member refuses to be the target of: one category ("hug") or a kind
("gif", every action). It is global, like an opt-out, and read as often: every action asks
`Store.opted_out_among(..., refusing=(category, kind))`, answered from memory (SQLite: read at
open; PostgreSQL: the opt-outs' change topic carries blocks too).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from bot.store.checks import check_action, check_id

__all__ = [
    "BLOCKS_TABLE",
    "MAX_BLOCKS",
    "BlockQueries",
    "Blocks",
    "KeptBlock",
    "TooManyBlocks",
    "refuses",
]

MAX_BLOCKS = 100  # per member: a block names one category or kind, far fewer exist

# Both backends' table (PostgreSQL adds a `version` column for its change topic).
BLOCKS_TABLE = """CREATE TABLE action_blocks (
    user_id    BIGINT NOT NULL CHECK (user_id >= 0),
    action     TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, action)
)"""

_NONE: frozenset[str] = frozenset()


class TooManyBlocks(Exception):
    """The member already blocks `MAX_BLOCKS` actions: nothing was added."""


@dataclass(frozen=True, slots=True)
class KeptBlock:
    """One block as `/mydata` shows it: what is refused, since when."""

    action: str
    created_at: int


def refuses(
    user_ids: list[int],
    opted_out: set[int],
    blocks: dict[int, frozenset[str]],
    refusing: frozenset[str],
) -> set[int]:
    """From memory: the ids that opted out or block one of `refusing`."""
    return {
        uid
        for uid in user_ids
        if uid in opted_out or not blocks.get(uid, _NONE).isdisjoint(refusing)
    }


class BlockQueries(Protocol):
    """What each backend's queries module provides for blocks."""

    def set_block(
        self, conn: Any, /, *, user_id: int, action: str, blocked: bool, now: int, limit: int
    ) -> Any: ...

    def blocks_of(self, conn: Any, /, *, user_id: int) -> Any: ...


class Blocks:
    """`Store`'s block methods; a backend sets `_block_queries` and the `_run_…` hooks."""

    _block_queries: BlockQueries
    _clock: Callable[[], float]

    async def set_block(self, *, user_id: int, action: str, blocked: bool) -> frozenset[str]:
        """Add (`blocked`) or lift one block of the member; returns what they block now. Raises
        `TooManyBlocks` when adding a new one past `MAX_BLOCKS`."""
        action = check_action(action)
        query = partial(
            self._block_queries.set_block,
            user_id=check_id("user_id", user_id),
            action=action,
            blocked=blocked,
            now=int(self._clock()),
            limit=MAX_BLOCKS,
        )
        now_blocked = frozenset(await self._run_set_block(query, user_id, action, blocked))
        if blocked and action not in now_blocked:
            raise TooManyBlocks(f"{user_id} already blocks {MAX_BLOCKS} actions")
        return now_blocked

    async def blocks_of(self, user_id: int) -> frozenset[str]:
        """What the member blocks (empty: nothing)."""
        query = partial(self._block_queries.blocks_of, user_id=check_id("user_id", user_id))
        return frozenset(await self._run_blocks_of(query))

    @abstractmethod
    async def _run_set_block(
        self, query: Callable[[Any], Any], user_id: int, action: str, blocked: bool
    ) -> list[str]:
        """Run `set_block`'s query (it adds nothing past the limit) and keep memory in step."""

    @abstractmethod
    async def _run_blocks_of(self, query: Callable[[Any], Any]) -> list[str]: ...

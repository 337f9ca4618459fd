"""Group commit for the SQLite store (`SqliteRunner.run_grouped`): the calls made during one pass
of the event loop share one transaction, run at the start of the next pass.

Why: every action commits its counter, and the COMMIT (its WAL write) is the most expensive part
of so short a transaction; one COMMIT for all the counters of a burst costs a fraction of one
each. Each caller is told its result only once the COMMIT that holds its write succeeded; a
failing COMMIT fails every caller of the group, and a failing body is rolled back alone (the
others run again without it).

This module holds what a group is and how its one transaction runs; `SqliteRunner` decides when
and where it runs (inline or on the database thread) and runs any group waiting before every
other call, so the order of calls is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from bot.store.base import StoreError

__all__ = [
    "CommitGroup",
    "Member",
    "Outcome",
    "failed",
    "held_elsewhere",
    "outcomes_of",
    "run_group",
    "settle",
]

T = TypeVar("T")

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

# A member of a commit group: what it is (for errors), its body, the future its caller awaits.
Member = tuple[str, Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]
# What a member's body came to: (True, result) once committed, (False, exception) otherwise.
Outcome = tuple[bool, Any]


def held_elsewhere(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's "another connection holds the lock" (SQLITE_BUSY or
    SQLITE_LOCKED, the statement rolled back at once)."""
    return (
        isinstance(exc, sqlite3.OperationalError) and (exc.sqlite_errorcode & 0xFF) in _BUSY_CODES
    )


class CommitGroup:
    """The calls waiting for the next pass of the loop, and the callback that will commit them."""

    def __init__(self) -> None:
        self._members: list[Member] = []
        self._handle: asyncio.Handle | None = None

    def __bool__(self) -> bool:
        return bool(self._members)

    def join(
        self, what: str, body: Callable[[sqlite3.Connection], T], commit: Callable[[], None]
    ) -> asyncio.Future[T]:
        """Add `body` to the group; the first member schedules `commit` for the next pass."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._members.append((what, body, future))
        if self._handle is None:
            self._handle = loop.call_soon(commit)
        return future

    def take(self) -> list[Member]:
        """The members waiting (now no longer waiting), and the scheduled commit called off."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        members, self._members = self._members, []
        return members


def failed(group: list[Member], error: BaseException) -> dict[int, Outcome]:
    """Every member told `error`."""
    return {i: (False, error) for i in range(len(group))}


def outcomes_of(
    group: list[Member], done: asyncio.Future[dict[int, Outcome]]
) -> dict[int, Outcome]:
    """What the group's job on the database thread came to: its outcomes, or its failure for
    every member."""
    if done.cancelled() or done.exception() is not None:
        failure = (None if done.cancelled() else done.exception()) or StoreError(
            "SQLite record_action was interrupted"
        )
        return failed(group, failure)
    return done.result()


def settle(group: list[Member], outcomes: dict[int, Outcome]) -> None:
    """Tell every caller still waiting what its body came to."""
    for i, (ok, value) in outcomes.items():
        future = group[i][2]
        if future.cancelled():
            continue  # the caller was cancelled: its write went on regardless
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def run_group(
    conn: sqlite3.Connection,
    group: list[Member],
    *,
    inline: bool,
    failure: Callable[[str, sqlite3.Error], StoreError],
) -> dict[int, Outcome]:
    """One transaction for every member of `group`. A body that fails is rolled back and told
    its error (an sqlite3 error as the `failure` it makes); the others run again without it. A
    failing BEGIN or COMMIT fails every member left. `inline`: another process's lock is raised
    as is (rolled back: nothing of the group is written, the caller runs it again where it may
    wait)."""
    outcomes: dict[int, Outcome] = {}
    left = list(range(len(group)))
    while left:
        results: dict[int, Any] = {}
        failing: int | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            for i in left:
                failing = i
                results[i] = group[i][1](conn)
            failing = None
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if inline and held_elsewhere(exc):
                raise  # nothing committed yet: the caller runs it all again
            if failing is None:  # BEGIN or COMMIT failed: nobody's write is in
                for i in left:
                    outcomes[i] = (False, _as_error(group[i][0], exc, failure))
                return outcomes
            outcomes[failing] = (False, _as_error(group[failing][0], exc, failure))
            left.remove(failing)
            continue
        for i in left:
            outcomes[i] = (True, results[i])
        return outcomes
    return outcomes


def _as_error(
    what: str, exc: BaseException, failure: Callable[[str, sqlite3.Error], StoreError]
) -> BaseException:
    if not isinstance(exc, sqlite3.Error):
        return exc
    error = failure(what, exc)
    error.__cause__ = exc  # as `raise … from exc` does
    return error

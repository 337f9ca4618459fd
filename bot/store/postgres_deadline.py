"""A deadline for statements on a PostgreSQL connection that a cut network would hang.

A cut link fails nothing: a statement waits for its answer until TCP gives up, minutes later.
asyncpg's own timeouts (and cancelling the task) send a cancel request over a new connection
and make the pool wait for it before the connection is reused, which on a cut link hangs just as
long. Dropping the connection instead fails the statement at once with a connection error, the
kind every caller already retries or falls back on; the pool opens a new one when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import asyncpg

__all__ = ["dropped_after"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def dropped_after(conn: asyncpg.Connection, seconds: float) -> Iterator[None]:
    """Within the block, `conn` is dropped once `seconds` have passed (statements in flight
    then raise `asyncpg.ConnectionDoesNotExistError`)."""
    handle = asyncio.get_running_loop().call_later(seconds, _drop, conn, seconds)
    try:
        yield
    finally:
        handle.cancel()


def _drop(conn: asyncpg.Connection, seconds: float) -> None:
    if not conn.is_closed():
        log.debug("Dropped a PostgreSQL connection that did not answer within %s s", seconds)
        conn.terminate()

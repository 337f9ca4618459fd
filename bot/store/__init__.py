"""Storage for counters, hug-back markers, opt-outs and server settings, behind one small
async interface.

Callers use `open_store(DATABASE_URL)` and the `Store` methods only; SQLite (the standard
library's `sqlite3`, on one database thread) is the embedded default, PostgreSQL (asyncpg) the
backend several processes can share.
Imports nothing of Discord or of the rest of `bot`.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.store.base import (
    MAX_CHANNELS,
    ActionCounts,
    ActionStat,
    BoardEntry,
    GuildSettings,
    Leaderboard,
    Partner,
    PendingReturn,
    SettingsChange,
    Store,
    StoreError,
    StoreUnreachable,
    TargetIds,
    UserData,
    UserStats,
)
from bot.store.postgres import POOL_SIZE, PostgresStore
from bot.store.sqlite import SqliteStore

__all__ = [
    "MAX_CHANNELS",
    "ActionCounts",
    "ActionStat",
    "BoardEntry",
    "GuildSettings",
    "Leaderboard",
    "Partner",
    "PendingReturn",
    "PostgresStore",
    "SettingsChange",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnreachable",
    "TargetIds",
    "UserData",
    "UserStats",
    "default_database_url",
    "open_store",
    "url_scheme",
]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
POSTGRES_SCHEMES = ("postgresql", "postgres")
SUPPORTED_SCHEMES = ("sqlite", *POSTGRES_SCHEMES)


def default_database_url(data_dir: str | Path) -> str:
    """`<DATA_DIR>/nekocord.db` as a DATABASE_URL (a plain path is a valid one)."""
    return str(Path(data_dir) / "nekocord.db")


def url_scheme(url: str) -> str | None:
    """The lower-cased scheme of `scheme://…`, or None for a plain filesystem path."""
    match = _SCHEME.match(url.strip())
    return match.group(1).lower() if match else None


async def open_store(url: str, *, pool_size: int = POOL_SIZE) -> Store:
    """Open (create, migrate) the store DATABASE_URL names: `sqlite:///relative/path.db`,
    `sqlite:////absolute/path.db`, a plain path, or `postgresql://user:password@host/db`
    (`postgres://` too) with a pool of at most `pool_size` connections.

    Raises `StoreUnreachable` when a database server cannot be reached (yet): the bot retries
    that for a while. Raises `StoreError` with one sentence for anything else: the bot turns
    that into exit 2. Messages never hold the URL's credentials.
    """
    scheme = url_scheme(url)
    if scheme is not None and scheme not in SUPPORTED_SCHEMES:
        raise StoreError(
            f"DATABASE_URL scheme {scheme!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_SCHEMES)})"
        )
    if scheme in POSTGRES_SCHEMES:
        return await PostgresStore.open(url.strip(), pool_size=pool_size)
    return await SqliteStore.open_url(url)

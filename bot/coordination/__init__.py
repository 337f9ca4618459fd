"""What the processes of one bot agree on: which process runs each shard (a lease), IDENTIFY
pacing, who registers the commands (and which command set is registered), and nekos.best
budgets shared by every process.

Deliberately not part of `Store` (counters and consent): one process alone needs none of it
(`LocalCoordinator`), several processes share it through PostgreSQL (`PostgresCoordinator`).
`bot/nekos` sees only its own `SharedBudget` protocol, never this package.
"""

from __future__ import annotations

from pathlib import Path

from bot.coordination.base import CoordinationError, Coordinator
from bot.coordination.local import LocalCoordinator
from bot.coordination.postgres import PostgresCoordinator
from bot.store import url_scheme

__all__ = [
    "CoordinationError",
    "Coordinator",
    "LocalCoordinator",
    "PostgresCoordinator",
    "open_coordinator",
]

POSTGRES_SCHEMES = ("postgresql", "postgres")


async def open_coordinator(database_url: str, data_dir: Path) -> Coordinator:
    """The coordinator for this deployment: shared through PostgreSQL when DATABASE_URL names
    one, otherwise the single-process one. Raises `CoordinationError` (one line, never the
    URL) when PostgreSQL cannot be used."""
    if url_scheme(database_url) in POSTGRES_SCHEMES:
        return await PostgresCoordinator.open(database_url)
    return LocalCoordinator(data_dir)

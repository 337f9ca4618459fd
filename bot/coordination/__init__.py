"""What the processes of one bot agree on: IDENTIFY pacing, who registers the commands (and
which command set is registered), and nekos.best budgets shared by every process.

Deliberately not part of `Store` (counters and consent): one process alone needs none of it
(`LocalCoordinator`), several processes share it through PostgreSQL (`PostgresCoordinator`).
`bot/nekos` sees only its own `SharedBudget` protocol, never this package.
"""

from __future__ import annotations

from bot.coordination.base import Coordinator
from bot.coordination.local import LocalCoordinator

__all__ = ["Coordinator", "LocalCoordinator"]

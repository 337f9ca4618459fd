"""Fixtures for the coordinator tests: `open_coordinator(**kwargs)` opens a PostgresCoordinator
on this test's fresh database; each one stands for a process of the bot (its own pool and
connections). Every coordinator opened is closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.coordination import PostgresCoordinator

CoordinatorFactory = Callable[..., Awaitable[PostgresCoordinator]]


@pytest.fixture
async def open_coordinator(pg_url: str) -> AsyncIterator[CoordinatorFactory]:
    opened: list[PostgresCoordinator] = []

    async def factory(**kwargs: Any) -> PostgresCoordinator:
        coordinator = await PostgresCoordinator.open(pg_url, **kwargs)
        opened.append(coordinator)
        return coordinator

    yield factory
    for coordinator in opened:
        await coordinator.close()

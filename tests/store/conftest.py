"""Fixtures for the store tests: every backend-neutral test runs against both backends.

`store` is parametrised over SQLite (a real file under tmp_path) and PostgreSQL (a fresh database
on the module's throwaway cluster, tests/pg.py); `backend` opens more stores on the same
database (several processes) and reads rows from outside, like an operator would. Tests of what
only SQLite has (files on disk, the database thread, inline transactions) use `db_path` and
`sqlite_store`. Every store opened here is closed at the end.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.store import Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.helpers import assert_consistent

BACKENDS = ["sqlite", "postgres"]

# received_totals is exactly the per-target sums of action_counts, and no count is <= 0.
_MISMATCHED = """
    WITH sums AS (
        SELECT guild_id, target_id, action, SUM(count) AS n
        FROM action_counts GROUP BY guild_id, target_id, action
    )
    SELECT s.guild_id, s.target_id, s.action, s.n, r.count FROM sums AS s
    LEFT JOIN received_totals AS r USING (guild_id, target_id, action)
    WHERE r.count IS DISTINCT FROM s.n
    UNION ALL
    SELECT r.guild_id, r.target_id, r.action, NULL, r.count FROM received_totals AS r
    WHERE NOT EXISTS (SELECT 1 FROM sums AS s WHERE s.guild_id = r.guild_id
        AND s.target_id = r.target_id AND s.action = r.action)
    UNION ALL
    SELECT guild_id, target_id, action, NULL, count FROM action_counts WHERE count <= 0
"""


class Backend:
    """One database of one backend: open stores on it, read its rows."""

    name = ""

    def __init__(self) -> None:
        self.opened: list[Store] = []

    async def open(self, **options: Any) -> Store:
        """Another store on the same database (another process, or a restart)."""
        store = await self._open(**options)
        self.opened.append(store)
        return store

    async def _open(self, **options: Any) -> Store:
        raise NotImplementedError

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of `sql` (placeholders `?`) read on a connection of its own."""
        raise NotImplementedError

    async def assert_consistent(self) -> None:
        assert await self.rows(_MISMATCHED) == []

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    async def _open(self, **options: Any) -> Store:
        return await SqliteStore.open(self.path, **options)

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, timeout=5)
        try:
            return [tuple(row) for row in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    async def assert_consistent(self) -> None:
        assert_consistent(self.path)  # with SQLite's integrity check


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    async def _open(self, **options: Any) -> Store:
        return await PostgresStore.open(self.url, **options)

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        numbered = iter(range(1, len(params) + 1))
        sql = re.sub(r"\?", lambda _: f"${next(numbered)}", sql)
        conn = await asyncpg.connect(self.url)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *params)]
        finally:
            await conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nekocord.db"


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Backend]:
    chosen: Backend
    if request.param == "postgres":
        chosen = PostgresBackend(request.getfixturevalue("pg_url"))
    else:
        chosen = SqliteBackend(db_path)
    try:
        yield chosen
    finally:
        await chosen.close_all()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


@pytest.fixture
async def sqlite_store(db_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(db_path)
    try:
        yield opened
    finally:
        await opened.close()

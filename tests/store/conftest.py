"""Fixtures for the store tests: real SQLite files under tmp_path, always closed."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store.sqlite import SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nekocord.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(db_path)
    try:
        yield opened
    finally:
        await opened.close()


def assert_consistent(path: Path) -> None:
    """The invariants a crash or a bug must never break, checked with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # received_totals is exactly the per-target sums of action_counts (both directions).
        mismatched = conn.execute(
            """
            WITH sums AS (
                SELECT guild_id, target_id, action, SUM(count) AS n
                FROM action_counts GROUP BY guild_id, target_id, action
            )
            SELECT s.guild_id, s.target_id, s.action, s.n, r.count FROM sums AS s
            LEFT JOIN received_totals AS r USING (guild_id, target_id, action)
            WHERE r.count IS NOT s.n
            UNION ALL
            SELECT r.guild_id, r.target_id, r.action, NULL, r.count FROM received_totals AS r
            WHERE NOT EXISTS (SELECT 1 FROM sums AS s WHERE s.guild_id = r.guild_id
                AND s.target_id = r.target_id AND s.action = r.action)
            """
        ).fetchall()
        assert mismatched == []
        assert conn.execute("SELECT COUNT(*) FROM action_counts WHERE count <= 0").fetchone() == (
            0,
        )
    finally:
        conn.close()

"""The PostgreSQL test cluster itself: it starts, serves SQL, survives a restart."""

from __future__ import annotations

import asyncpg

from tests.pg import PostgresCluster


async def test_cluster_serves_and_restarts(pg_cluster: PostgresCluster, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT current_setting('fsync')") == "off"
        await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
    finally:
        await conn.close()
    pg_cluster.restart()
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT n FROM kept") == 7
    finally:
        await conn.close()
    assert pg_cluster.psql("SELECT 1 + 1").strip() == "2"

"""The memory budget of bot/guild_cache.py, as bench.memory measures it but at 2,000 servers:
`python -m bot` over 4 shards in one process, RSS from /proc once every realistic server has
arrived, 1 server against 2,000. The issue's budget is 25 MB at 10,000 servers (≈ 2.44 KiB per
server); the lean cache measures ~1.3 KiB (BENCHMARKS.md), discord.py's full cache ~57.
About 30 s (two bot processes, 2,000 GUILD_CREATEs of 40 KB each).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import memory

pytestmark = pytest.mark.timeout(300)

SERVERS = 2000


async def test_realistic_servers_cost_less_than_the_budget(tmp_path: Path) -> None:
    try:
        rows = await memory.memory_runs(tmp_path, guilds=SERVERS, bots=(memory.LEAN,), log=False)
    finally:
        memory.kill_all()
    (row,) = rows
    assert row.large.seen == SERVERS and row.small.seen == 1
    assert row.kib_per_server < memory.BUDGET_KIB_PER_SERVER, (
        f"{row.kib_per_server:.2f} KiB per server ({row.small.rss_kib} → {row.large.rss_kib} KiB)"
    )

"""Liveness for the container HEALTHCHECK, backed by what the bot really maintains.

While the gateway is connected (every shard the process owns) the bot rewrites
`<DATA_DIR>/heartbeat` every few seconds; `python -m bot.health` succeeds only while that file is
fresh. A stopped, hung or disconnected bot stops refreshing it, and a clean shutdown removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bot.store.files import write_private

INTERVAL = 10.0
STALE_AFTER = 45.0


def gateway_connected(client: Any) -> bool:
    """Whether every shard this process owns has an open gateway connection (for an unsharded
    client, its one connection)."""
    if client.is_closed():
        return False
    shards = getattr(client, "shards", None)
    if shards is not None:  # an AutoShardedClient
        owned = client.shard_ids or range(client.shard_count or 0)
        return bool(owned) and all(i in shards and not shards[i].is_closed() for i in owned)
    ws = getattr(client, "ws", None)
    return ws is not None and bool(ws.open)


def shards_not_ready(client: Any) -> list[int]:
    """The shards this process owns whose gateway session is not READY now (reconnecting, or
    not yet identified); empty when all are."""
    owned = getattr(client, "shard_ids", None) or range(client.shard_count or 1)
    if client.is_closed() or not gateway_connected(client):
        ready: set[int] = set()
    else:
        ready = getattr(client, "ready_shards", set())
    return [shard for shard in owned if shard not in ready]


class Heartbeat:
    def __init__(self, data_dir: Path, interval: float = INTERVAL) -> None:
        self.path = data_dir / "heartbeat"
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self, client: Any) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(client), name="nekocord-heartbeat")

    async def _run(self, client: Any) -> None:
        while True:
            if gateway_connected(client):
                self.beat(latency=client.latency)
            await asyncio.sleep(self.interval)

    def beat(self, *, latency: float) -> None:
        latency_ms = (
            round(latency * 1000) if latency == latency and latency != float("inf") else None
        )
        beat = {"time": time.time(), "pid": os.getpid(), "latency_ms": latency_ms}
        write_private(self.path, json.dumps(beat))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        with contextlib.suppress(OSError):
            self.path.unlink()


def check(data_dir: Path, now: float | None = None) -> tuple[bool, str]:
    path = data_dir / "heartbeat"
    try:
        beat = json.loads(path.read_text())
        age = (time.time() if now is None else now) - float(beat["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return False, "no heartbeat: the bot is not running or not connected"
    if age > STALE_AFTER:
        return False, f"heartbeat is {age:.0f}s old: the bot is stuck or disconnected"
    return True, f"ok (heartbeat {age:.0f}s ago)"


def main() -> int:
    from bot.config import data_dir_setting

    healthy, message = check(data_dir_setting())
    print(message)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())

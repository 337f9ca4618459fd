"""The coordinator of a bot that runs as one process: nothing to share.

IDENTIFYs are paced per bucket in memory; the last registered command digest is kept in the
data directory (a bulk overwrite replaces every command and creations are limited per day, so a
restart with unchanged commands must not register again)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.coordination.base import Coordinator
from bot.store.files import write_private

__all__ = ["LocalCoordinator", "LocalPacing"]


class LocalPacing:
    """IDENTIFY pacing within this process: one lock per bucket, held `window` seconds after
    each IDENTIFY. (Also the PostgreSQL coordinator's fallback while the database is away.)"""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}

    async def wait(self, bucket: int, window: float) -> None:
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        await lock.acquire()
        # Held for `window` after this IDENTIFY: the next one in the bucket waits for it.
        asyncio.get_running_loop().call_later(window, lock.release)


class LocalCoordinator(Coordinator):
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._pacing = LocalPacing()
        self._register_lock = asyncio.Lock()

    async def before_identify(self, bucket: int, window: float) -> None:
        await self._pacing.wait(bucket, window)

    async def register_commands(
        self, scope: str, digest: str, register: Callable[[], Awaitable[Any]]
    ) -> bool:
        async with self._register_lock:
            if await self.registered_digest(scope) == digest:
                return False
            await register()
            write_private(self._digest_file(scope), digest)
            return True

    async def registered_digest(self, scope: str) -> str | None:
        try:
            return self._digest_file(scope).read_text().strip() or None
        except OSError:
            return None

    def _digest_file(self, scope: str) -> Path:
        return self.data_dir / f"commands-{scope}.sha256"

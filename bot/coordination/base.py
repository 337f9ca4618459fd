"""The coordination interface (see the package docstring)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:  # only the protocol's name: `bot.nekos` is not needed at run time here
    from bot.nekos.budget import SharedBudget

__all__ = ["CoordinationError", "Coordinator"]


class CoordinationError(Exception):
    """The coordinator could not be opened; the message is one sentence for the operator and
    never contains the database URL (it may hold a password)."""


class Coordinator(ABC):
    """Shared state of the bot's processes. Every method is a coroutine, safe to call
    concurrently; a backend failure is logged by the implementation and answered safely (an
    IDENTIFY still goes out after its window, a sync is retried at the next change)."""

    @abstractmethod
    async def before_identify(self, bucket: int, window: float) -> None:
        """Return when this process may IDENTIFY in `bucket` (shard_id % max_concurrency): no
        process of the bot identified in that bucket during the last `window` seconds, and none
        will until `window` seconds after this returns (Discord's 5 s rule across processes)."""

    @abstractmethod
    async def register_commands(
        self, scope: str, digest: str, register: Callable[[], Awaitable[Any]]
    ) -> bool:
        """Under a lock held by one process at a time: when `digest` differs from the digest
        last registered for `scope`, await `register()` and remember `digest`. Returns whether
        `register()` ran. Only the process owning shard 0 calls it."""

    @abstractmethod
    async def registered_digest(self, scope: str) -> str | None:
        """The digest last registered for `scope` (by any process), or None. Processes that do
        not register poll it to pick up a new command set."""

    async def claim_shards(
        self,
        shards: Sequence[int],
        shard_count: int,
        *,
        lease: float,
        on_lost: Callable[[], None],
    ) -> bool:
        """One attempt at holding every one of `shards` (all or none) for this process alone,
        before any of them connects. True when held: renewed from then on, released by
        `close()`, expiring `lease` seconds after a process died. `on_lost` is called (once) if
        the leases are lost meanwhile: this process must then stop running those shards.
        False: another process holds some of them; `CoordinationError` (one line): the
        database did not answer. A process alone (no shared database) needs no lease."""
        return True

    @property
    def budget(self) -> SharedBudget | None:
        """The nekos.best budget shared by the bot's processes, for `NekosClient(budget=…)`;
        None when this process is alone (its own limiter is enough)."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook: nothing to release by default
        """Release connections and locks."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

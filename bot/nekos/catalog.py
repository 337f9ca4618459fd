"""Category discovery: nekos.best asks clients to read `/endpoints` rather than hard-code the
list, and the list grows over time.

Start-up order: the network; else the last good list saved on disk; else the bundled
`snapshot.json` (a first start without network). A periodic refresh reports additions and
removals to subscribers, guarded against bad replies: one that drops more than half of the
known categories is ignored, and a category is removed only after two good replies in a row
lack it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from bot.nekos.client import NekosClient
from bot.nekos.errors import NekosError, NoSuchCategory, UnknownCategory, WrongKind
from bot.nekos.models import Category, Kind
from bot.nekos.parsing import parse_endpoints

__all__ = ["Catalog", "Source", "Subscriber", "load_snapshot"]

log = logging.getLogger(__name__)

Source = Literal["network", "disk", "snapshot"]
Subscriber = Callable[[list[Category], list[Category]], Awaitable[None] | None]
FILENAME = "categories.json"


def load_snapshot(path: str | os.PathLike[str] | None = None) -> dict[str, Category]:
    """The bundled category list (or the file at `path`), in its order."""
    if path is None:
        text = resources.files("bot.nekos").joinpath("snapshot.json").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return parse_endpoints(json.loads(text))


def _dump(categories: dict[str, Category]) -> str:
    # The /endpoints shape, so the disk copy and the snapshot share one parser.
    lines = [
        f"  {json.dumps(c.name)}: {json.dumps({'format': c.format})}" for c in categories.values()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


class Catalog:
    """The known nekos.best categories, kept up to date.

    `require(name, kind)` answers for a name: the live Category, or why there is none (gone
    from nekos.best, never a category, the other kind). `live(kind)` lists the live ones in
    /endpoints order. `source`: where the current list came from ("network", "disk" or
    "snapshot"; None before `load()`).
    """

    def __init__(
        self,
        client: NekosClient,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        refresh_interval: float = 6 * 3600.0,
        retry_interval: float = 300.0,
        budget: float = 10.0,
        snapshot_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._client = client
        self.path = Path(data_dir) / FILENAME if data_dir is not None else None
        self.refresh_interval = refresh_interval
        # While running on a fallback list, retry the network sooner than the full interval.
        self.retry_interval = retry_interval
        self.budget = budget
        self._snapshot_path = snapshot_path
        self._categories: dict[str, Category] = {}
        # Kept whole per kind (None: all) and rebuilt only when the list changes, so that
        # commands and autocompletes read them without building anything.
        self._live: dict[Kind | None, tuple[Category, ...]] = {}
        self._missing: set[str] = set()  # absent from the last good reply: removed if again
        self._gone: set[str] = set()  # removed by nekos.best while we ran (or since last run)
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.source: Source | None = None
        self.last_refresh: float | None = None  # time.time() of the last good reply
        self.last_error: NekosError | None = None
        self.rejected_replies = 0

    # -- reading ---------------------------------------------------------------------------

    def require(self, name: str, kind: Kind | None = None) -> Category:
        """The live category `name` (of `kind`, when given). Raises `UnknownCategory` for a
        name nekos.best removed, `NoSuchCategory` for one that never was a category, and
        `WrongKind` for a category of the other kind."""
        category = self._categories.get(name)
        if category is None:
            if name in self._gone:
                raise UnknownCategory(name)
            raise NoSuchCategory(name)
        if kind is not None and category.kind is not kind:
            raise WrongKind(category, kind)
        return category

    def live(self, kind: Kind | None = None) -> Sequence[Category]:
        """The live categories (of `kind`, or all), in /endpoints order. Not a copy: the
        same tuple until the list changes."""
        return self._live.get(kind, ())

    def is_gone(self, name: str) -> bool:
        """True for a name nekos.best removed (and has not brought back)."""
        return name in self._gone

    @property
    def categories(self) -> Mapping[str, Category]:
        """name → Category, in /endpoints order: a read-only view, not a copy."""
        return MappingProxyType(self._categories)

    def names(self, kind: Kind | None = None) -> list[str]:
        return [c.name for c in self.live(kind)]

    def get(self, name: str) -> Category | None:
        return self._categories.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._categories

    def __len__(self) -> int:
        return len(self._categories)

    # -- loading ---------------------------------------------------------------------------

    async def load(self) -> Source:
        """Fill the catalog at start-up: network, else disk, else the bundled snapshot."""
        disk = self._read_disk()
        try:
            reply = await self._client.endpoints(budget=self.budget)
        except NekosError as exc:
            self.last_error = exc
            log.warning("nekos.best /endpoints failed at start-up: %s", exc)
            reply = None
        if reply is not None and disk and self._drops_too_many(disk, reply):
            log.warning(
                "ignoring /endpoints at start-up: it lacks %d of %d saved categories",
                sum(1 for n in disk if n not in reply),
                len(disk),
            )
            self.rejected_replies += 1
            reply = None
        if reply is not None:
            self._replace(reply)
            self.source = "network"
            # Saved last time, gone now: nekos.best removed them while we were away.
            self._gone.update(name for name in disk or () if name not in reply)
            self.last_refresh = time.time()
            self._write_disk()
        elif disk:
            self._replace(disk)
            self.source = "disk"
            log.info("using %d categories saved on disk", len(disk))
        else:
            self._replace(load_snapshot(self._snapshot_path))
            self.source = "snapshot"
            log.info("using the bundled list of %d categories", len(self._categories))
        self._missing = set()
        return self.source

    def _replace(self, categories: dict[str, Category]) -> None:
        self._categories = categories
        self._gone.difference_update(categories)  # back again
        everything = tuple(categories.values())
        self._live = {None: everything}
        for kind in Kind:
            self._live[kind] = tuple(c for c in everything if c.kind is kind)

    def _read_disk(self) -> dict[str, Category] | None:
        if self.path is None:
            return None
        try:
            return parse_endpoints(json.loads(self.path.read_text("utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, NekosError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return None

    def _write_disk(self) -> None:
        if self.path is None:
            return
        # Atomic: a crash mid-write must not leave a truncated file for the next start-up.
        try:
            # Private, as the bot's other files (bot.store.files; this package imports nothing
            # of bot): a directory it creates is 0700, and mkstemp creates the file 0600.
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{FILENAME}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(_dump(self._categories))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("could not save categories to %s: %s", self.path, exc)

    # -- refreshing ------------------------------------------------------------------------

    @staticmethod
    def _drops_too_many(known: dict[str, Category], reply: dict[str, Category]) -> bool:
        dropped = sum(1 for name in known if name not in reply)
        return dropped * 2 > len(known)

    async def refresh(self) -> tuple[list[Category], list[Category]]:
        """Ask `/endpoints` again; returns (added, removed) after telling subscribers.

        A failed request or a rejected reply changes nothing and returns two empty lists.
        """
        async with self._lock:
            try:
                reply = await self._client.endpoints(budget=self.budget)
            except NekosError as exc:
                self.last_error = exc
                log.warning("refreshing nekos.best categories failed: %s", exc)
                return [], []
            known = self._categories
            if known and self._drops_too_many(known, reply):
                self.rejected_replies += 1
                log.warning(
                    "ignoring an /endpoints reply that lacks %d of %d known categories",
                    sum(1 for name in known if name not in reply),
                    len(known),
                )
                return [], []
            added = [c for name, c in reply.items() if name not in known]
            removed: list[Category] = []
            pending: dict[str, Category] = {}
            for name, category in known.items():
                if name in reply:
                    continue
                if name in self._missing:
                    removed.append(category)  # second good reply in a row without it
                else:
                    pending[name] = category
            self._missing = set(pending)
            # /endpoints order, then the ones on probation (kept until confirmed gone).
            self._replace({**reply, **pending})
            self._gone.update(c.name for c in removed)
            self.source = "network"
            self.last_refresh = time.time()
            self._write_disk()
            if added or removed:
                log.info(
                    "nekos.best categories changed: +%s -%s",
                    [c.name for c in added],
                    [c.name for c in removed],
                )
                await self._notify(added, removed)
            return added, removed

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(added, removed)` (sync or async) after each change. Returns a
        function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    async def _notify(self, added: list[Category], removed: list[Category]) -> None:
        for callback in list(self._subscribers):
            try:
                outcome = callback(list(added), list(removed))
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("a category subscriber failed")

    # -- background ------------------------------------------------------------------------

    def start(self) -> None:
        """Begin the periodic refresh (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="nekos-catalog-refresh"
            )

    async def _run(self) -> None:
        while True:
            interval = self.refresh_interval
            if self.source != "network":
                interval = min(interval, self.retry_interval)
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("category refresh crashed")

    async def aclose(self) -> None:
        """Stop the periodic refresh."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

"""One event loop for every bot, and the variants an A/B run compares.

The floor must run on the event loop nekocord runs on, or the ratio measures the loop and not
the bot. The driver decides once (`shared_loop()`: what `python -m bot` picks, unless `--loop`
says otherwise) and passes it to every child as BENCH_LOOP; the floor and the naive bot run on
it (`run()`), and each run reads back from /proc/<pid>/maps which loop a bot actually uses.

A bot in `--bots` may carry variant tags, `nekocord+uvloop` or `nekocord+stdjson`, to compare
in the same interleaved run; a bot with a loop or JSON tag is started through
`python -m bench.launch`, which applies the tags before the bot's own `__main__` runs. The `pg`
tag (nekocord only) needs no launcher: the bot gets a fresh PostgreSQL database as its
`DATABASE_URL`, as a user would configure it (the driver runs one throwaway cluster). The
`main` tag (nekocord only) runs nekocord's code as on another git revision (`main`, or
BENCH_BEFORE_REV), exported once per run with `git archive`: before and after in one
interleaved run, each beside the same floor.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPS = ("asyncio", "uvloop")
# stdjson: discord.py without orjson (what a plain `pip install discord.py` gives);
# orjson: with it (`discord.py[speed]` installs it).
JSONS = ("stdjson", "orjson")
# pg: nekocord's store in PostgreSQL on the same machine (default: SQLite in DATA_DIR).
STORES = ("pg",)
# main: nekocord's code as on the git revision BENCH_BEFORE_REV (default main).
SOURCES = ("main",)
TAGS = LOOPS + JSONS + STORES + SOURCES
BEFORE_REV_ENV = "BENCH_BEFORE_REV"
SOURCE_ENV = "BENCH_SOURCE"  # to the child: the directory whose code it runs
LOOP_ENV = "BENCH_LOOP"
JSON_ENV = "BENCH_JSON"


@dataclass(frozen=True)
class BotSpec:
    """`nekocord+uvloop` → kind "nekocord", loop "uvloop"; untagged parts are None."""

    name: str  # as given, the row's label
    kind: str  # floor, naive, nekocord
    loop: str | None = None
    json: str | None = None
    store: str | None = None  # "pg": a PostgreSQL DATABASE_URL
    source: str | None = None  # "main": the code of BENCH_BEFORE_REV, not this checkout

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags applied in the process (bench.launch); the floor to compare with has the
        same ones. The store is not one: the floor has no store."""
        return tuple(t for t in (self.loop, self.json) if t is not None)


def parse_spec(text: str) -> BotSpec:
    kind, *tags = text.strip().split("+")
    loop = json = store = source = None
    for tag in tags:
        if tag in LOOPS:
            loop = tag
        elif tag in JSONS:
            json = tag
        elif tag in STORES:
            store = tag
        elif tag in SOURCES:
            source = tag
        else:
            raise ValueError(f"unknown variant {tag!r} in {text!r} (known: {', '.join(TAGS)})")
    if store is not None and kind != "nekocord":
        raise ValueError(f"{text!r}: only nekocord has a store to put in PostgreSQL")
    if source is not None and kind != "nekocord":
        raise ValueError(f"{text!r}: only nekocord's code has revisions to compare")
    return BotSpec(text.strip(), kind, loop, json, store, source)


@functools.cache
def exported_source() -> Path:
    """BENCH_BEFORE_REV's tree (default main), exported once per run into a temporary
    directory (removed at exit)."""
    rev = os.environ.get(BEFORE_REV_ENV, "main")
    root = Path(__file__).resolve().parent.parent
    target = Path(tempfile.mkdtemp(prefix="nekocord-bench-source-"))
    atexit.register(shutil.rmtree, target, True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def bot_loop() -> str:
    """The loop `python -m bot` runs on.

    `bot.__main__.loop_factory()`, when it exists, returns the loop factory `main()` passes to
    `asyncio.Runner` (None: asyncio's default); without it, uvloop counts as chosen when
    importing `bot.__main__` imports it. Each run checks the answer against the process."""
    before = "uvloop" in sys.modules
    module = importlib.import_module("bot.__main__")
    chooser = getattr(module, "loop_factory", None)
    if callable(chooser):
        factory = chooser()
        origin = getattr(factory, "__module__", "") or ""
        return "uvloop" if factory is not None and origin.startswith("uvloop") else "asyncio"
    return "uvloop" if "uvloop" in sys.modules and not before else "asyncio"


def loop_in_process(pid: int) -> str:
    """Which loop a running process uses: uvloop's extension is mapped once it is imported."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return "uvloop" if any("/uvloop/" in line for line in maps) else "asyncio"
    except OSError:
        return "?"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for BENCH_LOOP (None: asyncio's default loop)."""
    if os.environ.get(LOOP_ENV, "asyncio") == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run on the loop BENCH_LOOP names (the floor and the naive bot)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)


def apply_in_child() -> None:
    """Before a bot's own code is imported (bench.launch): make BENCH_LOOP and BENCH_JSON hold
    whatever the bot itself would have chosen."""
    loop = os.environ.get(LOOP_ENV)
    if loop == "uvloop":
        import uvloop

        # asyncio.run() and asyncio.Runner() without a factory create the policy's loop.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elif loop == "asyncio":
        sys.modules["uvloop"] = None  # type: ignore[assignment]  # import fails: fall back
    json = os.environ.get(JSON_ENV)
    if json == "stdjson":
        # discord.utils picks orjson when it imports; failing the import keeps the stdlib.
        sys.modules["orjson"] = None  # type: ignore[assignment]
    elif json == "orjson":
        importlib.import_module("orjson")  # fail loudly rather than measure the stdlib

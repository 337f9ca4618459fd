"""`bot.store` stands alone: nothing of Discord, nothing else of `bot` (so a PostgreSQL backend,
a migration tool or a test can use it without the bot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bot.store
from tests.helpers import imported_modules

PACKAGE = Path(bot.store.__file__).parent


def test_imports_nothing_outside_the_package() -> None:
    sources = sorted(PACKAGE.glob("*.py"))
    assert len(sources) >= 3, sources
    for path in sources:
        for name in imported_modules(path, "bot.store"):
            assert name != "discord" and not name.startswith("discord."), (path.name, name)
            if name == "bot" or name.startswith("bot."):
                assert name == "bot.store" or name.startswith("bot.store."), (path.name, name)


def test_importing_loads_neither_discord_nor_the_rest_of_bot() -> None:
    code = (
        "import sys, bot.store; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('discord', 'aiohttp') "
        "or (m.startswith('bot.') and not m.startswith('bot.store'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)

"""`bot.nekos` stands alone: nothing of Discord, of storage or coordination (asyncpg included),
nothing else of `bot`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bot.nekos
from tests.helpers import imported_modules

PACKAGE = Path(bot.nekos.__file__).parent


def test_imports_nothing_outside_the_package() -> None:
    for path in PACKAGE.glob("*.py"):
        for name in imported_modules(path, "bot.nekos"):
            assert not name.startswith(("discord", "asyncpg", "sqlite3")), (path.name, name)
            if name == "bot" or name.startswith("bot."):
                assert name.startswith("bot.nekos"), (path.name, name)


def test_importing_does_not_load_discord_storage_or_coordination() -> None:
    code = (
        "import sys, bot.nekos; "
        "roots = ('discord', 'asyncpg', 'bot.store', 'bot.coordination'); "
        "bad = [m for m in sys.modules "
        "if m in roots or m.startswith(tuple(r + '.' for r in roots))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)

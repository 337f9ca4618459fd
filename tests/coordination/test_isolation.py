"""`bot.coordination` imports nothing of Discord, and of `bot` only itself and `bot.store`
(the `SharedBudget` protocol of `bot.nekos` is named for type checking only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bot.coordination
from tests.helpers import imported_modules

PACKAGE = Path(bot.coordination.__file__).parent


def test_imports_stay_in_their_layer() -> None:
    for path in PACKAGE.glob("*.py"):
        for name in imported_modules(path, "bot.coordination"):
            assert not name.startswith("discord"), (path.name, name)
        for name in imported_modules(path, "bot.coordination", runtime_only=True):
            if name.startswith("bot."):
                assert name.startswith(("bot.coordination", "bot.store")), (path.name, name)


def test_importing_loads_neither_discord_nor_the_nekos_client() -> None:
    code = (
        "import sys, bot.coordination; "
        "bad = [m for m in sys.modules "
        "if m.split('.')[0] == 'discord' or m.startswith('bot.nekos')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)

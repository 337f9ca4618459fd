"""`bot.coordination` imports nothing of Discord, and of `bot` only itself and `bot.store`
(the `SharedBudget` protocol of `bot.nekos` is named for type checking only)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bot.coordination

PACKAGE = Path(bot.coordination.__file__).parent


def test_imports_stay_in_their_layer() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        type_checking_only = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for child in ast.walk(node)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith("discord"), (path.name, name)
                if name.startswith("bot.") and id(node) not in type_checking_only:
                    assert name.startswith(("bot.coordination", "bot.store")), (path.name, name)


def test_importing_loads_neither_discord_nor_the_nekos_client() -> None:
    code = (
        "import sys, bot.coordination; "
        "bad = [m for m in sys.modules "
        "if m.split('.')[0] == 'discord' or m.startswith('bot.nekos')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)

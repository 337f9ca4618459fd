"""Which categories get their own slash command, and under what name.

Discord allows 100 chat-input commands per app and names of 1-32 lowercase characters. A
category whose name is not a valid command name is mapped to one deterministically, never onto
a fixed command or another category; categories past the limit stay reachable through
`/action` and `/image`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

MAX_CHAT_COMMANDS = 100
_VALID = re.compile(r"^[-_a-z0-9]{1,32}$")
_INVALID_CHARS = re.compile(r"[^-_a-z0-9]+")


def command_name(category: str, taken: set[str]) -> str:
    """A valid, unused command name for `category` (the category itself when possible)."""
    if _VALID.match(category) and category not in taken:
        return category
    base = _INVALID_CHARS.sub("-", category.lower()).strip("-_") or "category"
    digest = hashlib.sha1(category.encode()).hexdigest()
    # A short stable suffix from the original name keeps the mapping deterministic and unique.
    for length in range(4, len(digest) + 1):
        candidate = f"{base[: 31 - length]}-{digest[:length]}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"no command name left for category {category!r}")  # pragma: no cover


def plan(
    categories: Sequence[str],
    fixed: Iterable[str],
    limit: int = MAX_CHAT_COMMANDS,
) -> dict[str, str]:
    """Category → command name, for as many categories as fit beside the fixed commands, in
    the given (/endpoints) order."""
    taken = set(fixed)
    room = max(0, limit - len(taken))
    names: dict[str, str] = {}
    for category in categories:
        if len(names) >= room:
            break
        name = command_name(category, taken)
        taken.add(name)
        names[category] = name
    return names

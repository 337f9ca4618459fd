"""The checks every id and action name passes before any backend sees it."""

from __future__ import annotations

__all__ = ["MAX_ID", "check_action", "check_id"]

# Discord snowflakes are unsigned 64-bit in theory but stay below 2**63 in practice; both SQLite
# and PostgreSQL store signed 64-bit integers, so that is the range every backend accepts.
MAX_ID = 2**63 - 1


def check_id(name: str, value: int) -> int:
    """Validate an id for storage (`Store` checks every id with it, for all backends)."""
    # bool is an int subclass; True as a user id is always a bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"{name} {value} is outside 0..2**63-1")
    return value


def check_action(action: str) -> str:
    """Validate an action name (a nekos.best category such as "hug")."""
    if not isinstance(action, str) or not action or len(action) > 64:
        raise ValueError(f"action must be a non-empty str of at most 64 characters: {action!r}")
    return action

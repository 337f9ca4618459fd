"""The SQLite side of `migrate-store`: read a bot's database without writing it, and check every
row before anything is copied.

The file is opened read-only (`mode=ro`): its bytes and mtime stay as they were whatever it
holds. A file of an older schema is first copied (SQLite's backup API) into a private temporary
directory and that copy is migrated, as opening it with the bot would migrate the file itself.
Every refusal is a `StoreError` of one sentence; nothing of the file's content beyond a short
excerpt reaches it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.store.base import StoreError
from bot.store.checks import MAX_ID, check_action
from bot.store.postgres_schema import TABLES
from bot.store.settings_codec import decode_settings
from bot.store.sqlite_schema import MIGRATIONS, migrate

__all__ = ["COLUMNS", "Rows", "read_source"]

# Every column of every table of SQLite's current schema.
COLUMNS: dict[str, tuple[str, ...]] = {
    "action_counts": ("guild_id", "actor_id", "target_id", "action", "count"),
    "received_totals": ("guild_id", "target_id", "action", "count"),
    "processed_actions": (
        "action_id",
        "target_id",
        "guild_id",
        "actor_id",
        "action",
        "pair_count",
        "received_total",
        "created_at",
    ),
    "returned_actions": ("action_id", "target_id", "guild_id", "actor_id", "created_at"),
    "opt_outs": ("user_id", "created_at"),
    "guild_settings": ("guild_id", "settings", "updated_at"),
    "daily_counts": ("guild_id", "day", "actor_id", "target_id", "action", "count"),
    "action_blocks": ("user_id", "action", "created_at"),
}
assert tuple(COLUMNS) == TABLES

# Per table, rows as the target takes them (settings decoded into PostgreSQL's columns).
Rows = dict[str, list[tuple[Any, ...]]]

_HEADER = b"SQLite format 3\x00"
_MIN_INT = -(2**63)


def _an_id(value: object) -> object:
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise ValueError("is not an id (an integer in 0..2**63-1)")
    return value


def _an_id_or_none(value: object) -> object:
    return None if value is None else _an_id(value)


def _a_count(value: object) -> object:
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise ValueError("is not a count (an integer in 1..2**63-1)")
    return value


def _a_tally(value: object) -> object:
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise ValueError("is not an integer in 0..2**63-1")
    return value


def _a_time(value: object) -> object:
    if type(value) is not int or not _MIN_INT <= value <= MAX_ID:
        raise ValueError("is not a 64-bit integer")
    return value


def _a_day(value: object) -> object:
    # Days since 1970-01-01 (`created_at // 86400`): what a 64-bit time in seconds gives.
    if type(value) is not int or not _MIN_INT // 86_400 <= value <= MAX_ID // 86_400:
        raise ValueError("is not a day number (a 64-bit time in seconds divided by 86400)")
    return value


def _settings_text(value: object) -> object:
    if type(value) is not str:
        raise ValueError("is not text")
    return value


def _an_action(value: object) -> object:
    if type(value) is not str or not 0 < len(value) <= 64:
        raise ValueError("is not an action name (text of 1 to 64 characters)")
    return check_action(value)


# How each column of each table is checked, in COLUMNS' order.
_CHECKS: dict[str, tuple[Callable[[Any], object], ...]] = {
    "action_counts": (_an_id, _an_id, _an_id, _an_action, _a_count),
    "received_totals": (_an_id, _an_id, _an_action, _a_count),
    "processed_actions": (_an_id, _an_id, _an_id, _an_id, _an_action, _a_tally, _a_tally, _a_time),
    "returned_actions": (_an_id, _an_id, _an_id_or_none, _an_id_or_none, _a_time),
    "opt_outs": (_an_id, _a_time),
    "guild_settings": (_an_id, _settings_text, _a_time),
    "daily_counts": (_an_id, _a_day, _an_id, _an_id, _an_action, _a_count),
    "action_blocks": (_an_id, _an_action, _a_time),
}


def read_source(path: str | Path) -> Rows:
    """Every row of the nekocord SQLite database at `path`, checked, as the target takes them.
    Raises `StoreError` (one sentence) for a file that is missing, empty, not SQLite, not a
    complete nekocord database, newer than this release, or holding an invalid row."""
    file = Path(path).expanduser().absolute()
    where = str(file)
    _check_file(file, where)
    try:
        with _read_only(file) as conn, _current(conn, where) as current:
            return {table: _rows(current, table, where) for table in TABLES}
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot read the source database {where!r}: {exc}") from exc


def _check_file(file: Path, where: str) -> None:
    try:
        if not file.is_file():
            raise StoreError(f"the source database {where!r} does not exist (or is no file)")
        with file.open("rb") as handle:
            header = handle.read(len(_HEADER))
    except OSError as exc:
        raise StoreError(f"Cannot read the source database {where!r}: {exc.strerror}") from exc
    if not header:
        # SQLite would take an empty file for an empty database (and write a schema into it).
        raise StoreError(f"the source database {where!r} is empty (0 bytes): nothing to copy")
    if header != _HEADER:
        raise StoreError(f"the source {where!r} is not a SQLite database")


@contextlib.contextmanager
def _read_only(file: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{quote(str(file))}?mode=ro", uri=True, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def _current(conn: sqlite3.Connection, where: str) -> Iterator[sqlite3.Connection]:
    """`conn` if its schema is the current one, else a migrated temporary copy of it."""
    latest = MIGRATIONS[-1].version
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > latest:
        raise StoreError(
            f"the source database {where!r} has schema version {version}, newer than this "
            f"nekocord supports ({latest})"
        )
    if version == latest:
        _require_tables(conn, where, version)
        yield conn
        return
    with tempfile.TemporaryDirectory(prefix="nekocord-migrate-") as directory:  # 0700
        copy = sqlite3.connect(Path(directory) / "copy.db", isolation_level=None)
        try:
            conn.backup(copy)
            migrate(copy, where=f"a copy of {where}", read_only=False)
            _require_tables(copy, where, version)
            yield copy
        finally:
            copy.close()


def _require_tables(conn: sqlite3.Connection, where: str, version: int) -> None:
    present = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    missing = [table for table in TABLES if table not in present]
    if missing:
        raise StoreError(
            f"the source database {where!r} (schema version {version}) has no table "
            f"{missing[0]}: not a complete nekocord database"
        )


def _rows(conn: sqlite3.Connection, table: str, where: str) -> list[tuple[Any, ...]]:
    columns = COLUMNS[table]
    checked = []
    for number, values in enumerate(conn.execute(f"SELECT {', '.join(columns)} FROM {table}"), 1):
        failed = 0
        try:
            for failed, check in enumerate(_CHECKS[table]):
                check(values[failed])
            failed = 1  # the settings' text, decoded last
            row = _settings_columns(values) if table == "guild_settings" else tuple(values)
        except ValueError as exc:
            column, value = columns[failed], values[failed]
            raise StoreError(
                f"the source database {where!r} has an invalid row in {table} (row {number}: "
                f"{column} {_excerpt(value, column)} {_short(exc)}); nothing was copied"
            ) from exc
        checked.append(row)
    return checked


def _settings_columns(row: tuple[Any, ...]) -> tuple[Any, ...]:
    guild_id, text, updated_at = row
    try:
        settings = decode_settings(text)
    except ValueError as exc:
        raise ValueError(f"do not decode: {exc}") from exc
    count, seconds = settings.cooldown or (None, None)
    disabled, channels = sorted(settings.disabled), list(settings.channels)
    pings, leaderboard = settings.pings, settings.leaderboard
    return guild_id, disabled, channels, count, seconds, pings, leaderboard, updated_at


def _excerpt(value: object, column: str) -> str:
    if column == "settings" and isinstance(value, str):
        return f"({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]

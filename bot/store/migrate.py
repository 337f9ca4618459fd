"""`python -m bot migrate-store --from sqlite:///… --to postgresql://…`: move a bot's data from
its SQLite file to an empty PostgreSQL database.

Everything is copied, in one transaction: counts, received totals, per-day totals, opt-outs,
hug-back and dedupe markers, server settings. Losing opt-outs in a move is exactly the harm the
consent feature exists to prevent, so the copy is all or nothing, and a target that already holds
data is refused (merging two bots' counts is not a move). The SQLite file is first brought to the
current schema, as opening it with the bot would; stop the bot before moving its data.

Exit codes: 0 copied; 2 bad arguments, a missing source, a non-empty target, rejected
credentials; 1 a database server that cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from bot.store.base import StoreError, StoreUnreachable
from bot.store.postgres import PostgresStore
from bot.store.postgres_schema import TABLES
from bot.store.sqlite import SqliteStore
from bot.store.sqlite_schema import parse_sqlite_url

__all__ = ["COLUMNS", "Copied", "TargetNotEmpty", "copy_store", "main"]

# Every column of every table, the same in both backends' current schemas.
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
}
assert tuple(COLUMNS) == TABLES

# How the summary names each table's rows.
_NAMES = {
    "action_counts": "counts",
    "received_totals": "received totals",
    "processed_actions": "dedupe markers",
    "returned_actions": "return markers",
    "opt_outs": "opt-outs",
    "guild_settings": "server settings",
    "daily_counts": "per-day totals",
}


class TargetNotEmpty(StoreError):
    """The target database already holds data: nothing was copied."""


@dataclass(frozen=True, slots=True)
class Copied:
    """Rows copied per table, and the actions those counts add up to."""

    rows: dict[str, int]
    actions: int

    def summary(self) -> str:
        parts = [f"{self.rows[table]:,} {_NAMES[table]}" for table in TABLES]
        return f"copied {', '.join(parts)} ({self.actions:,} actions counted)"


async def copy_store(source_url: str, target_url: str) -> Copied:
    """Copy every row of the SQLite database `source_url` (which must exist) into the empty
    PostgreSQL database `target_url`, in one transaction. Raises `TargetNotEmpty`,
    `StoreUnreachable` or `StoreError`; the target is unchanged unless this returns."""
    source = parse_sqlite_url(source_url)
    # "rw": a mistyped path must be an error, not a new empty database copied over.
    mode = "ro" if source.mode == "ro" else "rw"
    async with await SqliteStore.open(source.path, mode=mode) as sqlite_store:
        rows = {table: await sqlite_store.run_on_connection(_reader(table)) for table in TABLES}
    async with await PostgresStore.open(target_url, pool_size=1) as target:
        await target.run_in_transaction(lambda conn: _write(conn, rows))
    actions = sum(int(row[-1]) for row in rows["action_counts"])
    return Copied({table: len(rows[table]) for table in TABLES}, actions)


def _reader(table: str) -> Any:
    def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        columns = ", ".join(COLUMNS[table])
        return [tuple(row) for row in conn.execute(f"SELECT {columns} FROM {table}").fetchall()]

    return read


async def _write(conn: asyncpg.Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    # A bot started on the target meanwhile waits (or we wait for it): "empty" stays true
    # until this transaction commits.
    await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
    for table in TABLES:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise TargetNotEmpty(
                f"the target database already holds data (table {table}): "
                "migrate-store only copies into an empty database"
            )
    for table in TABLES:
        if rows[table]:
            await conn.copy_records_to_table(table, records=rows[table], columns=COLUMNS[table])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot migrate-store",
        description="Copy a nekocord SQLite database into an empty PostgreSQL database.",
    )
    parser.add_argument("--from", dest="source", required=True, metavar="sqlite:///PATH")
    parser.add_argument("--to", dest="target", required=True, metavar="postgresql://URL")
    return parser


def main(argv: Sequence[str]) -> int:
    """The subcommand: one line on stdout when copied, one line on stderr when not."""
    args = _parser().parse_args(list(argv))  # bad arguments: usage and exit 2
    source_scheme = args.source.split("://", 1)[0].lower() if "://" in args.source else "sqlite"
    target_scheme = args.target.split("://", 1)[0].lower() if "://" in args.target else ""
    if source_scheme != "sqlite":
        return _fail("--from must be a SQLite database: sqlite:///path/to/nekocord.db", 2)
    if target_scheme not in ("postgresql", "postgres"):
        return _fail("--to must be a PostgreSQL URL: postgresql://user:password@host/db", 2)
    try:
        copied = asyncio.run(copy_store(args.source, args.target))
    except StoreUnreachable as exc:
        return _fail(str(exc), 1)
    except StoreError as exc:
        return _fail(str(exc), 2)
    print(f"nekocord: {copied.summary()}")
    return 0


def _fail(message: str, code: int) -> int:
    print(f"nekocord migrate-store: {message}", file=sys.stderr)
    return code

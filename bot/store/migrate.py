"""`python -m bot migrate-store --from sqlite:///… --to postgresql://…`: move a bot's data from
its SQLite file to an empty PostgreSQL database.

Everything is copied, in one transaction: counts, received totals, per-day totals, opt-outs,
hug-back and dedupe markers, server settings. Losing opt-outs in a move is exactly the harm the
consent feature exists to prevent, so the copy is all or nothing, and a target that already holds
data is refused (merging two bots' counts is not a move). Stop the bot before moving its data.

The source is only read (`bot.store.migrate_source`), never written: a file of an older schema
is brought to the current one in a temporary copy, and every row is checked before the target
is touched. A file that is not a complete nekocord database, or holds a row no backend could
have written (text in an integer column, an id past 64 bits, settings that do not decode), is
refused whole.

Exit codes: 0 copied; 2 bad arguments, a missing, empty or invalid source, a non-empty target,
rejected credentials; 1 a database server that cannot be reached. Every refusal is one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from bot.store.base import StoreError, StoreUnreachable
from bot.store.migrate_source import COLUMNS, Rows, read_source
from bot.store.postgres import PostgresStore
from bot.store.postgres_schema import TABLES
from bot.store.sqlite_schema import parse_sqlite_url

__all__ = ["COLUMNS", "TARGET_COLUMNS", "Copied", "TargetNotEmpty", "copy_store", "main"]

# What the rows become in PostgreSQL: the same columns, but for the settings (columns since
# PostgreSQL schema version 4, where SQLite keeps one JSON text).
TARGET_COLUMNS: dict[str, tuple[str, ...]] = {
    **COLUMNS,
    "guild_settings": (
        "guild_id",
        "disabled",
        "channels",
        "cooldown_count",
        "cooldown_seconds",
        "pings",
        "leaderboard",
        "updated_at",
    ),
}

# How the summary names each table's rows.
_NAMES = {
    "action_counts": "counts",
    "received_totals": "received totals",
    "processed_actions": "dedupe markers",
    "returned_actions": "return markers",
    "opt_outs": "opt-outs",
    "guild_settings": "server settings",
    "daily_counts": "per-day totals",
    "action_blocks": "blocks",
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
    # Read and checked whole before the target is even opened (nor its schema made).
    rows = await asyncio.to_thread(read_source, source.path)
    async with await PostgresStore.open(target_url, pool_size=1) as target:
        await target.run_in_transaction(lambda conn: _write(conn, rows))
    actions = sum(int(row[-1]) for row in rows["action_counts"])
    return Copied({table: len(rows[table]) for table in TABLES}, actions)


async def _write(conn: asyncpg.Connection, rows: Rows) -> None:
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
            await conn.copy_records_to_table(
                table, records=rows[table], columns=TARGET_COLUMNS[table]
            )


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
    except Exception as exc:  # an operator's tool: one line, never a traceback
        return _fail(f"nothing was copied: {type(exc).__name__}: {exc}", 2)
    print(f"nekocord: {copied.summary()}")
    return 0


def _fail(message: str, code: int) -> int:
    line = " ".join(message.split())[:500]  # one line, whatever the message holds
    print(f"nekocord migrate-store: {line}", file=sys.stderr)
    return code

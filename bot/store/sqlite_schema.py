"""Where a SQLite DATABASE_URL points, and the schema with its migrations (by `user_version`).

Plain synchronous `sqlite3`, run on the store's database thread at open. Another backend keeps
its own migrations beside its own store module.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import parse_qsl, quote

from bot.store.base import StoreError
from bot.store.blocks import BLOCKS_TABLE
from bot.store.files import create_private_file, make_private_dir, readable_by_others
from bot.store.sqlite_runner import transaction

__all__ = [
    "DAILY_COUNTS_STATEMENTS",
    "MIGRATIONS",
    "MIN_SQLITE",
    "Migration",
    "SqliteTarget",
    "migrate",
    "parse_sqlite_url",
    "prepare_file",
]

log = logging.getLogger(__name__)

# RETURNING and upserts with RETURNING need 3.35 (2021).
MIN_SQLITE = (3, 35, 0)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. Statements run in one transaction together with the `user_version`
    bump, so a step is applied whole or not at all and never twice."""

    version: int
    description: str
    statements: tuple[str, ...]


# Shared with PostgreSQL's step (the same text runs on both): one row per (guild, UTC day, actor,
# target, action), counted in record_action's transaction with the pair; pruned after 31 days.
DAILY_COUNTS_STATEMENTS = (
    # The key leads with (guild, day): a period's board is one index range.
    """CREATE TABLE daily_counts (
        guild_id  BIGINT NOT NULL,
        day       BIGINT NOT NULL,
        actor_id  BIGINT NOT NULL,
        target_id BIGINT NOT NULL,
        action    TEXT   NOT NULL,
        count     BIGINT NOT NULL CHECK (count > 0),
        PRIMARY KEY (guild_id, day, actor_id, target_id, action)
    )""",
    "CREATE INDEX daily_counts_by_day ON daily_counts (day)",  # pruning
    "CREATE INDEX daily_counts_by_actor ON daily_counts (actor_id)",  # forget_user
    "CREATE INDEX daily_counts_by_target ON daily_counts (target_id)",
    # The last day's actions are still known one by one (the dedupe markers): a period starts
    # with them rather than empty. A marker of pair_count 0 is PostgreSQL's not yet committed.
    """INSERT INTO daily_counts (guild_id, day, actor_id, target_id, action, count)
        SELECT guild_id, created_at / 86400, actor_id, target_id, action, COUNT(*)
        FROM processed_actions WHERE pair_count > 0
        GROUP BY guild_id, created_at / 86400, actor_id, target_id, action""",
)

# Append only: never edit a released step, add a new one. `user_version` = last applied version.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "counters, dedupe and hug-back markers, opt-outs",
        (
            # One row per (guild, actor, target, action). The key leads with (guild, actor) so
            # user_stats' given side and forget_guild are prefix scans.
            """CREATE TABLE action_counts (
                guild_id  INTEGER NOT NULL,
                actor_id  INTEGER NOT NULL,
                target_id INTEGER NOT NULL,
                action    TEXT    NOT NULL,
                count     INTEGER NOT NULL CHECK (count > 0),
                PRIMARY KEY (guild_id, actor_id, target_id, action)
            ) WITHOUT ROWID""",
            # The received side of user_stats, and forget_user's received side.
            "CREATE INDEX action_counts_by_target ON action_counts (target_id, guild_id)",
            # forget_user's given side (all guilds).
            "CREATE INDEX action_counts_by_actor ON action_counts (actor_id)",
            # Kept in step with action_counts in the same transaction, so record_action reads
            # the received total in O(1) instead of summing over every actor.
            """CREATE TABLE received_totals (
                guild_id  INTEGER NOT NULL,
                target_id INTEGER NOT NULL,
                action    TEXT    NOT NULL,
                count     INTEGER NOT NULL CHECK (count > 0),
                PRIMARY KEY (guild_id, target_id, action)
            ) WITHOUT ROWID""",
            "CREATE INDEX received_totals_by_target ON received_totals (target_id)",
            # Dedupe by interaction id; the counts are kept so a replay answers the same.
            """CREATE TABLE processed_actions (
                action_id      INTEGER PRIMARY KEY,
                guild_id       INTEGER NOT NULL,
                actor_id       INTEGER NOT NULL,
                target_id      INTEGER NOT NULL,
                action         TEXT    NOT NULL,
                pair_count     INTEGER NOT NULL,
                received_total INTEGER NOT NULL,
                created_at     INTEGER NOT NULL
            )""",
            "CREATE INDEX processed_actions_by_age ON processed_actions (created_at)",
            # Who took part is copied from processed_actions at claim time (when known), only
            # so forget_user / forget_guild can delete the markers naming them.
            """CREATE TABLE returned_actions (
                action_id  INTEGER PRIMARY KEY,
                guild_id   INTEGER,
                actor_id   INTEGER,
                target_id  INTEGER,
                created_at INTEGER NOT NULL
            )""",
            "CREATE INDEX returned_actions_by_age ON returned_actions (created_at)",
            """CREATE TABLE opt_outs (
                user_id    INTEGER PRIMARY KEY,
                created_at INTEGER NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "returns claimed per (action, target)",
        (
            # The claim key comes from the button: the action and the member it was aimed at,
            # so nobody but that member can use up their return. Markers from version 1 that
            # named no target (claimed after their action's dedupe row was pruned) keep
            # target_id 0: they still stand for the action's one target.
            """CREATE TABLE returned_actions_v2 (
                action_id  INTEGER NOT NULL,
                target_id  INTEGER NOT NULL,
                guild_id   INTEGER,
                actor_id   INTEGER,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (action_id, target_id)
            ) WITHOUT ROWID""",
            """INSERT INTO returned_actions_v2
                (action_id, target_id, guild_id, actor_id, created_at)
                SELECT action_id, COALESCE(target_id, 0), guild_id, actor_id, created_at
                FROM returned_actions""",
            "DROP TABLE returned_actions",
            "ALTER TABLE returned_actions_v2 RENAME TO returned_actions",
            "CREATE INDEX returned_actions_by_age ON returned_actions (created_at)",
            "CREATE INDEX returned_actions_by_target ON returned_actions (target_id)",
        ),
    ),
    Migration(
        3,
        "dedupe per (action, target): one action may count several targets",
        (
            # Keyed by action_id alone, the second target of one interaction would read as a
            # replay of the first. Version-2 rows each name their action's one target.
            """CREATE TABLE processed_actions_v3 (
                action_id      INTEGER NOT NULL,
                target_id      INTEGER NOT NULL,
                guild_id       INTEGER NOT NULL,
                actor_id       INTEGER NOT NULL,
                action         TEXT    NOT NULL,
                pair_count     INTEGER NOT NULL,
                received_total INTEGER NOT NULL,
                created_at     INTEGER NOT NULL,
                PRIMARY KEY (action_id, target_id)
            ) WITHOUT ROWID""",
            """INSERT INTO processed_actions_v3 (action_id, target_id, guild_id, actor_id,
                action, pair_count, received_total, created_at)
                SELECT action_id, target_id, guild_id, actor_id, action, pair_count,
                received_total, created_at FROM processed_actions""",
            "DROP TABLE processed_actions",
            "ALTER TABLE processed_actions_v3 RENAME TO processed_actions",
            "CREATE INDEX processed_actions_by_age ON processed_actions (created_at)",
        ),
    ),
    Migration(
        4,
        "server settings per guild",
        (
            # One JSON object per guild, read and written whole (settings_codec.encode_settings):
            # two of the four settings are sets, which columns would need side tables for, and
            # nothing ever filters on a setting. Guilds with default settings have no row.
            """CREATE TABLE guild_settings (
                guild_id   INTEGER PRIMARY KEY,
                settings   TEXT    NOT NULL,
                updated_at INTEGER NOT NULL
            )""",
        ),
    ),
    Migration(
        5,
        "per-day totals for the leaderboard's periods",
        (DAILY_COUNTS_STATEMENTS[0] + " WITHOUT ROWID", *DAILY_COUNTS_STATEMENTS[1:]),
    ),
    Migration(6, "blocks: one action refused as a target", (BLOCKS_TABLE + " WITHOUT ROWID",)),
)


@dataclass(frozen=True, slots=True)
class SqliteTarget:
    """Where a DATABASE_URL points: a filesystem path (or ":memory:") and the open mode."""

    path: str
    mode: str = "rwc"  # SQLite URI mode: ro, rw (must exist) or rwc (create)


def parse_sqlite_url(url: str) -> SqliteTarget:
    """Read `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (SQLAlchemy's
    convention: what follows the third slash is the path) or a plain filesystem path.

    URLs may carry `?mode=ro|rw|rwc`. Raises `StoreError` for anything else."""
    text = url.strip()
    if not text.lower().startswith("sqlite:"):
        if not text:
            raise StoreError("DATABASE_URL is empty: set it to sqlite:///path/to/nekocord.db")
        return SqliteTarget(text)  # a plain path, taken literally (it may contain '?')
    rest = text[len("sqlite:") :]
    if not rest.startswith("///"):
        raise StoreError(
            f"DATABASE_URL {text!r} is not a SQLite URL: use sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    path, _, query = rest[3:].partition("?")
    if not path:
        raise StoreError(f"DATABASE_URL {text!r} names no database file")
    mode = "rwc"
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "mode" or value not in ("ro", "rw", "rwc"):
            raise StoreError(
                f"DATABASE_URL parameter {key}={value!r} is not supported "
                "(supported: mode=ro|rw|rwc)"
            )
        mode = value
    return SqliteTarget(path, mode)


def prepare_file(path: str | Path, mode: str) -> tuple[str, str]:
    """(absolute path for messages, SQLite URI). For rwc, creates the missing directories 0700
    and the database file 0600: SQLite gives its -wal and -shm files the database file's mode.
    Warns once if an existing database is readable by others (its mode is the operator's)."""
    file = Path(path).expanduser().absolute()
    where = str(file)
    created = False
    if mode == "rwc":
        try:
            make_private_dir(file.parent)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the directory for the database {where!r}: {exc.strerror or exc}"
            ) from exc
        try:
            created = create_private_file(file)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the database {where!r}: {exc.strerror or exc}"
            ) from exc
    if not created:
        with contextlib.suppress(OSError):  # a missing file is SQLite's to report
            if file.is_file() and readable_by_others(file):
                log.warning(
                    "The database %s is readable by group or others: it holds who did what to "
                    "whom, so consider chmod 600 on it and its -wal and -shm files",
                    where,
                )
    # A URI so `mode` is honoured; quote() keeps '?', '#' and '%' in a path literal.
    return where, f"file:{quote(where)}?mode={mode}"


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    *,
    where: str,
    read_only: bool,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> None:
    """Apply the steps past the database's `user_version`, each in its own transaction.

    Raises `StoreError` for a newer schema than `migrations` knows, for a read-only database
    that needs migrating, and for a failing step (rolled back whole)."""
    latest = migrations[-1].version
    current = _user_version(conn)
    if current > latest:
        raise StoreError(
            f"The database {where!r} has schema version {current}, newer than this "
            f"nekocord supports ({latest}): upgrade nekocord or use another database"
        )
    pending = [m for m in migrations if m.version > current]
    if pending and read_only:
        raise StoreError(
            f"The database {where!r} is opened read-only but needs migrating "
            f"from schema version {current} to {latest}"
        )
    for migration in pending:
        try:
            applied = transaction(conn, partial(_apply, migration), write=True)
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot migrate the database {where!r} to schema version "
                f"{migration.version} ({migration.description}): {exc}"
            ) from exc
        if applied:
            log.info("Migrated %s to schema version %d", where, migration.version)


def _apply(migration: Migration, conn: sqlite3.Connection) -> bool:
    """One step, inside its transaction; False if another process applied it meanwhile."""
    # Re-read under the write lock (BEGIN IMMEDIATE): another process may have migrated.
    if _user_version(conn) >= migration.version:
        return False
    for statement in migration.statements:
        conn.execute(statement)
    # user_version lives in the header page, so it commits with the schema.
    conn.execute(f"PRAGMA user_version = {int(migration.version)}")
    return True

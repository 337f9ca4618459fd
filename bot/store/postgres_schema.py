"""The PostgreSQL schema and its versioned migrations, applied at open under an advisory lock.

Several processes may start at once against one database (a compose file, a rolling deploy):
every open takes the same transaction-level advisory lock before it reads the schema version,
so exactly one of them applies a step and the others find it applied. DDL is transactional in
PostgreSQL, so a step and its version row commit together or not at all.

Ids are BIGINT (Discord snowflakes stay below 2**63); times are Unix seconds, as in SQLite, so
the two backends prune by the same numbers and `migrate-store` copies rows unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from bot.store.base import StoreError
from bot.store.sqlite_schema import DAILY_COUNTS_STATEMENTS

__all__ = ["ADVISORY_LOCK", "MIGRATIONS", "TABLES", "VERSION_TABLE", "PgMigration", "migrate"]

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: any fixed bigint no other application on the database uses
# ("nekocord" in ASCII, truncated to fit).
ADVISORY_LOCK = 0x6E656B6F636F7264
VERSION_TABLE = "nekocord_schema"

# The tables that hold data (what migrate-store copies and what "empty" means).
TABLES = (
    "action_counts",
    "received_totals",
    "processed_actions",
    "returned_actions",
    "opt_outs",
    "guild_settings",
    "daily_counts",
)


@dataclass(frozen=True, slots=True)
class PgMigration:
    """One schema step: its statements run in the migration transaction together with the
    insertion of its row in the version table."""

    version: int
    description: str
    statements: tuple[str, ...]


# Append only: never edit a released step, add a new one. Version 1 is the layout SQLite
# reached at its version 4 (the PostgreSQL backend started there).
MIGRATIONS: tuple[PgMigration, ...] = (
    PgMigration(
        1,
        "counters, dedupe and hug-back markers per target, opt-outs, server settings",
        (
            # The key leads with (guild, actor): user_stats' given side and forget_guild.
            """CREATE TABLE action_counts (
                guild_id  BIGINT NOT NULL,
                actor_id  BIGINT NOT NULL,
                target_id BIGINT NOT NULL,
                action    TEXT   NOT NULL,
                count     BIGINT NOT NULL CHECK (count > 0),
                PRIMARY KEY (guild_id, actor_id, target_id, action)
            )""",
            "CREATE INDEX action_counts_by_target ON action_counts (target_id, guild_id)",
            "CREATE INDEX action_counts_by_actor ON action_counts (actor_id)",
            # Kept in step with action_counts in the same transaction (O(1) received totals).
            """CREATE TABLE received_totals (
                guild_id  BIGINT NOT NULL,
                target_id BIGINT NOT NULL,
                action    TEXT   NOT NULL,
                count     BIGINT NOT NULL CHECK (count > 0),
                PRIMARY KEY (guild_id, target_id, action)
            )""",
            "CREATE INDEX received_totals_by_target ON received_totals (target_id)",
            # Dedupe by (interaction, target), inserted first in record_action's transaction so
            # that a concurrent replay waits on it; the counts are kept so a replay answers the
            # same.
            """CREATE TABLE processed_actions (
                action_id      BIGINT NOT NULL,
                target_id      BIGINT NOT NULL,
                guild_id       BIGINT NOT NULL,
                actor_id       BIGINT NOT NULL,
                action         TEXT   NOT NULL,
                pair_count     BIGINT NOT NULL,
                received_total BIGINT NOT NULL,
                created_at     BIGINT NOT NULL,
                PRIMARY KEY (action_id, target_id)
            )""",
            "CREATE INDEX processed_actions_by_age ON processed_actions (created_at)",
            "CREATE INDEX processed_actions_by_actor ON processed_actions (actor_id)",
            "CREATE INDEX processed_actions_by_target ON processed_actions (target_id)",
            "CREATE INDEX processed_actions_by_guild ON processed_actions (guild_id)",
            # target_id 0: a marker copied from an old SQLite database that named no target
            # (it stands for the action's one target). guild/actor only so that forget_user
            # and forget_guild find the markers naming someone.
            """CREATE TABLE returned_actions (
                action_id  BIGINT NOT NULL,
                target_id  BIGINT NOT NULL,
                guild_id   BIGINT,
                actor_id   BIGINT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (action_id, target_id)
            )""",
            "CREATE INDEX returned_actions_by_age ON returned_actions (created_at)",
            "CREATE INDEX returned_actions_by_target ON returned_actions (target_id)",
            "CREATE INDEX returned_actions_by_actor ON returned_actions (actor_id)",
            "CREATE INDEX returned_actions_by_guild ON returned_actions (guild_id)",
            """CREATE TABLE opt_outs (
                user_id    BIGINT PRIMARY KEY,
                created_at BIGINT NOT NULL
            )""",
            # The same JSON text as SQLite's (sqlite_queries.encode_settings), read whole.
            """CREATE TABLE guild_settings (
                guild_id   BIGINT PRIMARY KEY,
                settings   TEXT   NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
        ),
    ),
    PgMigration(
        2,
        "interactions answered, across processes",
        (
            # One row per interaction a process took on (first_delivery): a gateway replay
            # delivered to another process finds it and is dropped before anything is sent.
            """CREATE TABLE seen_interactions (
                interaction_id BIGINT PRIMARY KEY,
                created_at     BIGINT NOT NULL
            )""",
            "CREATE INDEX seen_interactions_by_age ON seen_interactions (created_at)",
        ),
    ),
    PgMigration(
        3,
        "record_action in one round trip",
        (
            # The same statements, in the same order, as the per-statement version it
            # replaces (marker first; targets in ascending id order), run by the server: one
            # round trip per action instead of six, which is what a burst of commands waits on.
            # Each statement still takes a fresh snapshot (READ COMMITTED), so a replay racing
            # its original waits on the marker and then reads the original's counts.
            """CREATE FUNCTION nekocord_record_action(
                p_action_id BIGINT, p_targets BIGINT[], p_guild_id BIGINT, p_actor_id BIGINT,
                p_action TEXT, p_now BIGINT
            ) RETURNS TABLE (counted_target BIGINT, counted_pair BIGINT, counted_total BIGINT)
            LANGUAGE plpgsql AS $$
            DECLARE
                t BIGINT;
                fresh BOOLEAN;
                pair BIGINT;
                total BIGINT;
            BEGIN
                FOR t IN SELECT DISTINCT u FROM unnest(p_targets) AS u ORDER BY u LOOP
                    fresh := NULL;
                    INSERT INTO processed_actions AS m (action_id, target_id, guild_id,
                        actor_id, action, pair_count, received_total, created_at)
                    VALUES (p_action_id, t, p_guild_id, p_actor_id, p_action, 0, 0, p_now)
                    ON CONFLICT (action_id, target_id) DO NOTHING RETURNING true INTO fresh;
                    IF fresh IS NULL THEN
                        SELECT m.pair_count, m.received_total INTO pair, total
                        FROM processed_actions AS m
                        WHERE m.action_id = p_action_id AND m.target_id = t;
                    ELSE
                        INSERT INTO action_counts AS c (guild_id, actor_id, target_id, action,
                            count) VALUES (p_guild_id, p_actor_id, t, p_action, 1)
                        ON CONFLICT (guild_id, actor_id, target_id, action)
                        DO UPDATE SET count = c.count + 1 RETURNING c.count INTO pair;
                        INSERT INTO received_totals AS r (guild_id, target_id, action, count)
                        VALUES (p_guild_id, t, p_action, 1)
                        ON CONFLICT (guild_id, target_id, action)
                        DO UPDATE SET count = r.count + 1 RETURNING r.count INTO total;
                        UPDATE processed_actions AS m
                        SET pair_count = pair, received_total = total
                        WHERE m.action_id = p_action_id AND m.target_id = t;
                    END IF;
                    counted_target := t;
                    counted_pair := pair;
                    counted_total := total;
                    RETURN NEXT;
                END LOOP;
            END $$""",
        ),
    ),
    # Self-contained (it names no other step): renumber it freely when steps are merged.
    PgMigration(
        4,
        "per-day totals for the leaderboard's periods",
        (
            *DAILY_COUNTS_STATEMENTS,
            # Version 3's function, counting the day's total too, in the same branch: a replay
            # or a retry that finds its marker counts no day either.
            """CREATE OR REPLACE FUNCTION nekocord_record_action(
                p_action_id BIGINT, p_targets BIGINT[], p_guild_id BIGINT, p_actor_id BIGINT,
                p_action TEXT, p_now BIGINT
            ) RETURNS TABLE (counted_target BIGINT, counted_pair BIGINT, counted_total BIGINT)
            LANGUAGE plpgsql AS $$
            DECLARE
                t BIGINT;
                fresh BOOLEAN;
                pair BIGINT;
                total BIGINT;
            BEGIN
                FOR t IN SELECT DISTINCT u FROM unnest(p_targets) AS u ORDER BY u LOOP
                    fresh := NULL;
                    INSERT INTO processed_actions AS m (action_id, target_id, guild_id,
                        actor_id, action, pair_count, received_total, created_at)
                    VALUES (p_action_id, t, p_guild_id, p_actor_id, p_action, 0, 0, p_now)
                    ON CONFLICT (action_id, target_id) DO NOTHING RETURNING true INTO fresh;
                    IF fresh IS NULL THEN
                        SELECT m.pair_count, m.received_total INTO pair, total
                        FROM processed_actions AS m
                        WHERE m.action_id = p_action_id AND m.target_id = t;
                    ELSE
                        INSERT INTO action_counts AS c (guild_id, actor_id, target_id, action,
                            count) VALUES (p_guild_id, p_actor_id, t, p_action, 1)
                        ON CONFLICT (guild_id, actor_id, target_id, action)
                        DO UPDATE SET count = c.count + 1 RETURNING c.count INTO pair;
                        INSERT INTO received_totals AS r (guild_id, target_id, action, count)
                        VALUES (p_guild_id, t, p_action, 1)
                        ON CONFLICT (guild_id, target_id, action)
                        DO UPDATE SET count = r.count + 1 RETURNING r.count INTO total;
                        INSERT INTO daily_counts AS d (guild_id, day, actor_id, target_id,
                            action, count)
                        VALUES (p_guild_id, p_now / 86400, p_actor_id, t, p_action, 1)
                        ON CONFLICT (guild_id, day, actor_id, target_id, action)
                        DO UPDATE SET count = d.count + 1;
                        UPDATE processed_actions AS m
                        SET pair_count = pair, received_total = total
                        WHERE m.action_id = p_action_id AND m.target_id = t;
                    END IF;
                    counted_target := t;
                    counted_pair := pair;
                    counted_total := total;
                    RETURN NEXT;
                END LOOP;
            END $$""",
        ),
    ),
)


async def migrate(
    conn: asyncpg.Connection,
    *,
    where: str,
    migrations: Sequence[PgMigration] = MIGRATIONS,
) -> list[int]:
    """Apply the steps past the database's version in one transaction, holding the advisory
    lock; returns the versions applied here (none if another process did them).

    Raises `StoreError` for a newer schema than `migrations` knows and for a failing step
    (rolled back whole)."""
    latest = migrations[-1].version
    applied: list[int] = []
    doing = "to the schema version it has"
    try:
        async with conn.transaction():
            # Held to the end of this transaction: concurrent opens queue here.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK)
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
                    version     INTEGER PRIMARY KEY,
                    description TEXT NOT NULL,
                    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
                )"""
            )
            current = await conn.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}")
            if current > latest:
                raise StoreError(
                    f"The database {where} has schema version {current}, newer than this "
                    f"nekocord supports ({latest}): upgrade nekocord or use another database"
                )
            for migration in migrations:
                if migration.version <= current:
                    continue
                doing = f"to schema version {migration.version} ({migration.description})"
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {VERSION_TABLE} (version, description) VALUES ($1, $2)",
                    migration.version,
                    migration.description,
                )
                applied.append(migration.version)
    except asyncpg.PostgresError as exc:
        raise StoreError(f"Cannot migrate the database {where} {doing}: {exc}") from exc
    for version in applied:
        log.info("Migrated %s to schema version %d", where, version)
    return applied

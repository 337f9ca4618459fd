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

__all__ = [
    "ADVISORY_LOCK",
    "CHANGES_TABLE",
    "MIGRATIONS",
    "TABLES",
    "VERSION_TABLE",
    "PgMigration",
    "migrate",
]

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: any fixed bigint no other application on the database uses
# ("nekocord" in ASCII, truncated to fit).
ADVISORY_LOCK = 0x6E656B6F636F7264
VERSION_TABLE = "nekocord_schema"
CHANGES_TABLE = "nekocord_changes"  # schema version 4: what the caches read after a NOTIFY

# The tables that hold data (what migrate-store copies and what "empty" means).
TABLES = (
    "action_counts",
    "received_totals",
    "processed_actions",
    "returned_actions",
    "opt_outs",
    "guild_settings",
    "daily_counts",
    "action_blocks",
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
            # The same JSON text as SQLite's (settings_codec.encode_settings), read whole; columns
            # since version 4.
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
    PgMigration(
        4,
        "change counters for the caches, settings as columns changed in place",
        (
            # NOTIFY carries nothing (any role that can connect may send or listen on a
            # channel): each write of opt-outs or settings bumps its topic's version here,
            # stamps its rows with it, and every process reads what is newer than the version
            # it saw. Writers take this row's lock first, so versions commit in order; a
            # deletion (which leaves no row to find) also sets `removed`: read everything again.
            """CREATE TABLE nekocord_changes (
                topic   TEXT PRIMARY KEY,
                version BIGINT NOT NULL,
                removed BIGINT NOT NULL
            )""",
            "INSERT INTO nekocord_changes VALUES ('opt_outs', 0, 0), ('settings', 0, 0)",
            "ALTER TABLE opt_outs ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
            "CREATE INDEX opt_outs_by_version ON opt_outs (version)",
            # One column per setting, so that a /config change is one UPDATE of the stored
            # value (concurrent changes all hold) rather than a rewrite of JSON read earlier.
            # The checks are GuildSettings' own: no row the bot could not read can be stored.
            """CREATE FUNCTION nekocord_valid_names(names TEXT[]) RETURNS BOOLEAN
            LANGUAGE sql IMMUTABLE AS $$
                SELECT coalesce(array_ndims(names), 1) = 1 AND cardinality(names) <= 256
                    AND coalesce(bool_and(length(n) BETWEEN 1 AND 64), true)
                FROM unnest(names) AS n
            $$""",
            """CREATE FUNCTION nekocord_valid_ids(ids BIGINT[]) RETURNS BOOLEAN
            LANGUAGE sql IMMUTABLE AS $$
                SELECT coalesce(array_ndims(ids), 1) = 1 AND cardinality(ids) <= 3
                    AND coalesce(bool_and(i >= 0), true)
                FROM unnest(ids) AS i
            $$""",
            "ALTER TABLE guild_settings RENAME TO guild_settings_v3",
            """CREATE TABLE guild_settings (
                guild_id         BIGINT   PRIMARY KEY,
                disabled         TEXT[]   NOT NULL DEFAULT '{}'
                    CHECK (nekocord_valid_names(disabled)),
                channels         BIGINT[] NOT NULL DEFAULT '{}'
                    CHECK (nekocord_valid_ids(channels)),
                cooldown_count   INTEGER  CHECK (cooldown_count >= 0),
                cooldown_seconds INTEGER  CHECK (cooldown_seconds >= 0),
                pings            BOOLEAN  NOT NULL DEFAULT true,
                updated_at       BIGINT   NOT NULL,
                version          BIGINT   NOT NULL DEFAULT 0,
                CHECK ((cooldown_count IS NULL) = (cooldown_seconds IS NULL))
            )""",
            "CREATE INDEX guild_settings_by_version ON guild_settings (version)",
            # Version 3's JSON rows, each converted on its own: a row that cannot be (edited by
            # hand; it read as the defaults already) is left out, with a server warning.
            """DO $$
            DECLARE
                r RECORD;
                j JSONB;
            BEGIN
                FOR r IN SELECT guild_id, settings, updated_at FROM guild_settings_v3 LOOP
                    BEGIN
                        IF octet_length(r.settings) > 32768 THEN
                            RAISE EXCEPTION 'too long';
                        END IF;
                        j := r.settings::jsonb;
                        INSERT INTO guild_settings (guild_id, disabled, channels,
                            cooldown_count, cooldown_seconds, pings, updated_at)
                        VALUES (
                            r.guild_id,
                            ARRAY(SELECT jsonb_array_elements_text(
                                COALESCE(j -> 'disabled', '[]'))),
                            ARRAY(SELECT e::bigint FROM jsonb_array_elements_text(
                                COALESCE(j -> 'channels', '[]')) AS e),
                            (NULLIF(j -> 'cooldown', 'null') ->> 0)::integer,
                            (NULLIF(j -> 'cooldown', 'null') ->> 1)::integer,
                            COALESCE((j ->> 'pings')::boolean, true),
                            r.updated_at
                        );
                    EXCEPTION WHEN others THEN
                        RAISE WARNING 'nekocord: Unreadable settings of guild % left out at '
                            'schema version 4 (it gets the defaults): %', r.guild_id, SQLERRM;
                    END;
                END LOOP;
            END $$""",
            "DROP TABLE guild_settings_v3",
        ),
    ),
    PgMigration(
        5,
        "first_delivery recognises its own marker",
        (
            # Who wrote the marker (a random number per call): a call whose commit went
            # through but whose answer was lost (a connection cut) finds its own row on the
            # retry and still answers; another process's delivery finds a different one.
            "ALTER TABLE seen_interactions ADD COLUMN claim BIGINT",
        ),
    ),
    PgMigration(
        6,
        "per-day totals for the leaderboard's periods, the leaderboard setting",
        (
            *DAILY_COUNTS_STATEMENTS,
            # Not cached (only /leaderboard reads it, from the database), so no change counter.
            "ALTER TABLE guild_settings ADD COLUMN leaderboard BOOLEAN NOT NULL DEFAULT true",
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
    PgMigration(
        7,
        "blocks: one action refused as a target",
        (
            # In the opt-outs' change topic: a block added is read by its version, one lifted
            # marks the topic removed (the opt-outs and blocks are read whole again).
            """CREATE TABLE action_blocks (
                user_id    BIGINT NOT NULL CHECK (user_id >= 0),
                action     TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
                created_at BIGINT NOT NULL,
                version    BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (user_id, action)
            )""",
            "CREATE INDEX action_blocks_by_version ON action_blocks (version)",
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
    # A step's server warnings (version 4: a row it could not convert) are the bot's to log.
    conn.add_log_listener(_log_server_message)
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
    finally:
        conn.remove_log_listener(_log_server_message)
    for version in applied:
        log.info("Migrated %s to schema version %d", where, version)
    return applied


def _log_server_message(conn: object, message: asyncpg.PostgresLogMessage) -> None:
    if str(getattr(message, "message", "")).startswith("nekocord:"):
        log.warning("%s", str(message.message)[len("nekocord:") :].strip())

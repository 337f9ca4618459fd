"""The PostgreSQL store's transaction bodies: each one coroutine of an `asyncpg.Connection`,
run inside one transaction by `PostgresStore` (never BEGIN/COMMIT here) — or, for a body of one
statement (`single=True`), as that statement alone, atomic by itself without the BEGIN and COMMIT
round trips — and possibly run again after a lost connection, so each must be safe to repeat
(idempotent, or read-only).

Unlike SQLite, where one writer at a time makes any order safe, several processes write at once
here. So `record_action` inserts the dedupe marker first (`ON CONFLICT DO NOTHING`): a replay
racing the original waits on the original's uncommitted marker, then sees it committed and
answers its counts, instead of counting twice or failing on the key (all in the server-side
function `nekocord_record_action`, schema version 3: one round trip). Targets are counted in
ascending id order, so two actions naming the same members lock their rows in the same order and
cannot deadlock each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from bot.store import user_data_sql
from bot.store.base import (
    ActionCounts,
    ActionStat,
    GuildSettings,
    Leaderboard,
    Partner,
    SettingsChange,
    UserData,
    UserStats,
)
from bot.store.board_sql import leaderboard_from_rows, leaderboard_sql, numbered
from bot.store.postgres_cache import BUMP, OPT_OUTS, SETTINGS, bump, mark_removed
from bot.store.settings_codec import settings_from_columns

__all__ = [
    "blocks_of",
    "change_guild_settings",
    "claim_return",
    "counts",
    "first_delivery",
    "forget_guild",
    "forget_user",
    "guild_settings",
    "is_returned",
    "leaderboard",
    "opted_out_among",
    "prune",
    "record_action",
    "save_guild_settings",
    "set_block",
    "set_opt_out",
    "user_data",
    "user_stats",
]


async def record_action(
    conn: asyncpg.Connection,
    *,
    action_id: int,
    guild_id: int,
    action: str,
    actor_id: int,
    target_ids: Sequence[int],
    now: int,
) -> list[ActionCounts]:
    # One statement (schema version 3's function): atomic on its own, one round trip.
    rows = await conn.fetch(
        "SELECT counted_target, counted_pair, counted_total FROM nekocord_record_action"
        "($1, $2::bigint[], $3, $4, $5, $6)",
        action_id,
        list(target_ids),
        guild_id,
        actor_id,
        action,
        now,
    )
    counted = {
        int(row[0]): ActionCounts(pair=int(row[1]), received_total=int(row[2])) for row in rows
    }
    return [counted[target_id] for target_id in target_ids]


async def counts(
    conn: asyncpg.Connection, *, guild_id: int, action: str, actor_id: int, target_id: int
) -> ActionCounts:
    row = await conn.fetchrow(
        "SELECT"
        " (SELECT count FROM action_counts WHERE guild_id = $1 AND actor_id = $2"
        "  AND target_id = $3 AND action = $4),"
        " (SELECT count FROM received_totals WHERE guild_id = $1"
        "  AND target_id = $3 AND action = $4)",
        guild_id,
        actor_id,
        target_id,
        action,
    )
    return ActionCounts(pair=int(row[0] or 0), received_total=int(row[1] or 0))


# A marker without a target (target_id 0, copied from an old SQLite database) stands for the
# action's one target.
_CLAIMED = "SELECT true FROM returned_actions WHERE action_id = $1 AND target_id IN ($2, 0)"


async def claim_return(
    conn: asyncpg.Connection, *, action_id: int, target_id: int, now: int
) -> bool:
    if await conn.fetchval(_CLAIMED, action_id, target_id):
        return False
    # The primary key makes concurrent claims (other processes too) win exactly once: the
    # loser waits for the winner's commit and then inserts nothing.
    claimed = await conn.fetchval(
        "INSERT INTO returned_actions (action_id, target_id, guild_id, actor_id, created_at)"
        " SELECT $1, $2, p.guild_id, p.actor_id, $3 FROM (SELECT 1) AS one LEFT JOIN"
        # Every target of one action shares its guild and actor: any one row tells them.
        " (SELECT guild_id, actor_id FROM processed_actions WHERE action_id = $1 LIMIT 1)"
        " AS p ON true ON CONFLICT (action_id, target_id) DO NOTHING RETURNING true",
        action_id,
        target_id,
        now,
    )
    return bool(claimed)


async def is_returned(conn: asyncpg.Connection, *, action_id: int, target_id: int) -> bool:
    return bool(await conn.fetchval(_CLAIMED, action_id, target_id))


async def user_stats(
    conn: asyncpg.Connection, *, guild_id: int, user_id: int, top: int
) -> UserStats:
    actions = await conn.fetch(
        "SELECT action, SUM(given) AS g, SUM(received) AS r FROM ("
        " SELECT action, count AS given, 0 AS received FROM action_counts"
        "  WHERE guild_id = $1 AND actor_id = $2"
        " UNION ALL"
        " SELECT action, 0, count FROM received_totals"
        "  WHERE guild_id = $1 AND target_id = $2"
        ') AS t GROUP BY action ORDER BY SUM(given) + SUM(received) DESC, action COLLATE "C"',
        guild_id,
        user_id,
    )
    partners = await conn.fetch(
        "SELECT partner, SUM(n) AS total FROM ("
        " SELECT target_id AS partner, count AS n FROM action_counts"
        "  WHERE guild_id = $1 AND actor_id = $2 AND target_id != $2"
        " UNION ALL"
        " SELECT actor_id, count FROM action_counts"
        "  WHERE guild_id = $1 AND target_id = $2 AND actor_id != $2"
        ") AS t GROUP BY partner ORDER BY total DESC, partner LIMIT $3",
        guild_id,
        user_id,
        top,
    )
    return UserStats(
        actions=[ActionStat(str(a), int(g), int(r)) for a, g, r in actions],
        top_partners=[Partner(int(p), int(n)) for p, n in partners],
    )


async def leaderboard(
    conn: asyncpg.Connection,
    *,
    guild_id: int,
    board: str,
    since_day: int | None,
    action: str | None,
    user_id: int,
    offset: int,
    limit: int,
) -> Leaderboard:
    sql, names = numbered(
        leaderboard_sql(board, period=since_day is not None, action=action is not None)
    )
    values: dict[str, object] = {"guild": guild_id, "user": user_id, "offset": offset}
    values |= {"limit": limit}
    values |= {"since": since_day, "action": action}
    rows = await conn.fetch(sql, *(values[name] for name in names))
    return leaderboard_from_rows([tuple(row) for row in rows], offset, limit, user_id)


async def user_data(conn: asyncpg.Connection, *, user_id: int) -> UserData:
    found = []
    for sql in (
        user_data_sql.COUNTS,
        user_data_sql.DAYS,
        user_data_sql.PENDING,
        user_data_sql.OPTED_OUT,
        user_data_sql.BLOCKS,
    ):
        text, _ = numbered(sql)
        found.append([tuple(row) for row in await conn.fetch(text, user_id)])
    return user_data_sql.user_data_from_rows(*found)


async def set_opt_out(conn: asyncpg.Connection, *, user_id: int, opted_out: bool, now: int) -> None:
    version = await bump(conn, OPT_OUTS)
    if opted_out:
        # DO NOTHING keeps the first opt-out's timestamp (and version: nothing changed).
        await conn.execute(
            "INSERT INTO opt_outs (user_id, created_at, version) VALUES ($1, $2, $3)"
            " ON CONFLICT (user_id) DO NOTHING",
            user_id,
            now,
            version,
        )
    else:
        await _delete_opt_out(conn, user_id, version)


async def _delete_opt_out(conn: asyncpg.Connection, user_id: int, version: int) -> None:
    if await conn.fetchval("DELETE FROM opt_outs WHERE user_id = $1 RETURNING true", user_id):
        await mark_removed(conn, OPT_OUTS, version)


async def opted_out_among(
    conn: asyncpg.Connection, *, user_ids: list[int], refusing: list[str]
) -> set[int]:
    rows = await conn.fetch(
        "SELECT user_id FROM opt_outs WHERE user_id = ANY($1::bigint[])"
        " UNION SELECT user_id FROM action_blocks"
        " WHERE user_id = ANY($1::bigint[]) AND action = ANY($2::text[])",
        user_ids,
        refusing,
    )
    return {int(row[0]) for row in rows}


async def set_block(
    conn: asyncpg.Connection, *, user_id: int, action: str, blocked: bool, now: int, limit: int
) -> list[str]:
    # The topic's row lock (bump) orders every opt-out and block write: the count is exact.
    version = await bump(conn, OPT_OUTS)
    if blocked:
        await conn.execute(
            "INSERT INTO action_blocks (user_id, action, created_at, version)"
            " SELECT $1, $2, $3, $4"
            " WHERE (SELECT COUNT(*) FROM action_blocks WHERE user_id = $1) < $5"
            " ON CONFLICT (user_id, action) DO NOTHING",
            user_id,
            action,
            now,
            version,
            limit,
        )
    elif await conn.fetchval(
        "DELETE FROM action_blocks WHERE user_id = $1 AND action = $2 RETURNING true",
        user_id,
        action,
    ):
        await mark_removed(conn, OPT_OUTS, version)
    return await blocks_of(conn, user_id=user_id)


async def blocks_of(conn: asyncpg.Connection, *, user_id: int) -> list[str]:
    rows = await conn.fetch("SELECT action FROM action_blocks WHERE user_id = $1", user_id)
    return sorted(str(row[0]) for row in rows)


async def forget_user(conn: asyncpg.Connection, *, user_id: int, keep_opt_out: bool) -> None:
    # Targets first lose what this user gave them, so received totals keep equalling the sums
    # of the pair counts. Rows that would reach zero are deleted rather than updated
    # (CHECK (count > 0)).
    given = (
        "(guild_id, target_id, action) IN"
        " (SELECT guild_id, target_id, action FROM action_counts WHERE actor_id = $1)"
    )
    given_sum = (
        "(SELECT SUM(ac.count) FROM action_counts AS ac WHERE ac.actor_id = $1"
        " AND ac.guild_id = received_totals.guild_id"
        " AND ac.target_id = received_totals.target_id"
        " AND ac.action = received_totals.action)"
    )
    await conn.execute(
        f"DELETE FROM received_totals WHERE {given} AND count <= {given_sum}", user_id
    )
    await conn.execute(
        f"UPDATE received_totals SET count = count - {given_sum} WHERE {given}", user_id
    )
    await conn.execute("DELETE FROM received_totals WHERE target_id = $1", user_id)
    for table in ("action_counts", "daily_counts", "processed_actions", "returned_actions"):
        await conn.execute(f"DELETE FROM {table} WHERE actor_id = $1 OR target_id = $1", user_id)
    # Last, so the topic's lock (which every opt-out write waits for) is held briefly; it is
    # still taken before the opt-out's and blocks' row locks, as in every opt-out write.
    version = await bump(conn, OPT_OUTS)
    if await conn.fetchval("DELETE FROM action_blocks WHERE user_id = $1 RETURNING true", user_id):
        await mark_removed(conn, OPT_OUTS, version)
    if not keep_opt_out:
        await _delete_opt_out(conn, user_id, version)


async def forget_guild(conn: asyncpg.Connection, *, guild_id: int) -> None:
    for table in (
        "action_counts",
        "received_totals",
        "daily_counts",
        "processed_actions",
        "returned_actions",
    ):
        await conn.execute(f"DELETE FROM {table} WHERE guild_id = $1", guild_id)
    # Last, as in forget_user: the settings' topic lock briefly, before the settings row's.
    await _delete_settings(conn, guild_id, await bump(conn, SETTINGS))


async def _delete_settings(conn: asyncpg.Connection, guild_id: int, version: int) -> None:
    deleted = "DELETE FROM guild_settings WHERE guild_id = $1 RETURNING true"
    if await conn.fetchval(deleted, guild_id):
        await mark_removed(conn, SETTINGS, version)


_SETTINGS_COLUMNS = "disabled, channels, cooldown_count, cooldown_seconds, pings, leaderboard"


async def guild_settings(conn: asyncpg.Connection, *, guild_id: int) -> GuildSettings:
    row = await conn.fetchrow(
        f"SELECT {_SETTINGS_COLUMNS} FROM guild_settings WHERE guild_id = $1", guild_id
    )
    return GuildSettings() if row is None else settings_from_columns(guild_id, *row)


def _columns(settings: GuildSettings) -> tuple[object, ...]:
    cooldown = settings.cooldown or (None, None)
    disabled, channels = sorted(settings.disabled), list(settings.channels)
    return disabled, channels, *cooldown, settings.pings, settings.leaderboard


async def save_guild_settings(
    conn: asyncpg.Connection, *, guild_id: int, settings: GuildSettings, now: int
) -> None:
    version = await bump(conn, SETTINGS)
    if settings == GuildSettings():
        # The defaults need no row: most guilds never change anything.
        await _delete_settings(conn, guild_id, version)
        return
    await conn.execute(
        f"INSERT INTO guild_settings (guild_id, {_SETTINGS_COLUMNS}, updated_at, version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (guild_id) DO UPDATE SET"
        f" ({_SETTINGS_COLUMNS}, updated_at, version) = (excluded.disabled, excluded.channels,"
        " excluded.cooldown_count, excluded.cooldown_seconds, excluded.pings,"
        " excluded.leaderboard, excluded.updated_at, excluded.version)",
        guild_id,
        *_columns(settings),
        now,
        version,
    )


# One statement: the version first (the topic's lock orders writers), then the change made to
# the stored row under its row lock (a guild without a row gets the defaults changed). Two
# concurrent changes of one guild queue on the locks and the second changes the first's result.
_CHANGE = f"""
WITH bumped AS ({BUMP.replace("$1", "'settings'")})
INSERT INTO guild_settings AS g (guild_id, {_SETTINGS_COLUMNS}, updated_at, version)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, version FROM bumped
ON CONFLICT (guild_id) DO UPDATE SET
    disabled = ARRAY(
        SELECT unnest(g.disabled || $9::text[]) EXCEPT SELECT unnest($10::text[])
    ),
    channels = COALESCE($11::bigint[], g.channels),
    cooldown_count = CASE WHEN $12 THEN $4 ELSE g.cooldown_count END,
    cooldown_seconds = CASE WHEN $12 THEN $5 ELSE g.cooldown_seconds END,
    pings = COALESCE($13::boolean, g.pings),
    leaderboard = COALESCE($14::boolean, g.leaderboard),
    updated_at = excluded.updated_at,
    version = excluded.version
RETURNING {_SETTINGS_COLUMNS}
"""


async def change_guild_settings(
    conn: asyncpg.Connection, *, guild_id: int, change: SettingsChange, now: int
) -> GuildSettings:
    # Safe to repeat after a lost connection: each kind of change is idempotent.
    row = await conn.fetchrow(
        _CHANGE,
        guild_id,
        *_columns(change.applied_to(GuildSettings())),
        now,
        sorted(change.disable),
        sorted(change.enable),
        None if change.channels is None else list(change.channels),
        change.default_cooldown or change.cooldown is not None,
        change.pings,
        change.leaderboard,
    )
    return settings_from_columns(guild_id, *row)


async def first_delivery(
    conn: asyncpg.Connection, *, interaction_id: int, now: int, claim: int
) -> bool:
    # A delivery racing another waits for its commit, then finds the row: one of them wins.
    inserted = await conn.fetchval(
        "INSERT INTO seen_interactions (interaction_id, created_at, claim) VALUES ($1, $2, $3)"
        " ON CONFLICT (interaction_id) DO NOTHING RETURNING true",
        interaction_id,
        now,
        claim,
    )
    if inserted:
        return True
    # A retry of this very call (its commit went through, its answer was lost with the
    # connection) finds its own claim. A statement of its own: its snapshot is taken after the
    # insert above waited for whichever transaction wrote the row.
    mine = await conn.fetchval(
        "SELECT claim = $2 FROM seen_interactions WHERE interaction_id = $1", interaction_id, claim
    )
    return bool(mine)


async def prune(
    conn: asyncpg.Connection, *, processed_before: int, returned_before: int, daily_before: int
) -> None:
    """Delete dedupe and hug-back markers and per-day totals past their lifetime (index range
    deletes; `daily_before` is a day number)."""
    await conn.execute("DELETE FROM seen_interactions WHERE created_at < $1", processed_before)
    await conn.execute("DELETE FROM processed_actions WHERE created_at < $1", processed_before)
    await conn.execute("DELETE FROM returned_actions WHERE created_at < $1", returned_before)
    await conn.execute("DELETE FROM daily_counts WHERE day < $1", daily_before)

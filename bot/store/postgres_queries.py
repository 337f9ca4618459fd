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
    UserData,
    UserStats,
)
from bot.store.board_sql import leaderboard_sql, numbered
from bot.store.postgres_cache import notify_opt_out, notify_settings
from bot.store.sqlite_queries import decode_settings, encode_settings, leaderboard_from_rows

__all__ = [
    "all_opt_outs",
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
    ):
        text, _ = numbered(sql)
        found.append([tuple(row) for row in await conn.fetch(text, user_id)])
    return user_data_sql.user_data_from_rows(*found)


async def set_opt_out(conn: asyncpg.Connection, *, user_id: int, opted_out: bool, now: int) -> None:
    if opted_out:
        # DO NOTHING keeps the first opt-out's timestamp.
        await conn.execute(
            "INSERT INTO opt_outs (user_id, created_at) VALUES ($1, $2)"
            " ON CONFLICT (user_id) DO NOTHING",
            user_id,
            now,
        )
    else:
        await conn.execute("DELETE FROM opt_outs WHERE user_id = $1", user_id)
    await notify_opt_out(conn, user_id, opted_out)


async def all_opt_outs(conn: asyncpg.Connection) -> set[int]:
    return {int(row[0]) for row in await conn.fetch("SELECT user_id FROM opt_outs")}


async def opted_out_among(conn: asyncpg.Connection, *, user_ids: list[int]) -> set[int]:
    rows = await conn.fetch(
        "SELECT user_id FROM opt_outs WHERE user_id = ANY($1::bigint[])", user_ids
    )
    return {int(row[0]) for row in rows}


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
    if not keep_opt_out:
        await conn.execute("DELETE FROM opt_outs WHERE user_id = $1", user_id)
        await notify_opt_out(conn, user_id, False)


async def forget_guild(conn: asyncpg.Connection, *, guild_id: int) -> None:
    for table in (
        "action_counts",
        "received_totals",
        "daily_counts",
        "processed_actions",
        "returned_actions",
        "guild_settings",
    ):
        await conn.execute(f"DELETE FROM {table} WHERE guild_id = $1", guild_id)
    await notify_settings(conn, guild_id)


async def guild_settings(conn: asyncpg.Connection, *, guild_id: int) -> GuildSettings:
    text = await conn.fetchval("SELECT settings FROM guild_settings WHERE guild_id = $1", guild_id)
    return GuildSettings() if text is None else decode_settings(str(text), guild_id=guild_id)


async def save_guild_settings(
    conn: asyncpg.Connection, *, guild_id: int, settings: GuildSettings, now: int
) -> None:
    await notify_settings(conn, guild_id)  # delivered at commit
    if settings == GuildSettings():
        # The defaults need no row: most guilds never change anything.
        await conn.execute("DELETE FROM guild_settings WHERE guild_id = $1", guild_id)
        return
    await conn.execute(
        "INSERT INTO guild_settings (guild_id, settings, updated_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (guild_id) DO UPDATE SET"
        " settings = excluded.settings, updated_at = excluded.updated_at",
        guild_id,
        encode_settings(settings),
        now,
    )


async def first_delivery(conn: asyncpg.Connection, *, interaction_id: int, now: int) -> bool:
    # A delivery racing another waits for its commit, then finds the row: one of them wins.
    inserted = await conn.fetchval(
        "INSERT INTO seen_interactions (interaction_id, created_at) VALUES ($1, $2)"
        " ON CONFLICT (interaction_id) DO NOTHING RETURNING true",
        interaction_id,
        now,
    )
    return bool(inserted)


async def prune(
    conn: asyncpg.Connection, *, processed_before: int, returned_before: int, daily_before: int
) -> None:
    """Delete dedupe and hug-back markers and per-day totals past their lifetime (index range
    deletes; `daily_before` is a day number)."""
    await conn.execute("DELETE FROM seen_interactions WHERE created_at < $1", processed_before)
    await conn.execute("DELETE FROM processed_actions WHERE created_at < $1", processed_before)
    await conn.execute("DELETE FROM returned_actions WHERE created_at < $1", returned_before)
    await conn.execute("DELETE FROM daily_counts WHERE day < $1", daily_before)

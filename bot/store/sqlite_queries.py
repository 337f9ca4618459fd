"""The SQLite store's transaction bodies: each one plain synchronous function of a
`sqlite3.Connection`, run inside one transaction by `SqliteRunner` (never BEGIN/COMMIT here).

Arguments are validated by the store before they get here; results are the `bot.store.base`
value types, never rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from bot.store import user_data_sql
from bot.store.base import (
    DAY,
    ActionCounts,
    ActionStat,
    GuildSettings,
    Leaderboard,
    Partner,
    SettingsChange,
    UserData,
    UserStats,
)
from bot.store.board_sql import leaderboard_from_rows, leaderboard_sql
from bot.store.settings_codec import encode_settings, read_settings
from bot.store.sqlite_settings import change_settings

__all__ = [
    "blocks_of",
    "change_guild_settings",
    "claim_return",
    "counts",
    "forget_guild",
    "forget_user",
    "guild_settings",
    "is_returned",
    "leaderboard",
    "opted_out_among",
    "ping",
    "prune",
    "read_opt_outs",
    "record_action",
    "save_guild_settings",
    "set_block",
    "set_opt_out",
    "user_data",
    "user_stats",
]

_IN_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


_SEEN = "SELECT target_id, pair_count, received_total FROM processed_actions WHERE action_id = ?"
_COUNT_PAIR = (
    "INSERT INTO action_counts (guild_id, actor_id, target_id, action, count)"
    " VALUES (?, ?, ?, ?, 1)"
    " ON CONFLICT (guild_id, actor_id, target_id, action)"
    " DO UPDATE SET count = count + 1 RETURNING count"
)
_COUNT_RECEIVED = (
    "INSERT INTO received_totals (guild_id, target_id, action, count)"
    " VALUES (?, ?, ?, 1)"
    " ON CONFLICT (guild_id, target_id, action)"
    " DO UPDATE SET count = count + 1 RETURNING count"
)
# The per-day totals the periods of a leaderboard read, counted with the pair.
_COUNT_DAY = (
    "INSERT INTO daily_counts (guild_id, day, actor_id, target_id, action, count)"
    " VALUES (?, ?, ?, ?, ?, 1)"
    " ON CONFLICT (guild_id, day, actor_id, target_id, action)"
    " DO UPDATE SET count = count + 1"
)
_MARK_PROCESSED = (
    "INSERT INTO processed_actions (action_id, target_id, guild_id, actor_id, action,"
    " pair_count, received_total, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def record_action(
    conn: sqlite3.Connection,
    *,
    action_id: int,
    guild_id: int,
    action: str,
    actor_id: int,
    target_ids: Sequence[int],
    now: int,
) -> list[ActionCounts]:
    # One read finds every target this interaction already counted (a replay answers what
    # the first delivery answered); the key's prefix makes it one index range.
    counted = {
        int(target): ActionCounts(pair=int(pair), received_total=int(total))
        for target, pair, total in conn.execute(_SEEN, (action_id,)).fetchall()
    }
    for target_id in target_ids:
        if target_id in counted:
            continue
        # fetchall() steps each RETURNING statement to its end before the next one.
        ((pair,),) = conn.execute(_COUNT_PAIR, (guild_id, actor_id, target_id, action)).fetchall()
        ((total,),) = conn.execute(_COUNT_RECEIVED, (guild_id, target_id, action)).fetchall()
        conn.execute(_COUNT_DAY, (guild_id, now // DAY, actor_id, target_id, action))
        conn.execute(
            _MARK_PROCESSED,
            (action_id, target_id, guild_id, actor_id, action, pair, total, now),
        )
        counted[target_id] = ActionCounts(pair=int(pair), received_total=int(total))
    return [counted[target_id] for target_id in target_ids]


def counts(
    conn: sqlite3.Connection, *, guild_id: int, action: str, actor_id: int, target_id: int
) -> ActionCounts:
    ((pair, total),) = conn.execute(
        "SELECT"
        " (SELECT count FROM action_counts WHERE guild_id = ? AND actor_id = ?"
        "  AND target_id = ? AND action = ?),"
        " (SELECT count FROM received_totals WHERE guild_id = ?"
        "  AND target_id = ? AND action = ?)",
        (guild_id, actor_id, target_id, action, guild_id, target_id, action),
    ).fetchall()
    return ActionCounts(pair=int(pair or 0), received_total=int(total or 0))


# A version-1 marker without a target (target_id 0) stands for the action's one target.
_CLAIMED = "SELECT 1 FROM returned_actions WHERE action_id = :a AND target_id IN (:t, 0)"


def claim_return(conn: sqlite3.Connection, *, action_id: int, target_id: int, now: int) -> bool:
    if conn.execute(_CLAIMED, {"a": action_id, "t": target_id}).fetchall():
        return False
    # WHERE true: SQLite's required disambiguation for INSERT … SELECT … ON CONFLICT.
    rows = conn.execute(
        "INSERT INTO returned_actions (action_id, target_id, guild_id, actor_id, created_at)"
        " SELECT :a, :t, p.guild_id, p.actor_id, :now FROM (SELECT 1) LEFT JOIN"
        # Every target of one action shares its guild and actor: any one row tells them.
        " (SELECT guild_id, actor_id FROM processed_actions WHERE action_id = :a LIMIT 1)"
        " AS p WHERE true ON CONFLICT (action_id, target_id) DO NOTHING RETURNING action_id",
        {"a": action_id, "t": target_id, "now": now},
    ).fetchall()
    return bool(rows)


def is_returned(conn: sqlite3.Connection, *, action_id: int, target_id: int) -> bool:
    return bool(conn.execute(_CLAIMED, {"a": action_id, "t": target_id}).fetchall())


def user_stats(conn: sqlite3.Connection, *, guild_id: int, user_id: int, top: int) -> UserStats:
    actions = conn.execute(
        "SELECT action, SUM(given) AS g, SUM(received) AS r FROM ("
        " SELECT action, count AS given, 0 AS received FROM action_counts"
        "  WHERE guild_id = ? AND actor_id = ?"
        " UNION ALL"
        " SELECT action, 0, count FROM received_totals"
        "  WHERE guild_id = ? AND target_id = ?"
        ") GROUP BY action ORDER BY g + r DESC, action",
        (guild_id, user_id, guild_id, user_id),
    ).fetchall()
    partners = conn.execute(
        "SELECT partner, SUM(n) AS total FROM ("
        " SELECT target_id AS partner, count AS n FROM action_counts"
        "  WHERE guild_id = ? AND actor_id = ? AND target_id != ?"
        " UNION ALL"
        " SELECT actor_id, count FROM action_counts"
        "  WHERE guild_id = ? AND target_id = ? AND actor_id != ?"
        ") GROUP BY partner ORDER BY total DESC, partner LIMIT ?",
        (guild_id, user_id, user_id, guild_id, user_id, user_id, top),
    ).fetchall()
    return UserStats(
        actions=[ActionStat(str(a), int(g), int(r)) for a, g, r in actions],
        top_partners=[Partner(int(p), int(n)) for p, n in partners],
    )


def leaderboard(
    conn: sqlite3.Connection,
    *,
    guild_id: int,
    board: str,
    since_day: int | None,
    action: str | None,
    user_id: int,
    offset: int,
    limit: int,
) -> Leaderboard:
    sql = leaderboard_sql(board, period=since_day is not None, action=action is not None)
    params: dict[str, Any] = {"guild": guild_id, "user": user_id, "offset": offset}
    params |= {"limit": limit, "since": since_day, "action": action}
    return leaderboard_from_rows(conn.execute(sql, params).fetchall(), offset, limit, user_id)


def user_data(conn: sqlite3.Connection, *, user_id: int) -> UserData:
    u = {"user": user_id}
    return user_data_sql.user_data_from_rows(
        *(
            conn.execute(sql, u).fetchall()
            for sql in (
                user_data_sql.COUNTS,
                user_data_sql.DAYS,
                user_data_sql.PENDING,
                user_data_sql.OPTED_OUT,
                user_data_sql.BLOCKS,
            )
        )
    )


def set_opt_out(conn: sqlite3.Connection, *, user_id: int, opted_out: bool, now: int) -> None:
    if opted_out:
        # DO NOTHING keeps the first opt-out's timestamp.
        conn.execute(
            "INSERT INTO opt_outs (user_id, created_at) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO NOTHING",
            (user_id, now),
        )
    else:
        conn.execute("DELETE FROM opt_outs WHERE user_id = ?", (user_id,))


def opted_out_among(
    conn: sqlite3.Connection, *, user_ids: list[int], refusing: list[str]
) -> set[int]:
    found: set[int] = set()
    actions = ", ".join("?" * len(refusing))
    for start in range(0, len(user_ids), _IN_CHUNK):
        chunk = user_ids[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT user_id FROM opt_outs WHERE user_id IN ({marks})"
        if refusing:
            sql += (
                f" UNION SELECT user_id FROM action_blocks"
                f" WHERE user_id IN ({marks}) AND action IN ({actions})"
            )
        rows = conn.execute(sql, [*chunk, *chunk, *refusing] if refusing else chunk).fetchall()
        found.update(int(uid) for (uid,) in rows)
    return found


def read_opt_outs(conn: sqlite3.Connection) -> tuple[set[int], dict[int, frozenset[str]]]:
    """Every opted-out user id and every member's blocks (read once at open)."""
    opted_out = {int(uid) for (uid,) in conn.execute("SELECT user_id FROM opt_outs").fetchall()}
    blocks: dict[int, set[str]] = {}
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'action_blocks'").fetchone():
        return opted_out, {}  # opened with an older schema's steps (tests of upgrades)
    for uid, action in conn.execute("SELECT user_id, action FROM action_blocks"):
        blocks.setdefault(int(uid), set()).add(str(action))
    return opted_out, {uid: frozenset(actions) for uid, actions in blocks.items()}


def set_block(
    conn: sqlite3.Connection, *, user_id: int, action: str, blocked: bool, now: int, limit: int
) -> list[str]:
    if blocked:
        # Nothing past the limit (the writer is alone: the count cannot change meanwhile).
        conn.execute(
            "INSERT INTO action_blocks (user_id, action, created_at)"
            " SELECT ?, ?, ? WHERE (SELECT COUNT(*) FROM action_blocks WHERE user_id = ?) < ?"
            " ON CONFLICT (user_id, action) DO NOTHING",
            (user_id, action, now, user_id, limit),
        )
    else:
        conn.execute(
            "DELETE FROM action_blocks WHERE user_id = ? AND action = ?", (user_id, action)
        )
    return blocks_of(conn, user_id=user_id)


def blocks_of(conn: sqlite3.Connection, *, user_id: int) -> list[str]:
    rows = conn.execute("SELECT action FROM action_blocks WHERE user_id = ?", (user_id,))
    return sorted(str(action) for (action,) in rows)


def forget_user(conn: sqlite3.Connection, *, user_id: int, keep_opt_out: bool) -> None:
    u = {"u": user_id}
    # Targets first lose what this user gave them, so received totals keep equalling the sums
    # of the pair counts. Rows that would reach zero are deleted rather than updated
    # (CHECK (count > 0) is checked row by row).
    given = (
        "(guild_id, target_id, action) IN"
        " (SELECT guild_id, target_id, action FROM action_counts WHERE actor_id = :u)"
    )
    given_sum = (
        "(SELECT SUM(ac.count) FROM action_counts AS ac WHERE ac.actor_id = :u"
        " AND ac.guild_id = received_totals.guild_id"
        " AND ac.target_id = received_totals.target_id"
        " AND ac.action = received_totals.action)"
    )
    conn.execute(f"DELETE FROM received_totals WHERE {given} AND count <= {given_sum}", u)
    conn.execute(f"UPDATE received_totals SET count = count - {given_sum} WHERE {given}", u)
    conn.execute("DELETE FROM received_totals WHERE target_id = :u", u)
    conn.execute("DELETE FROM action_counts WHERE actor_id = :u OR target_id = :u", u)
    conn.execute("DELETE FROM daily_counts WHERE actor_id = :u OR target_id = :u", u)
    conn.execute("DELETE FROM processed_actions WHERE actor_id = :u OR target_id = :u", u)
    conn.execute("DELETE FROM returned_actions WHERE actor_id = :u OR target_id = :u", u)
    conn.execute("DELETE FROM action_blocks WHERE user_id = :u", u)
    if not keep_opt_out:
        conn.execute("DELETE FROM opt_outs WHERE user_id = :u", u)


def forget_guild(conn: sqlite3.Connection, *, guild_id: int) -> None:
    for table in ("action_counts", "received_totals", "daily_counts", "processed_actions"):
        conn.execute(f"DELETE FROM {table} WHERE guild_id = ?", (guild_id,))
    # Markers claimed after their action's dedupe row was pruned have no guild: they name
    # nobody and expire with the other markers.
    conn.execute("DELETE FROM returned_actions WHERE guild_id = ?", (guild_id,))
    conn.execute("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,))


def guild_settings(conn: sqlite3.Connection, *, guild_id: int) -> GuildSettings:
    rows = conn.execute(
        "SELECT settings FROM guild_settings WHERE guild_id = ?", (guild_id,)
    ).fetchall()
    return read_settings(rows[0][0], guild_id=guild_id) if rows else GuildSettings()


def save_guild_settings(
    conn: sqlite3.Connection, *, guild_id: int, settings: GuildSettings, now: int
) -> None:
    if settings == GuildSettings():
        # The defaults need no row: most guilds never change anything.
        conn.execute("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,))
        return
    conn.execute(
        "INSERT INTO guild_settings (guild_id, settings, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (guild_id) DO UPDATE SET"
        " settings = excluded.settings, updated_at = excluded.updated_at",
        (guild_id, encode_settings(settings), now),
    )


def change_guild_settings(
    conn: sqlite3.Connection, *, guild_id: int, change: SettingsChange, now: int
) -> GuildSettings:
    # One statement changing the stored JSON in SQL: concurrent changes, from any process, each
    # change what the one before them wrote.
    return change_settings(conn, guild_id=guild_id, change=change, now=now)


def prune(
    conn: sqlite3.Connection, *, processed_before: int, returned_before: int, daily_before: int
) -> None:
    """Delete dedupe and hug-back markers and per-day totals past their lifetime (index range
    deletes; `daily_before` is a day number)."""
    conn.execute("DELETE FROM processed_actions WHERE created_at < ?", (processed_before,))
    conn.execute("DELETE FROM returned_actions WHERE created_at < ?", (returned_before,))
    conn.execute("DELETE FROM daily_counts WHERE day < ?", (daily_before,))


def ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchall()

"""What `Store.user_data` reads, as SQL text both backends run (`:user`; PostgreSQL's store
numbers it), and the value its rows make."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.store.base import KeptCount, KeptDay, PendingReturn, UserData
from bot.store.blocks import KeptBlock

__all__ = ["BLOCKS", "COUNTS", "DAYS", "OPTED_OUT", "PENDING", "user_data_from_rows"]

COUNTS = """
    SELECT guild_id, action, SUM(given), SUM(received) FROM (
        SELECT guild_id, action, count AS given, 0 AS received FROM action_counts
        WHERE actor_id = :user
        UNION ALL
        SELECT guild_id, action, 0, count FROM received_totals WHERE target_id = :user
    ) AS kept GROUP BY guild_id, action"""
DAYS = """
    SELECT guild_id, action, SUM(given), SUM(received), day FROM (
        SELECT guild_id, day, action, count AS given, 0 AS received FROM daily_counts
        WHERE actor_id = :user
        UNION ALL
        SELECT guild_id, day, action, 0, count FROM daily_counts WHERE target_id = :user
    ) AS kept GROUP BY guild_id, day, action"""
# A version-1 return marker without a target (target_id 0) stands for the action's one target.
PENDING = """
    SELECT guild_id, action_id, actor_id, action, created_at FROM processed_actions AS p
    WHERE target_id = :user AND pair_count > 0 AND NOT EXISTS (
        SELECT 1 FROM returned_actions AS r
        WHERE r.action_id = p.action_id AND r.target_id IN (p.target_id, 0))"""
OPTED_OUT = "SELECT created_at FROM opt_outs WHERE user_id = :user"
BLOCKS = "SELECT action, created_at FROM action_blocks WHERE user_id = :user"


def user_data_from_rows(
    counts: Sequence[Sequence[Any]],
    days: Sequence[Sequence[Any]],
    pending: Sequence[Sequence[Any]],
    opted_out: Sequence[Sequence[Any]],
    blocks: Sequence[Sequence[Any]],
) -> UserData:
    return UserData(
        counts=sorted(
            (KeptCount(int(g), str(a), int(x), int(y)) for g, a, x, y in counts),
            key=lambda k: (k.guild_id, k.action),
        ),
        days=sorted(
            (KeptDay(int(g), str(a), int(x), int(y), int(d)) for g, a, x, y, d in days),
            key=lambda k: (k.guild_id, k.day, k.action),
        ),
        pending_returns=sorted(
            (PendingReturn(int(g), int(i), int(a), str(c), int(t)) for g, i, a, c, t in pending),
            key=lambda p: p.action_id,
        ),
        opted_out_at=int(opted_out[0][0]) if opted_out else None,
        blocks=sorted((KeptBlock(str(a), int(t)) for a, t in blocks), key=lambda b: b.action),
    )

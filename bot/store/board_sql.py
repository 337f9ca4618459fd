"""The leaderboard's one query, as SQL text both backends run (SQLite's `:name` placeholders;
PostgreSQL's store numbers them).

All time reads the running counts (`received_totals`, `action_counts`); a period reads the
per-day totals (`daily_counts`) from its first day. Members who opted out are dropped before
ranking, so they take no rank; ties by count go to the lower member id, so every rank is one
line and a page never repeats or skips one. A first row of rank 0 carries how many lines the
whole board has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.store.boards import BoardEntry, Leaderboard

__all__ = ["leaderboard_from_rows", "leaderboard_sql", "numbered"]

_NOT_OPTED_OUT = "NOT EXISTS (SELECT 1 FROM opt_outs AS o WHERE o.user_id = {column})"

# board: (the grouping columns (first, second), the asker's lines, the opt-out checks)
_BOARDS = {
    "received": (("target_id", "NULL"), "member = :user", ("target_id",)),
    "given": (("actor_id", "NULL"), "member = :user", ("actor_id",)),
    "pairs": (
        ("actor_id", "target_id"),
        "(member = :user OR partner = :user)",
        ("actor_id", "target_id"),
    ),
}


def leaderboard_sql(board: str, *, period: bool, action: bool) -> str:
    """The query for `board` over a period (`:since` day) or all time, for one `:action` or
    all; it also takes `:guild`, `:user`, `:offset` and `:limit`. Rows: (rank, member, partner
    or NULL, count), ordered by rank, the rank-0 row first."""
    (first, second), mine, checked = _BOARDS[board]
    if period:
        source = "daily_counts"
    elif board == "received":
        source = "received_totals"  # O(members), kept exactly equal to action_counts' sums
    else:
        source = "action_counts"
    keys = first if second == "NULL" else f"{first}, {second}"
    where = ["guild_id = :guild"]
    if period:
        where.append("day >= :since")
    if action:
        where.append("action = :action")
    where += [_NOT_OPTED_OUT.format(column=column) for column in checked]
    return f"""
        WITH totals AS (
            SELECT {keys}, SUM(count) AS n FROM {source}
            WHERE {" AND ".join(where)}
            GROUP BY {keys}
        ), ranked AS (
            SELECT {first} AS member, {second} AS partner, n,
                ROW_NUMBER() OVER (ORDER BY n DESC, {keys}) AS rank
            FROM totals
        )
        SELECT 0 AS rank, NULL AS member, NULL AS partner, COUNT(*) AS n FROM totals
        UNION ALL
        SELECT rank, member, partner, n FROM ranked
        WHERE (rank > :offset AND rank <= :offset + :limit)
            OR rank = (SELECT MIN(rank) FROM ranked WHERE {mine})
        ORDER BY rank"""


def numbered(sql: str) -> tuple[str, list[str]]:
    """`sql` with `:name` placeholders as PostgreSQL's `$1, $2…` and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"(?<!:):([a-z]+)", number, sql), names


def leaderboard_from_rows(
    rows: Sequence[Sequence[Any]], offset: int, limit: int, user_id: int
) -> Leaderboard:
    """The value of `leaderboard_sql`'s rows (both backends read them alike)."""
    ranked = int(rows[0][3]) if rows else 0
    entries: list[BoardEntry] = []
    own = None
    for rank, member, partner, n in rows[1:]:
        paired = None if partner is None else int(partner)
        entry = BoardEntry(int(rank), int(member), int(n), paired)
        if offset < entry.rank <= offset + limit:
            entries.append(entry)
        if own is None and user_id in (entry.user_id, entry.partner_id):
            own = entry  # rows come by rank: the first naming the asker is their best
    return Leaderboard(entries=entries, ranked=ranked, own=own)

"""`python -m bench.leaderboard`: how long one `/leaderboard` query takes (Store.leaderboard,
public API, one page and the asker's own line) with 100,000 actions stored in one server, on
SQLite and PostgreSQL, for every board and period, all actions and one.

The actions (members drawn with a skew, as real servers have a few very active members; spread
over the last 40 days; a few opted-out members) are stored as the rows `record_action` would
have left for them (pair counts, received totals, per-day totals), written in bulk so that the
set-up takes seconds rather than minutes.

Usage: python -m bench.leaderboard [--actions 100000] [--members 500] [--repeat 7]
       [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bot.store import PostgresStore, SqliteStore, Store
from bot.store.base import BOARDS, DAY, PERIODS

GUILD = 1
ACTIONS = ("hug", "pat", "cuddle", "kiss", "poke", "wave", "bonk", "slap", "feed", "tickle")


def rows(actions: int, members: int, seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(seed)
    today = int(time.time()) // DAY
    weights = [1 / (rank + 1) ** 0.8 for rank in range(members)]  # a few very active members
    ids = list(range(1000, 1000 + members))
    pairs: Counter[tuple[int, int, str]] = Counter()
    days: Counter[tuple[int, int, int, str]] = Counter()
    for _ in range(actions):
        actor, target = rng.choices(ids, weights, k=2)
        if actor == target:
            target = ids[(ids.index(target) + 1) % members]
        action = rng.choice(ACTIONS)
        pairs[(actor, target, action)] += 1
        days[(today - rng.randrange(40), actor, target, action)] += 1
    received: Counter[tuple[int, str]] = Counter()
    for (_, target, action), n in pairs.items():
        received[(target, action)] += n
    return {
        "action_counts": [(GUILD, a, t, act, n) for (a, t, act), n in pairs.items()],
        "received_totals": [(GUILD, t, act, n) for (t, act), n in received.items()],
        "daily_counts": [(GUILD, d, a, t, act, n) for (d, a, t, act), n in days.items()],
        "opt_outs": [(uid, 0) for uid in ids[5:500:25]],  # among the busiest, too
    }


async def fill_sqlite(store: SqliteStore, data: dict[str, list[tuple[Any, ...]]]) -> None:
    def write(conn: Any) -> None:
        with conn:
            for table, values in data.items():
                marks = ", ".join("?" * len(values[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
            conn.execute("ANALYZE")

    await store.run_on_connection(write)


async def fill_postgres(store: PostgresStore, data: dict[str, list[tuple[Any, ...]]]) -> None:
    async def write(conn: Any) -> None:
        for table, values in data.items():
            await conn.copy_records_to_table(table, records=values)

    await store.run_in_transaction(write)
    await store.run_in_transaction(lambda conn: conn.execute("ANALYZE"))


async def timings(store: Store, asker: int, repeat: int) -> list[tuple[str, float]]:
    """(what, median ms) for every board, period and scope."""
    measured = []
    for board in BOARDS:
        for period in PERIODS:
            for action in (None, "hug"):
                runs = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    await store.leaderboard(
                        guild_id=GUILD, user_id=asker, board=board, period=period, action=action
                    )
                    runs.append(time.perf_counter() - start)
                label = f"{board:>8} {period:>5} {action or 'all':>3}"
                measured.append((label, statistics.median(runs) * 1000))
    return measured


def report(backend: str, data: dict[str, list[tuple[Any, ...]]], measured: list) -> None:
    sizes = ", ".join(f"{len(v):,} {k}" for k, v in data.items())
    worst = max(ms for _, ms in measured)
    print(f"{backend}: {sizes}; slowest board {worst:.1f} ms (median)")
    for label, ms in measured:
        print(f"  {label}: {ms:7.1f} ms")


async def main(args: argparse.Namespace) -> None:
    data = rows(args.actions, args.members)
    asker = 1000 + args.members - 1  # the quietest member: their own line is far down
    print(f"{args.actions:,} actions among {args.members} members in one server")
    with tempfile.TemporaryDirectory() as tmp:
        async with await SqliteStore.open(Path(tmp) / "board.db") as sqlite_store:
            await fill_sqlite(sqlite_store, data)
            report("SQLite", data, await timings(sqlite_store, asker, args.repeat))
    if args.skip_postgres:
        return
    from bench import pg

    if not pg.available():
        print("PostgreSQL: skipped (no binaries)")
        return
    with pg.cluster() as cluster:
        async with await PostgresStore.open(cluster.create_database()) as pg_store:
            await fill_postgres(pg_store, data)
            report("PostgreSQL", data, await timings(pg_store, asker, args.repeat))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.leaderboard")
    parser.add_argument("--actions", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-postgres", action="store_true")
    asyncio.run(main(parser.parse_args()))

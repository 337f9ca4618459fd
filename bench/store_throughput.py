"""`python -m bench.store_throughput`: the store's own record_action rate, one caller after
another and from concurrent tasks (one target each), and of actions with five targets, on a
fresh SQLite file (public API only).

Usage: python -m bench.store_throughput [--actions 2000] [--tasks 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bot.store import Store, open_store


async def record(store: Store, action_ids: range, targets: int) -> None:
    for action_id in action_ids:
        await store.record_action(
            action_id=action_id,
            guild_id=1 + action_id % 7,
            action="hug",
            actor_id=100 + action_id % 13,
            target_ids=[200 + (action_id + k) % 11 for k in range(targets)],
        )


async def rate(path: Path, actions: int, tasks: int, targets: int = 1) -> tuple[float, float]:
    """(actions per second, CPU µs of the whole process per action) for `actions`
    record_action calls of `targets` targets each, split over `tasks` tasks."""
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    store = await open_store(str(path))
    try:
        share = actions // tasks
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(
            *(record(store, range(k * share, (k + 1) * share), targets) for k in range(tasks))
        )
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await store.close()
    return share * tasks / elapsed, cpu / (share * tasks) * 1e6


async def main(actions: int, tasks: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "throughput.db"
        for label, n, targets in (
            ("sequential", 1, 1),
            (f"{tasks} concurrent tasks", tasks, 1),
            ("sequential, 5 targets", 1, 5),
        ):
            runs = [await rate(path, actions, n, targets) for _ in range(rounds)]
            best = max(r for r, _ in runs)
            cpu = min(c for _, c in runs)
            print(
                f"{label:>20}: {best:8.0f} actions/s, {cpu:5.1f} µs CPU per action"
                f" (best of {rounds}, {actions} actions)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.actions, args.tasks, args.rounds))

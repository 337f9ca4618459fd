"""`python -m bench.budget_latency`: what the shared nekos.best budget costs a request.

Measures a take from the PostgreSQL budget (one round trip on loopback), one caller after
another and from concurrent tasks, and a nekos.best request through `NekosClient` against the
loopback FakeNekos with and without the budget. Starts a throwaway PostgreSQL cluster
(tests/pg.py) unless --database-url names one (its `coord_` tables are created if missing).

Usage: python -m bench.budget_latency [--takes 2000] [--tasks 8] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator

from bot.coordination import PostgresCoordinator
from bot.nekos import NekosClient, make_session
from tests.fakes.nekos import FakeNekos
from tests.pg import running_cluster


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1e3:6.3f} ms, p99 {p99 * 1e3:6.3f} ms"


async def timed(calls: int, tasks: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    samples: list[float] = []
    share = calls // tasks

    async def worker(offset: int) -> None:
        for n in range(share):
            start = time.perf_counter()
            await call(offset + n)
            samples.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(k * share) for k in range(tasks)))
    return samples


async def main(url: str, takes: int, tasks: int, requests: int) -> None:
    async with await PostgresCoordinator.open(url) as coordinator:
        budget = coordinator.budget

        async def take(n: int) -> None:
            # A limit no run reaches, a bucket per run: every take is granted.
            await budget.take(f"bench:{tasks}:{takes}", 10**9, 60.0)

        for label, n in (("sequential", 1), (f"{tasks} concurrent tasks", tasks)):
            print(f"{'take, ' + label:>32}: {summary(await timed(takes, n, take))}")

        async def correct(n: int) -> None:
            await budget.correct(f"bench:{tasks}:{takes}", 10**9 - n, time.time() + 60)

        # Queued for the next take (or a batched flush): no round trip of its own.
        print(f"{'correct, sequential':>32}: {summary(await timed(takes, 1, correct))}")

        async with FakeNekos(search_limit=10**6) as nekos, make_session() as session:
            for label, shared in (("without budget", None), ("with budget", budget)):
                client = NekosClient(
                    session,
                    base_url=nekos.base_url,
                    contact="https://example.test/bench",
                    budget=shared,
                )

                async def search(n: int, client: NekosClient = client) -> None:
                    await client.search("Nichijou", "gifs")

                samples = await timed(requests, 1, search)
                await client.limiter.settle()
                print(f"{'nekos.best search, ' + label:>32}: {summary(samples)}")


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with running_cluster() as cluster:
        yield cluster.create_database("bench")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--takes", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with database(args.database_url) as url:
        asyncio.run(main(url, args.takes, args.tasks, args.requests))

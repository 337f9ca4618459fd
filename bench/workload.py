"""The workload: slash commands dispatched through the Discord stand-in, a fixed number in
flight, each timed from INTERACTION_CREATE to the message the user sees."""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.discord import EPHEMERAL, FakeDiscord, InteractionRecord, make_user


@dataclass
class Sample:
    category: str
    latency: float | None  # seconds; None: no visible message within the timeout
    ok: bool  # a public answer (an ephemeral one is an error message)


@dataclass
class PhaseResult:
    name: str
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0  # first dispatch to last answer
    nekos_requests: int = 0  # category requests caused by this phase
    cpu: float = 0.0  # CPU seconds the bot used during the phase (all threads)

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def answered(self) -> list[float]:
        return sorted(s.latency for s in self.samples if s.latency is not None)

    @property
    def failed(self) -> int:
        """No visible message in time: "The application did not respond"."""
        return sum(1 for s in self.samples if s.latency is None)

    @property
    def errors(self) -> int:
        """Answered, but with an (ephemeral) error instead of a GIF."""
        return sum(1 for s in self.samples if s.latency is not None and not s.ok)

    def percentile(self, q: float, *, timeout: float) -> float:
        """Nearest-rank percentile over every command; one without an answer counts as
        `timeout` (so a p99 past 3 s shows)."""
        values = sorted(s.latency if s.latency is not None else timeout for s in self.samples)
        if not values:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(values)))
        return values[rank - 1]

    @property
    def throughput(self) -> float:
        return self.count / self.wall if self.wall > 0 else math.nan

    @property
    def cpu_per_command(self) -> float:
        return self.cpu / self.count if self.count else math.nan

    @property
    def per_1000(self) -> float:
        return 1000 * self.nekos_requests / self.count if self.count else math.nan


class Users:
    """A small cast of members: the invoker and the target differ, both vary."""

    def __init__(self, discord: FakeDiscord, n: int = 24, seed: int = 1) -> None:
        self.discord = discord
        self.rng = random.Random(seed)
        self.people = [make_user(name=f"member{i}") for i in range(n)]

    def pair(self) -> tuple[dict[str, Any], dict[str, Any]]:
        actor, target = self.rng.sample(self.people, 2)
        return actor, target


def visible_at(record: InteractionRecord, woke: float) -> float:
    """When the answer became visible: the callback for a direct answer, the edit of the
    placeholder after a defer, else when the waiter woke (a follow-up)."""
    if record.response_type in (4, 7) and record.first_response_at is not None:
        return record.first_response_at
    edits = [e.at for e in record.edits if e.original]
    if edits:
        return min(edits)
    return woke


async def one(
    discord: FakeDiscord,
    users: Users,
    category: str,
    *,
    timeout: float,
    guild_id: int | None = None,
) -> Sample:
    """One command in `guild_id` (default: the stand-in's first guild), timed."""
    actor, target = users.pair()
    # Built just in time: the interaction id carries its creation time, which bots read.
    if guild_id is None:
        payload = discord.slash(category, {"user": target}, user=actor)
    else:
        payload = discord.slash(category, {"user": target}, user=actor, guild_id=guild_id)
    record = await discord.interact(payload)
    try:
        message = await record.wait_message(timeout=timeout)
    except TimeoutError:
        return Sample(category, None, False)
    at = visible_at(record, time.monotonic())
    ok = not (int(message.get("flags") or 0) & EPHEMERAL) and bool(message.get("embeds"))
    if ok:
        image = (message["embeds"][0].get("image") or {}).get("url")
        ok = bool(image)
    return Sample(category, at - record.dispatched_at, ok)


async def drive(
    discord: FakeDiscord,
    users: Users,
    categories: list[str],
    *,
    concurrency: int,
    timeout: float,
    name: str,
    guilds: list[int] | None = None,
) -> PhaseResult:
    """Dispatch `categories` (one command each, in order) keeping `concurrency` in flight;
    command i goes to `guilds[i % len(guilds)]` (default: every one to the first guild)."""
    result = PhaseResult(name)
    semaphore = asyncio.Semaphore(concurrency)

    async def run(category: str, guild_id: int | None) -> Sample:
        async with semaphore:
            return await one(discord, users, category, timeout=timeout, guild_id=guild_id)

    started = time.monotonic()
    tasks = [
        asyncio.create_task(run(c, guilds[i % len(guilds)] if guilds else None))
        for i, c in enumerate(categories)
    ]
    result.samples = list(await asyncio.gather(*tasks))
    result.wall = time.monotonic() - started
    return result


def mixed(categories: tuple[str, ...], n: int, seed: int = 7) -> list[str]:
    """`n` commands spread evenly over `categories`, shuffled (the same order every run)."""
    out = [categories[i % len(categories)] for i in range(n)]
    random.Random(seed).shuffle(out)
    return out


@dataclass
class PhaseSummary:
    """One workload over repeated runs: the median of each figure across runs (traffic and
    failures are summed)."""

    name: str
    count: int  # commands per run
    runs: int
    p50: float
    p99: float
    throughput: float
    cpu_per_command: float
    nekos_requests: int
    commands: int  # over all runs
    failed: int
    errors: int
    p50_runs: list[float] = field(default_factory=list)
    cpu_runs: list[float] = field(default_factory=list)  # CPU seconds per command, per run

    @property
    def per_1000(self) -> float:
        return 1000 * self.nekos_requests / self.commands if self.commands else math.nan


def summarize(results: list[PhaseResult], *, timeout: float) -> PhaseSummary:
    med = statistics.median
    p50s = [r.percentile(50, timeout=timeout) for r in results]
    return PhaseSummary(
        name=results[0].name,
        count=results[0].count,
        runs=len(results),
        p50=med(p50s),
        p99=med(r.percentile(99, timeout=timeout) for r in results),
        throughput=med(r.throughput for r in results),
        cpu_per_command=med(r.cpu_per_command for r in results),
        nekos_requests=sum(r.nekos_requests for r in results),
        commands=sum(r.count for r in results),
        failed=sum(r.failed for r in results),
        errors=sum(r.errors for r in results),
        p50_runs=p50s,
        cpu_runs=[r.cpu_per_command for r in results],
    )

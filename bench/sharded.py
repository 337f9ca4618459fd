"""`python -m bench.sharded`: nekocord as a group of processes, one shard each, sharing one
PostgreSQL database, against one Discord stand-in with that many shards and one nekos.best
stand-in; and, as the reference, the same workload on one process running every shard.

Each process is `python -m bot` as users run it (`SHARD_COUNT`, `SHARD_IDS`, the same
`DATABASE_URL`, its own `DATA_DIR` as on separate machines). Once every shard is READY (the
IDENTIFYs are Discord's 5 s apart, so this takes a while), a warm-up of one command per
category in a guild of each shard, then a mixed workload spread over the guilds of every shard
with a fixed number in flight. Reported for the group: commands/s, p50, p99, failures,
nekos.best category requests per 1,000 commands (target ≤ 55: the processes must not each
fetch their own batches), CPU and memory summed over the processes, and the IDENTIFY pacing the
stand-in saw.

Usage: python -m bench.sharded [--shards 3] [--commands 1200] [--concurrency 8] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import pg
from bench.common import CATEGORIES
from bench.procs import TOKEN, BotProcess, kill_all
from bench.run import Settings, bot_env, category_requests
from bench.variants import bot_loop, parse_spec
from bench.workload import PhaseResult, PhaseSummary, Users, drive, mixed, summarize
from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos

TARGET_PER_1000 = 55
READY_LINE = "Ready as "  # once every shard of the process is ready


@dataclass
class ShardedSettings:
    shards: int = 3
    guilds: int = 60  # spread over the shards by (guild_id >> 22) % shards
    latency: float = 0.100  # nekos.best stand-in, seconds
    commands: int = 1200
    concurrency: int = 8  # in flight for the whole group (the latency run's default)
    repeat: int = 1  # runs per layout, interleaved; medians reported
    timeout: float = 10.0  # a command without a visible message by then has failed
    ready_timeout: float = 120.0  # every shard READY: IDENTIFYs are 5 s apart
    loop: str = "asyncio"  # what `python -m bot` picks (only reported through the bench's env)


@dataclass
class GroupRun:
    layout: str  # "3 processes", "1 process"
    phase: PhaseResult
    ready: float  # first spawn → every process logged its ready line
    identify_gaps: list[float]  # between consecutive IDENTIFYs, seconds
    peak_rss_kib: int  # VmHWM summed over the processes


@dataclass
class GroupSummary:
    layout: str
    processes: int
    phase: PhaseSummary
    ready: float  # median
    min_identify_gap: float | None  # the smallest over every run
    peak_rss_kib: int  # the highest of the runs
    runs: list[GroupRun] = field(default_factory=list)


def layouts(shards: int) -> dict[str, list[str | None]]:
    """SHARD_IDS per process: one shard each, then one process with every shard (unset)."""
    return {
        f"{shards} processes × 1 shard": [str(i) for i in range(shards)],
        f"1 process × {shards} shards": [None],
    }


def spread(discord: FakeDiscord, shards: int) -> list[int]:
    """Every guild, shards taking turns, so consecutive commands go to different shards."""
    per_shard = [discord.guilds_of(s) for s in range(shards)]
    turns = itertools.zip_longest(*per_shard)
    return [g for turn in turns for g in turn if g is not None]


async def group_run(
    layout: str,
    shard_ids: list[str | None],
    settings: ShardedSettings,
    database_url: str,
    workdir: Path,
) -> GroupRun:
    """One group of processes on fresh stand-ins and `database_url`: ready, warm-up, workload."""
    loop = settings.loop
    env_settings = Settings(latency=settings.latency, loop=loop, bot_loop=loop)
    spec = parse_spec("nekocord")
    async with (
        FakeNekos(latency=settings.latency) as nekos,
        FakeDiscord(token=TOKEN, guild_count=settings.guilds, shard_count=settings.shards) as fake,
    ):
        processes = []
        for index, ids in enumerate(shard_ids):
            data = workdir / f"process-{index}"
            env = bot_env(spec, env_settings, fake, nekos, data, sync=True)
            env.update(DATABASE_URL=database_url, SHARD_COUNT=str(settings.shards))
            if ids is not None:
                env["SHARD_IDS"] = ids
            log = workdir / f"process-{index}.log"
            processes.append(BotProcess("nekocord", env, cwd=data, log_path=log))
        try:
            started = time.monotonic()
            for process in processes:
                await process.start()
            for process in processes:
                await process.wait_for_output(READY_LINE, timeout=settings.ready_timeout)
            ready = time.monotonic() - started
            await fake.wait_connected(timeout=settings.ready_timeout)
            await asyncio.sleep(1.0)  # settle, as the latency runs do
            users = Users(fake)
            # Every process fills its pools, as it would after a while in production.
            for shard in range(settings.shards):
                await drive(
                    fake,
                    users,
                    list(CATEGORIES),
                    concurrency=1,
                    timeout=settings.timeout,
                    name="warm-up",
                    guilds=fake.guilds_of(shard)[:1],
                )
            await asyncio.sleep(settings.latency + 0.3)
            before = category_requests(nekos)
            cpu_before = [p.cpu() for p in processes]
            phase = await drive(
                fake,
                users,
                mixed(CATEGORIES, settings.commands),
                concurrency=settings.concurrency,
                timeout=settings.timeout,
                name=f"mixed: {len(CATEGORIES)} categories, every shard's guilds",
                guilds=spread(fake, settings.shards),
            )
            phase.cpu = sum(p.cpu() - c for p, c in zip(processes, cpu_before, strict=True))
            # Refills the last commands started still count: wait for them to land.
            await asyncio.sleep(settings.latency + 0.3)
            phase.nekos_requests = category_requests(nekos) - before
            for process in processes:
                process.check_alive()
            peak = sum(p.memory()["VmHWM"] for p in processes)
            times = sorted(at for _, at in fake.identify_times)
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            await asyncio.gather(*(p.terminate() for p in processes))
            return GroupRun(layout, phase, ready, gaps, peak)
        finally:
            for process in processes:
                process.kill()


async def sharded_runs(
    settings: ShardedSettings, cluster: pg.PostgresCluster, workdir: Path
) -> list[GroupSummary]:
    """Every layout `settings.repeat` times, interleaved, each on a fresh database."""
    plans = layouts(settings.shards)
    runs: dict[str, list[GroupRun]] = {name: [] for name in plans}
    for rep in range(settings.repeat):
        for name, shard_ids in plans.items():
            print(
                f"[bench] sharded, run {rep + 1}/{settings.repeat}: {name}…",
                file=sys.stderr,
                flush=True,
            )
            own = workdir / f"sharded-{len(shard_ids)}-{rep}"
            database = cluster.create_database("bench_sharded")
            runs[name].append(await group_run(name, shard_ids, settings, database, own))
    out = []
    for name, mine in runs.items():
        gaps = [gap for run in mine for gap in run.identify_gaps]
        out.append(
            GroupSummary(
                layout=name,
                processes=len(plans[name]),
                phase=summarize([r.phase for r in mine], timeout=settings.timeout),
                ready=statistics.median(r.ready for r in mine),
                min_identify_gap=min(gaps) if gaps else None,
                peak_rss_kib=max(r.peak_rss_kib for r in mine),
                runs=mine,
            )
        )
    return out


def over_target(summaries: list[GroupSummary]) -> list[GroupSummary]:
    return [s for s in summaries if s.phase.per_1000 > TARGET_PER_1000]


def table(summaries: list[GroupSummary], settings: ShardedSettings) -> str:
    """A Markdown section: one row per layout, then the target check."""
    runs = summaries[0].phase.runs if summaries else 0
    out = [
        "### Sharded: processes sharing one PostgreSQL",
        "",
        f"`SHARD_COUNT={settings.shards}`, {settings.guilds} guilds spread over the shards, one "
        "PostgreSQL database (same machine, loopback) shared by the processes, one Discord "
        "stand-in, one nekos.best stand-in "
        f"{settings.latency * 1000:.0f} ms away. After every shard is READY and a warm-up of one "
        f"command per category per shard: {settings.commands} commands over "
        f"{len(CATEGORIES)} categories, guilds taking turns across the shards, "
        f"{settings.concurrency} in flight for the whole group. Medians of {runs} run"
        f"{'s' if runs != 1 else ''} per layout (traffic and failures: totals); CPU and "
        "memory summed over the processes. `python -m bench.sharded` runs it alone.",
        "",
        "| layout | commands/s | p50 ms | p99 ms | failed / errors | nekos.best req / 1,000 "
        "| CPU ms / command | peak RSS MiB (sum) | start → every process ready "
        "| smallest IDENTIFY gap |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        p = s.phase
        gap = "–" if s.min_identify_gap is None else f"{s.min_identify_gap:.2f} s"
        out.append(
            f"| {s.layout} | {p.throughput:.0f} | {p.p50 * 1000:.1f} | {p.p99 * 1000:.1f} "
            f"| {p.failed} / {p.errors} | {p.per_1000:.1f} | {p.cpu_per_command * 1000:.2f} "
            f"| {s.peak_rss_kib / 1024:.1f} | {s.ready:.1f} s | {gap} |"
        )
    out.append("")
    for s in summaries:
        ok = s.phase.per_1000 <= TARGET_PER_1000
        out.append(
            f"- {'✅' if ok else '❌'} {s.layout}: {s.phase.per_1000:.1f} nekos.best requests per "
            f"1,000 commands for the group (target ≤ {TARGET_PER_1000}); "
            f"{s.phase.failed + s.phase.errors} commands unanswered or answered with an error."
        )
    out.append("")
    return "\n".join(out)


def warn(summaries: list[GroupSummary]) -> None:
    """A clear line on stderr for every layout over the nekos.best target."""
    for s in over_target(summaries):
        print(
            f"[bench] WARNING: {s.layout}: {s.phase.per_1000:.1f} nekos.best requests per 1,000 "
            f"commands, over the target of {TARGET_PER_1000}",
            file=sys.stderr,
            flush=True,
        )


def parse(argv: list[str]) -> ShardedSettings:
    p = argparse.ArgumentParser(prog="python -m bench.sharded", description=__doc__.split("\n")[0])
    p.add_argument("--shards", type=int, default=3, help="shards, one process each (3)")
    p.add_argument("--guilds", type=int, default=60, help="guilds over every shard (60)")
    p.add_argument("--latency", type=float, default=100, help="nekos.best latency, ms (100)")
    p.add_argument("--commands", type=int, default=1200, help="mixed workload size (1200)")
    p.add_argument("--concurrency", type=int, default=8, help="in flight, whole group (8)")
    p.add_argument("--repeat", type=int, default=1, help="runs per layout, interleaved (1)")
    args = p.parse_args(argv)
    if args.shards < 2:
        p.error("--shards: at least 2")
    return ShardedSettings(
        shards=args.shards,
        guilds=args.guilds,
        latency=args.latency / 1000,
        commands=args.commands,
        concurrency=args.concurrency,
        repeat=max(1, args.repeat),
        loop=bot_loop(),
    )


def main(argv: list[str] | None = None) -> int:
    settings = parse(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="nekocord-bench-sharded-"))
    keep = False
    try:
        with pg.cluster() as cluster:
            try:
                summaries = asyncio.run(sharded_runs(settings, cluster, workdir))
            finally:
                kill_all()  # before the cluster goes: no bot left writing to it
    except BaseException:
        keep = True
        print(f"[bench] failed; logs in {workdir}", file=sys.stderr)
        raise
    finally:
        if not keep:
            import shutil

            with contextlib.suppress(OSError):
                shutil.rmtree(workdir)
    print(table(summaries, settings))
    warn(summaries)
    print(f"[bench] {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench`: run the floor, a naive bot and nekocord over loopback and report.

Run from the repository root (the stand-ins live in tests/fakes). A full run takes a few
minutes and rewrites the results section of BENCHMARKS.md; `--quick` is a smaller run that
only prints (add `--write` to record it anyway). nekocord runs on SQLite and, as
`nekocord+pg`, on PostgreSQL (a throwaway cluster on loopback, when its binaries are here),
then as a group of sharded processes sharing that PostgreSQL (bench.sharded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from bench import layers as bench_layers
from bench import memory, overload, pg, report, sharded
from bench.procs import ROOT, kill_all
from bench.run import (
    BOTS,
    LatencyRun,
    ScaleRun,
    Settings,
    latency_run,
    scale_run,
    summarize_runs,
)
from bench.variants import BEFORE_REV_ENV, LOOPS, TAGS, bot_loop, parse_spec

# The bots of a default run: nekocord on its default store (SQLite) and on PostgreSQL.
DEFAULT_BOTS = (*BOTS, "nekocord+pg")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="40 + 200 + 100 commands, one run, 500 guilds"
    )
    p.add_argument("--latency", type=float, default=100, help="nekos.best latency, ms (100)")
    p.add_argument("--commands", type=int, help="mixed workload size (600)")
    p.add_argument("--burst", type=int, help="burst size on one category (250)")
    p.add_argument("--single", type=int, help="commands sent one at a time first (100)")
    p.add_argument("--concurrency", type=int, default=8, help="commands in flight (8)")
    p.add_argument(
        "--repeat", type=int, help="latency runs per bot, interleaved; medians reported (3)"
    )
    p.add_argument("--guilds", type=int, help="guilds for the memory run (2500)")
    p.add_argument(
        "--bots",
        help="comma-separated subset of floor,naive,nekocord; a bot may carry variant tags, "
        f"e.g. nekocord+uvloop, to compare in the same interleaved run ({', '.join(TAGS)}; "
        f"pg: nekocord on PostgreSQL; main: nekocord's code as on git revision "
        f"$BENCH_BEFORE_REV, default main, for before/after). Default: {','.join(DEFAULT_BOTS)} "
        "(nekocord+pg only when PostgreSQL's binaries are found)",
    )
    p.add_argument(
        "--loop",
        choices=("bot", *LOOPS),
        default="bot",
        help="the event loop of every untagged bot: bot (the one python -m bot picks) or forced",
    )
    p.add_argument("--skip-latency", action="store_true", help="only memory and start-up")
    p.add_argument(
        "--skip-memory",
        action="store_true",
        help="no memory-per-server run (bench.memory: 4 shards, 1 and --memory-guilds realistic "
        "servers, for the floor and nekocord with the full and the lean guild cache; ~3 min)",
    )
    p.add_argument(
        "--memory-guilds", type=int, help=f"servers for bench.memory ({memory.GUILDS:,})"
    )
    p.add_argument("--skip-scale", action="store_true", help="only latency and throughput")
    p.add_argument(
        "--skip-overload",
        action="store_true",
        help="no sustained-overload run (one category at 2x its budget, about 6 s)",
    )
    p.add_argument(
        "--skip-sharded",
        action="store_true",
        help="no sharded run (bench.sharded: 3 processes on one PostgreSQL, then 1 process with "
        "the 3 shards; about 30 s per repeat)",
    )
    p.add_argument(
        "--sharded-repeat",
        type=int,
        help="sharded runs per layout, interleaved (1; IDENTIFYs alone take 10 s a run)",
    )
    p.add_argument("--write", action="store_true", help="record even a --quick run")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample each bot with py-spy during the measured phases (implies --keep)",
    )
    p.add_argument("--keep", action="store_true", help="keep the bots' logs and data")
    return p.parse_args(argv)


def default_bots() -> str:
    if pg.available():
        return ",".join(DEFAULT_BOTS)
    print("[bench] PostgreSQL binaries not found: no nekocord+pg row", file=sys.stderr)
    return ",".join(BOTS)


def settings_from(args: argparse.Namespace) -> Settings:
    listed = args.bots if args.bots is not None else default_bots()
    bots = tuple(b.strip() for b in listed.split(",") if b.strip())
    try:
        unknown = {b for b in bots if parse_spec(b).kind not in BOTS}
    except ValueError as exc:
        sys.exit(str(exc))
    if unknown:
        sys.exit(f"unknown bots: {', '.join(sorted(unknown))}")
    own_loop = bot_loop()
    quick = args.quick
    return Settings(
        latency=args.latency / 1000,
        commands=args.commands if args.commands is not None else (200 if quick else 600),
        burst=args.burst if args.burst is not None else (100 if quick else 250),
        single=args.single if args.single is not None else (40 if quick else 100),
        concurrency=args.concurrency,
        guilds=args.guilds if args.guilds is not None else (500 if quick else 2500),
        bots=bots,
        loop=own_loop if args.loop == "bot" else args.loop,
        bot_loop=own_loop,
        repeat=max(1, args.repeat if args.repeat is not None else (1 if quick else 3)),
        profile=args.profile,
    )


def sharded_settings(args: argparse.Namespace, settings: Settings) -> sharded.ShardedSettings:
    quick = args.quick
    return sharded.ShardedSettings(
        latency=settings.latency,
        commands=400 if quick else 1200,
        concurrency=settings.concurrency,
        repeat=max(1, args.sharded_repeat or 1),
        loop=settings.bot_loop,
    )


def wants_postgres(args: argparse.Namespace, settings: Settings) -> bool:
    pg_bots = any(parse_spec(b).store == "pg" for b in settings.bots)
    return (pg_bots and not args.skip_latency) or not args.skip_sharded


async def main_async(
    args: argparse.Namespace, settings: Settings, workdir: Path
) -> tuple[str, str | None]:
    """The results section, and bench.memory's (None when skipped)."""
    cluster = settings.postgres
    started = time.monotonic()
    load_before = report.load_average()
    latency: list[LatencyRun] = []
    scale: list[ScaleRun] = []
    if not args.skip_latency:
        for rep in range(settings.repeat):
            for bot in settings.bots:
                print(
                    f"[bench] latency, run {rep + 1}/{settings.repeat}: {bot}…",
                    file=sys.stderr,
                    flush=True,
                )
                latency.append(await latency_run(bot, settings, workdir, rep))
    if not args.skip_scale:
        for bot in settings.bots:
            print(
                f"[bench] memory and start-up at {settings.guilds} guilds: {bot}…",
                file=sys.stderr,
                flush=True,
            )
            scale.append(await scale_run(bot, settings, workdir))
    memory_rows: list[memory.MemoryRow] = []
    if not args.skip_memory:
        quick_guilds = 1000 if args.quick else memory.GUILDS
        guilds = args.memory_guilds if args.memory_guilds is not None else quick_guilds
        memory_rows = await memory.memory_runs(workdir, guilds=guilds)
    overloaded = None
    if not args.skip_overload:
        print("[bench] sustained overload of one category…", file=sys.stderr, flush=True)
        overloaded = await overload.overload_run()
    groups: list[sharded.GroupSummary] = []
    group_settings = sharded_settings(args, settings)
    if not args.skip_sharded:
        assert cluster is not None
        groups = await sharded.sharded_runs(group_settings, cluster, workdir)
        sharded.warn(groups)
    command = "python -m bench" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    if any(parse_spec(b).source for b in settings.bots) and BEFORE_REV_ENV in os.environ:
        command = f"{BEFORE_REV_ENV}={shlex.quote(os.environ[BEFORE_REV_ENV])} {command}"
    return report.render(
        summarize_runs(latency, settings) if latency else [],
        scale,
        settings,
        command=command,
        elapsed=time.monotonic() - started,
        loads=(load_before, report.load_average()),
        overload=overloaded,
        sharded=sharded.table(groups, group_settings) if groups else None,
        layers=bench_layers.analyse(workdir) if settings.profile and latency else None,
    ), (memory.table(memory_rows) if memory_rows else None)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.profile:
        args.keep = True
    tmp = tempfile.mkdtemp(prefix="nekocord-bench-")
    workdir = Path(tmp)
    try:
        with contextlib.ExitStack() as stack:
            # One cluster for the whole run (a fresh database per bot run), if anything uses it.
            settings = settings_from(args)
            if not args.skip_sharded and not pg.available():
                print("[bench] PostgreSQL binaries not found: no sharded run", file=sys.stderr)
                args.skip_sharded = True
            if wants_postgres(args, settings):
                settings.postgres = stack.enter_context(pg.cluster())
            try:
                section, memory_section = asyncio.run(main_async(args, settings, workdir))
            finally:
                kill_all()  # before the cluster goes: no bot left writing to it
    except BaseException:
        print(f"[bench] failed; logs in {workdir}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    print(section)
    if memory_section is not None:
        print(memory_section)
    if args.write or (not args.quick and not args.no_write):
        report.write(args.output, section)
        if memory_section is not None:
            memory.write(args.output, memory_section)
        print(f"[bench] results written to {args.output}", file=sys.stderr)
    elif args.keep:
        print(f"[bench] logs in {workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

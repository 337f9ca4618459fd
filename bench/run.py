"""The benchmark's scenarios: each bot against fresh stand-ins, as its own process."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import CATEGORIES, READY_LINE
from bench.pg import PostgresCluster
from bench.procs import TOKEN, BotProcess
from bench.variants import (
    JSON_ENV,
    LOOP_ENV,
    SOURCE_ENV,
    BotSpec,
    exported_source,
    loop_in_process,
    parse_spec,
)
from bench.workload import PhaseResult, PhaseSummary, Users, drive, mixed, one, summarize
from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos

BOTS = ("floor", "naive", "nekocord")
READY_LINES = {"floor": READY_LINE, "naive": READY_LINE, "nekocord": "Ready as "}
BURST_CATEGORY = "hug"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Settings:
    latency: float = 0.100  # nekos.best stand-in, seconds
    commands: int = 600
    burst: int = 250
    single: int = 100  # one at a time: the latency a user sees when the bot is not busy
    concurrency: int = 8
    guilds: int = 2500
    timeout: float = 10.0  # a command without a visible message by then has failed
    settle: float = 1.0  # after READY / a phase, before measuring
    bots: tuple[str, ...] = BOTS  # bot specs: a kind, maybe with variant tags (bench.variants)
    loop: str = "asyncio"  # the event loop every untagged bot runs on (nekocord's)
    bot_loop: str = "asyncio"  # the one `python -m bot` picks by itself
    repeat: int = 1  # latency runs per bot, interleaved; medians are reported
    profile: bool = False  # py-spy the bots during the measured phases
    postgres: PostgresCluster | None = None  # for bots tagged pg: a fresh database per run

    def database_url(self, spec: BotSpec) -> str | None:
        """A new empty database for a bot tagged pg (None: the bot keeps SQLite)."""
        if spec.store != "pg":
            return None
        if self.postgres is None:
            raise RuntimeError(f"{spec.name} needs the run's PostgreSQL cluster")
        return self.postgres.create_database("bench")


@dataclass
class LatencyRun:
    bot: str
    warmup: PhaseResult
    phases: list[PhaseResult]
    peak_rss_kib: int
    log: str = ""
    loop: str = "?"  # the event loop seen in the process


@dataclass
class BotSummary:
    """A bot's latency runs, summarized (see workload.summarize)."""

    bot: str
    phases: list[PhaseSummary]
    peak_rss_kib: int  # the highest of the runs
    runs: int
    loops: tuple[str, ...] = ()  # the event loops seen, one per distinct value

    @property
    def per_1000(self) -> float:
        commands = sum(p.commands for p in self.phases)
        requests = sum(p.nekos_requests for p in self.phases)
        return 1000 * requests / commands if commands else math.nan


def summarize_runs(runs: list[LatencyRun], settings: Settings) -> list[BotSummary]:
    out = []
    for bot in dict.fromkeys(r.bot for r in runs):
        mine = [r for r in runs if r.bot == bot]
        phases = [
            summarize([r.phases[i] for r in mine], timeout=settings.timeout)
            for i in range(len(mine[0].phases))
        ]
        loops = tuple(dict.fromkeys(r.loop for r in mine))
        out.append(BotSummary(bot, phases, max(r.peak_rss_kib for r in mine), len(mine), loops))
    return out


@dataclass
class ScaleRun:
    bot: str
    guilds: int
    cold_ready: float  # spawn → gateway READY sent, first start (fresh data)
    cold_puts: int  # command bulk overwrites during the first start
    warm_ready: float  # spawn → READY on the restart
    warm_on_ready: float  # spawn → on_ready (after guild_ready_timeout)
    warm_first_answer: float | None  # spawn → a /hug sent at READY is answered
    warm_puts: int  # bulk overwrites during the restart (should be 0)
    rss_kib: int  # VmRSS after every GUILD_CREATE was processed, settled
    peak_rss_kib: int  # VmHWM at that point
    guilds_seen: str = ""
    notes: list[str] = field(default_factory=list)


def bot_env(
    spec: BotSpec,
    settings: Settings,
    discord: FakeDiscord,
    nekos: FakeNekos,
    data_dir: Path,
    *,
    sync: bool,
    database_url: str | None = None,
) -> dict[str, str]:
    """The same variables for every bot, as a user of nekocord sets them (and the loop)."""
    env = {
        "DISCORD_TOKEN": discord.token,
        "DISCORD_API_BASE": discord.rest_url,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "NEKOS_API_BASE": nekos.base_url,
        "NEKOS_CONTACT": "https://example.invalid/nekocord-bench",
        # One simulated member sends every command: per-member limits would refuse most.
        "COOLDOWN": "0",
        "SEARCH_COOLDOWN": "0",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",
        LOOP_ENV: spec.loop or settings.loop,
    }
    if spec.json:
        env[JSON_ENV] = spec.json
    if spec.source is not None:
        env[SOURCE_ENV] = str(exported_source())
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if spec.kind != "nekocord":
        env["BENCH_SYNC"] = "1" if sync else "0"
    return env


def bot_process(
    spec: BotSpec,
    settings: Settings,
    stand_ins: tuple[FakeDiscord, FakeNekos],
    data_dir: Path,
    log_path: Path,
    *,
    sync: bool = True,
    database_url: str | None = None,
) -> BotProcess:
    """A bot against the stand-ins. nekocord runs as users run it, unless a variant (or a
    forced loop) needs bench.launch."""
    env = bot_env(spec, settings, *stand_ins, data_dir, sync=sync, database_url=database_url)
    own_loop = spec.kind != "nekocord" or env[LOOP_ENV] == settings.bot_loop
    return BotProcess(
        spec.kind, env, cwd=data_dir, log_path=log_path, launch=bool(spec.tags) or not own_loop
    )


def category_requests(nekos: FakeNekos) -> int:
    """Requests to /<category> (not /endpoints, /search or files)."""
    return sum(nekos.counts[f"/{name}"] for name in nekos.categories)


async def latency_run(name: str, settings: Settings, workdir: Path, rep: int = 0) -> LatencyRun:
    """Warm-up (one command per category, one at a time), then the mixed workload, then the
    burst on one category; nekos.best requests are counted from after the warm-up."""
    spec = parse_spec(name)
    async with (
        FakeNekos(latency=settings.latency) as nekos,
        FakeDiscord(token=TOKEN, guild_count=1) as discord,
    ):
        data = workdir / f"{name}-latency-{rep}"
        proc = bot_process(
            spec,
            settings,
            (discord, nekos),
            data,
            workdir / f"{name}-latency-{rep}.log",
            database_url=settings.database_url(spec),
        )
        try:
            await proc.start()
            await proc.wait_for_output(READY_LINES[spec.kind], timeout=60)
            loop = loop_in_process(proc.pid)
            await asyncio.sleep(settings.settle)
            users = Users(discord)
            warmup = await drive(
                discord,
                users,
                list(CATEGORIES),
                concurrency=1,
                timeout=settings.timeout,
                name="warm-up",
            )
            await asyncio.sleep(settings.latency + 0.3)
            profiler = (
                await start_profiler(proc, workdir / f"{name}-profile-{rep}.txt")
                if settings.profile
                else None
            )
            phases = []
            plan = [
                (
                    f"one at a time: {len(CATEGORIES)} categories",
                    mixed(CATEGORIES, settings.single, seed=11),
                    1,
                ),
                (
                    f"mixed: {len(CATEGORIES)} categories",
                    mixed(CATEGORIES, settings.commands),
                    settings.concurrency,
                ),
                (
                    f"burst: /{BURST_CATEGORY}",
                    [BURST_CATEGORY] * settings.burst,
                    settings.concurrency,
                ),
            ]
            for phase_name, commands, concurrency in plan:
                if not commands:
                    continue
                before = category_requests(nekos)
                cpu_before = proc.cpu()
                phase = await drive(
                    discord,
                    users,
                    commands,
                    concurrency=concurrency,
                    timeout=settings.timeout,
                    name=phase_name,
                )
                phase.cpu = proc.cpu() - cpu_before
                # Refills the last commands started still count: wait for them to land.
                await asyncio.sleep(settings.latency + 0.3)
                phase.nekos_requests = category_requests(nekos) - before
                phases.append(phase)
            if profiler is not None:
                await stop_profiler(profiler)
                # What bench.layers turns sample shares into µs per command with.
                (workdir / f"{name}-profile-{rep}.json").write_text(
                    json.dumps(
                        {
                            "commands": sum(p.count for p in phases),
                            "cpu_seconds": sum(p.cpu for p in phases),
                        }
                    )
                )
            proc.check_alive()
            peak = proc.memory()["VmHWM"]
            await proc.terminate()
            return LatencyRun(name, warmup, phases, peak, proc.output, loop)
        finally:
            proc.kill()


async def scale_run(name: str, settings: Settings, workdir: Path) -> ScaleRun:
    """First start with a fresh data directory (commands registered), stop, warm restart:
    start-up times, command registrations, and memory once every guild has arrived."""
    spec = parse_spec(name)
    async with (
        FakeNekos(latency=settings.latency) as nekos,
        FakeDiscord(token=TOKEN, guild_count=settings.guilds) as discord,
    ):
        data = workdir / f"{name}-scale"
        ready_line = READY_LINES[spec.kind]

        async def ready_after(proc: BotProcess) -> float:
            await discord.wait_until(lambda: discord.sessions >= 1 or proc_exited(proc), 60)
            proc.check_alive()
            return time.monotonic() - proc.spawned_at

        stand_ins = (discord, nekos)
        database = settings.database_url(spec)  # the restart finds what the first start stored
        first = bot_process(
            spec,
            settings,
            stand_ins,
            data,
            workdir / f"{name}-scale-cold.log",
            database_url=database,
        )
        second = bot_process(
            spec,
            settings,
            stand_ins,
            data,
            workdir / f"{name}-scale-warm.log",
            sync=False,
            database_url=database,
        )
        try:
            await first.start()
            cold_ready = await ready_after(first)
            await first.wait_for_output(ready_line, timeout=60)
            cold_puts = discord.command_puts
            await first.terminate()
            await discord.wait_until(lambda: discord.sessions == 0, 15)

            puts_before = discord.command_puts
            await second.start()
            warm_ready = await ready_after(second)
            users = Users(discord)
            probe = asyncio.create_task(
                one(discord, users, BURST_CATEGORY, timeout=settings.timeout)
            )
            on_ready_at = await second.wait_for_output(ready_line, timeout=60)
            sample = await probe
            first_answer = None
            if sample.latency is not None:
                # The probe was sent at READY: READY time + its latency, from spawn.
                first_answer = warm_ready + sample.latency
            else:
                probe_record = discord.interactions[-1].describe()
                print(f"[bench] {name}: the probe got no answer: {probe_record}", file=sys.stderr)
            await asyncio.sleep(settings.settle)
            second.check_alive()
            memory = second.memory()
            line = next((ln for ln in second.output.splitlines() if ready_line in ln), "")
            line = ANSI.sub("", line)
            line = line[line.find(ready_line) :]
            run = ScaleRun(
                name,
                settings.guilds,
                cold_ready=cold_ready,
                cold_puts=cold_puts,
                warm_ready=warm_ready,
                warm_on_ready=on_ready_at - second.spawned_at,
                warm_first_answer=first_answer,
                warm_puts=discord.command_puts - puts_before,
                rss_kib=memory["VmRSS"],
                peak_rss_kib=memory["VmHWM"],
                guilds_seen=line.strip(),
            )
            await second.terminate()
            return run
        finally:
            first.kill()
            second.kill()


def proc_exited(proc: BotProcess) -> bool:
    return proc.process is not None and proc.process.returncode is not None


async def start_profiler(proc: BotProcess, out: Path) -> asyncio.subprocess.Process:
    """py-spy (pip install py-spy) sampling the bot: collapsed stacks, <bot>-profile-<rep>.txt."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spy = await asyncio.create_subprocess_exec(
        exe,
        "record",
        "--pid",
        str(proc.pid),
        "--format",
        "raw",
        "--rate",
        "500",
        "--nonblocking",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # attached
    return spy


async def stop_profiler(spy: asyncio.subprocess.Process) -> None:
    if spy.returncode is None:
        spy.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(spy.wait(), 10)
        except TimeoutError:
            spy.kill()
            await spy.wait()

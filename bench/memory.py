"""`python -m bench.memory`: RSS per server and start-up at scale, 4 shards in one process.

Each bot runs as a real process against the Discord stand-in sending realistic servers
(`tests.fakes.discord.guilds.GuildShape`: 40 channels with 3 overwrites each, 25 roles, 15
emojis, 3 stickers, 5 active threads), once with 1 server and once with N (10,000):

- `floor`: the leanest discord.py bot (bench.memory_child), no intents;
- `nekocord (full cache)`: `python -m bot` with discord.py's full guild cache, as before
  bot.guild_cache (its `LEAN` off);
- `nekocord`: `python -m bot` as users run it.

RSS (VmRSS from /proc) is read once every shard is READY and every server has arrived (the
bot's ready line, which discord.py prints after the last GUILD_CREATE), after a short settle;
growth per server = (RSS at N − RSS at 1) / (N − 1). Start-up = process start → that line.
`python -m bench` runs it too (`--skip-memory` to leave it out) and writes it to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import report
from bench.common import READY_LINE
from bench.memory_child import CHILD_ENV
from bench.procs import MODULES, ROOT, TOKEN, BotProcess, kill_all
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.guilds import GuildShape
from tests.fakes.nekos import FakeNekos

#: Its own block in BENCHMARKS.md (python -m bench writes the other results between its own).
BEGIN = "<!-- bench:memory:begin (written by python -m bench.memory and python -m bench) -->"
END = "<!-- bench:memory:end -->"
SHARDS = 4
GUILDS = 10_000
#: The issue's budget: what N realistic servers may add to nekocord's RSS.
BUDGET_MB_AT_10K = 25.0
BUDGET_KIB_PER_SERVER = BUDGET_MB_AT_10K * 1e6 / 1024 / GUILDS  # ≈ 2.44 KiB

FLOOR = "floor"
FULL = "nekocord (full cache)"
LEAN = "nekocord"
BOTS = (FLOOR, FULL, LEAN)
# How each is started (bench.procs.BotProcess kinds).
MODULES.setdefault("memory-child", "bench.memory_child")
_KINDS = {
    FLOOR: ("memory-child", "floor"),
    FULL: ("memory-child", "full-cache"),
    LEAN: ("nekocord", None),
}
_READY = {
    FLOOR: re.compile(rf"{READY_LINE} guilds=(\d+)"),
    FULL: re.compile(r"Ready as .* in (\d+) servers"),
}
_READY[LEAN] = _READY[FULL]


@dataclass
class Sample:
    bot: str
    guilds: int
    rss_kib: int
    peak_kib: int  # VmHWM: the most it was resident (what a memory limit must allow)
    startup: float  # process start → every shard READY, every server known (seconds)
    startup_cpu: float  # the bot's CPU seconds by then (independent of the stand-in's speed)
    seen: int  # servers the bot counted


@dataclass
class MemoryRow:
    bot: str
    small: Sample
    large: Sample

    @property
    def growth_kib(self) -> int:
        return self.large.rss_kib - self.small.rss_kib

    @property
    def kib_per_server(self) -> float:
        return self.growth_kib / max(1, self.large.guilds - self.small.guilds)


def _env(bot: str, discord: FakeDiscord, nekos: FakeNekos, data_dir: Path) -> dict[str, str]:
    env = {
        "DISCORD_TOKEN": discord.token,
        "DISCORD_API_BASE": discord.rest_url,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "NEKOS_API_BASE": nekos.base_url,
        "NEKOS_CONTACT": "https://example.invalid/nekocord-bench",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",
        "SHARD_COUNT": str(discord.shard_count),
        "BENCH_SYNC": "1",
    }
    child = _KINDS[bot][1]
    if child is not None:
        env[CHILD_ENV] = child
    return env


async def sample(
    bot: str,
    guilds: int,
    workdir: Path,
    *,
    shape: GuildShape,
    shards: int = SHARDS,
    settle: float = 1.5,
    timeout: float = 600.0,
) -> Sample:
    """One bot at `guilds` realistic servers: start, wait until every server is known, read
    RSS, stop."""
    tag = re.sub(r"\W+", "-", bot).strip("-")
    async with (
        FakeNekos(latency=0.0) as nekos,
        FakeDiscord(
            token=TOKEN,
            guild_count=guilds,
            shard_count=shards,
            max_concurrency=shards,
            guild_shape=shape,
        ) as discord,
    ):
        data = workdir / f"memory-{tag}-{guilds}"
        kind = _KINDS[bot][0]
        log_path = workdir / f"memory-{tag}-{guilds}.log"
        log_path.unlink(missing_ok=True)  # a ready line of an earlier run must not count
        proc = BotProcess(kind, _env(bot, discord, nekos, data), cwd=data, log_path=log_path)
        try:
            await proc.start()
            pattern = _READY[bot]
            deadline = time.monotonic() + timeout
            while (found := pattern.search(proc.output)) is None:
                proc.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{bot} not ready at {guilds} servers:\n{proc.output[-3000:]}"
                    )
                await asyncio.sleep(0.01)
            startup = time.monotonic() - proc.spawned_at
            startup_cpu = proc.cpu()
            await asyncio.sleep(settle)
            proc.check_alive()
            rss = proc.memory()
            await proc.terminate()
            seen = int(found.group(1))
            return Sample(bot, guilds, rss["VmRSS"], rss["VmHWM"], startup, startup_cpu, seen)
        finally:
            proc.kill()


async def memory_runs(
    workdir: Path,
    *,
    guilds: int = GUILDS,
    bots: tuple[str, ...] = BOTS,
    shape: GuildShape | None = None,
    log: bool = True,
) -> list[MemoryRow]:
    shape = shape or GuildShape()
    rows = []
    for bot in bots:
        found = []
        for count in (1, guilds):
            if log:
                print(f"[bench] memory: {bot} at {count:,} servers…", file=sys.stderr, flush=True)
            found.append(await sample(bot, count, workdir, shape=shape))
        rows.append(MemoryRow(bot, *found))
    return rows


def table(rows: list[MemoryRow], shape: GuildShape | None = None) -> str:
    shape = shape or GuildShape()
    n = rows[0].large.guilds if rows else GUILDS
    floor = next((r for r in rows if r.bot == FLOOR), None)
    lines = [
        f"### Memory per server ({SHARDS} shards in one process, realistic servers)",
        "",
        f"Each server: {shape.channels} channels of every common type with {shape.overwrites} "
        f"permission overwrites each, {shape.roles} roles, {shape.emojis} emojis, "
        f"{shape.stickers} stickers, {shape.threads} active threads (`GuildShape`). RSS read "
        "from /proc once every shard is READY and every server has arrived; start-up is "
        "process start → that moment, with the bot's CPU time by then in brackets. "
        "`python -m bench.memory` reruns this section alone.",
        "",
        f"| bot | RSS at 1 server MiB | RSS at {n:,} MiB | added MiB | KiB / server "
        f"| RSS at {n:,} ×floor | peak RSS at {n:,} MiB | start-up at {n:,} (CPU) "
        "| servers seen |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ratio = f"{r.large.rss_kib / floor.large.rss_kib:.2f}×" if floor else "–"
        lines.append(
            f"| {r.bot} | {r.small.rss_kib / 1024:.1f} | {r.large.rss_kib / 1024:.1f} "
            f"| {r.growth_kib / 1024:.1f} | {r.kib_per_server:.2f} | {ratio} "
            f"| {r.large.peak_kib / 1024:.1f} | {r.large.startup:.1f} s "
            f"({r.large.startup_cpu:.1f} s) | {r.large.seen:,} |"
        )
    lines.append("")
    lean = next((r for r in rows if r.bot == LEAN), None)
    full = next((r for r in rows if r.bot == FULL), None)
    if lean is not None:
        added_mb = lean.growth_kib * 1024 / 1e6 * GUILDS / max(1, n - 1)
        ok = lean.kib_per_server <= BUDGET_KIB_PER_SERVER
        lines.append(
            f"- {'✅' if ok else '❌'} nekocord: {lean.kib_per_server:.2f} KiB per server, "
            f"{added_mb:.1f} MB at {GUILDS:,} servers{'' if n == GUILDS else ' (extrapolated)'} "
            f"(budget ≤ {BUDGET_MB_AT_10K:.0f} MB, "
            f"≈ {BUDGET_KIB_PER_SERVER:.2f} KiB per server)."
        )
    if lean is not None and full is not None:
        ok = lean.large.startup <= full.large.startup
        lines.append(
            f"- {'✅' if ok else '❌'} start-up at {n:,} servers: {lean.large.startup:.1f} s "
            f"with the lean cache, {full.large.startup:.1f} s with the full one (no slower); "
            f"the bot's CPU by then {lean.large.startup_cpu:.1f} s against "
            f"{full.large.startup_cpu:.1f} s. The stand-in (in the driver: building, encoding "
            "and compressing 40 KB per server) paces the lean bot, so its wall time says more "
            "about the machine than about the bot; CPU does not."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    p.add_argument("--guilds", type=int, default=GUILDS, help=f"servers (default {GUILDS:,})")
    p.add_argument("--bots", default=",".join(BOTS), help="subset of: " + ", ".join(BOTS))
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument(
        "--no-write", action="store_true", help=f"print only (default: write at {GUILDS:,})"
    )
    args = p.parse_args(argv)
    bots = tuple(b.strip() for b in args.bots.split(",") if b.strip())
    if unknown := [b for b in bots if b not in BOTS]:
        sys.exit(f"unknown bots: {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(prefix="nekocord-memory-") as tmp:
        try:
            rows = asyncio.run(memory_runs(Path(tmp), guilds=args.guilds, bots=bots))
        finally:
            kill_all()
    section = table(rows)
    print(section)
    if not args.no_write and args.guilds == GUILDS and bots == BOTS:
        write(args.output, section)
        print(f"[bench] memory results written to {args.output}", file=sys.stderr)
    return 0


def write(path: Path, section: str) -> None:
    """This run's block of BENCHMARKS.md (its own markers)."""
    report.write(path, section, begin=BEGIN, end=END)


if __name__ == "__main__":
    sys.exit(main())

"""Tables (Markdown, also readable in a terminal), the target check, and BENCHMARKS.md."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
from pathlib import Path

import discord

from bench.overload import OverloadRun
from bench.overload import table as overload_table
from bench.run import BotSummary, ScaleRun, Settings
from bench.variants import parse_spec

BEGIN = "<!-- bench:results:begin (written by python -m bench; edit outside these markers) -->"
END = "<!-- bench:results:end -->"

TARGET_P50_RATIO = 1.5
TARGET_CPU_RATIO = 1.5
TARGET_P99 = 3.0
TARGET_PER_1000 = 55
TARGET_RSS_RATIO = 1.5
TARGET_WARM_READY = 2.0


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, discord.py {discord.__version__}"
    )


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "–"
    return f"{seconds * 1000:.1f}" if seconds < 1 else f"{seconds * 1000:.0f}"


def sec(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.2f} s"


def mib(kib: int | None) -> str:
    return "–" if kib is None else f"{kib / 1024:.1f}"


def ratio(value: float | None, floor: float | None) -> str:
    if value is None or floor is None or floor == 0 or math.isnan(value) or math.isnan(floor):
        return "–"
    return f"{value / floor:.2f}×"


def _floor(rows: list[BotSummary], bot: str = "floor") -> BotSummary | None:
    """The floor to compare `bot` with: the floor with the same variant tags if it ran, else
    the plain floor."""
    spec = parse_spec(bot)
    same = "+".join(("floor", *spec.tags))
    found = {r.bot: r for r in rows}
    return found.get(same) or found.get("floor")


def latency_table(rows: list[BotSummary]) -> str:
    head = (
        "| bot | workload (commands) | p50 ms | p99 ms | commands/s | CPU ms / command "
        "| nekos.best req / 1,000 | failed / errors | peak RSS MiB | p50 ×floor | p99 ×floor "
        "| commands/s ×floor | CPU ×floor | peak RSS ×floor |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |"
    )
    out = [head]
    for row in rows:
        floor = _floor(rows, row.bot)
        for i, phase in enumerate(row.phases):
            base = floor.phases[i] if floor is not None and i < len(floor.phases) else None
            out.append(
                f"| {row.bot} | {phase.name} ({phase.count}) | {ms(phase.p50)} | {ms(phase.p99)} "
                f"| {phase.throughput:.0f} | {phase.cpu_per_command * 1000:.2f} "
                f"| {phase.per_1000:.0f} | {phase.failed} / {phase.errors} "
                f"| {mib(row.peak_rss_kib)} "
                f"| {ratio(phase.p50, base.p50 if base else None)} "
                f"| {ratio(phase.p99, base.p99 if base else None)} "
                f"| {ratio(phase.throughput, base.throughput if base else None)} "
                f"| {ratio(phase.cpu_per_command, base.cpu_per_command if base else None)} "
                f"| {ratio(row.peak_rss_kib, floor.peak_rss_kib if floor else None)} |"
            )
    return "\n".join(out)


def scale_table(runs: list[ScaleRun]) -> str:
    floor = next((r for r in runs if r.bot == "floor"), None)
    guilds = runs[0].guilds if runs else 0
    head = (
        f"| bot | RSS at {guilds:,} guilds MiB | ×floor | peak RSS MiB | first start → READY "
        "(command PUTs) | warm restart → READY | → first answer | → on_ready "
        "| PUTs on restart |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    out = [head]
    for run in runs:
        out.append(
            f"| {run.bot} | {mib(run.rss_kib)} "
            f"| {ratio(run.rss_kib, floor.rss_kib if floor else None)} "
            f"| {mib(run.peak_rss_kib)} | {sec(run.cold_ready)} ({run.cold_puts}) "
            f"| {sec(run.warm_ready)} | {sec(run.warm_first_answer)} "
            f"| {sec(run.warm_on_ready)} | {run.warm_puts} |"
        )
    return "\n".join(out)


def targets(rows: list[BotSummary], scale: list[ScaleRun]) -> list[str]:
    """nekocord against the issue's targets; one line each, ✅ / ❌."""
    lines: list[str] = []

    def mark(ok: bool) -> str:
        return "✅" if ok else "❌"

    neko = next((r for r in rows if r.bot == "nekocord"), None)
    floor = _floor(rows, "nekocord")
    if neko is not None and floor is not None:
        same = set(neko.loops) == set(floor.loops) and len(neko.loops) == 1
        lines.append(
            f"{mark(same)} event loop: nekocord {'/'.join(neko.loops)}, the floor "
            f"{'/'.join(floor.loops)} (the floor must run on nekocord's loop)"
        )
        for phase, base in zip(neko.phases, floor.phases, strict=False):
            r = phase.p50 / base.p50
            lines.append(
                f"{mark(r <= TARGET_P50_RATIO)} p50, {phase.name}: {r:.2f}× the floor "
                f"({ms(phase.p50)} vs {ms(base.p50)} ms; target ≤ {TARGET_P50_RATIO}×)"
            )
        for phase, base in zip(neko.phases, floor.phases, strict=False):
            r = phase.cpu_per_command / base.cpu_per_command
            lines.append(
                f"{mark(r <= TARGET_CPU_RATIO)} CPU per command, {phase.name}: {r:.2f}× the "
                f"floor ({phase.cpu_per_command * 1000:.2f} vs {base.cpu_per_command * 1000:.2f}"
                f" ms; target ≤ {TARGET_CPU_RATIO}×)"
            )
    if neko is not None:
        worst = max(neko.phases, key=lambda p: p.p99)
        lines.append(
            f"{mark(worst.p99 < TARGET_P99)} p99, worst workload ({worst.name}): "
            f"{ms(worst.p99)} ms (target < {TARGET_P99:.0f} s in every scenario)"
        )
        failed = sum(p.failed + p.errors for p in neko.phases)
        lines.append(f"{mark(failed == 0)} commands unanswered or answered with an error: {failed}")
        lines.append(
            f"{mark(neko.per_1000 <= TARGET_PER_1000)} nekos.best: {neko.per_1000:.1f} requests "
            f"per 1,000 category commands after warm-up (target ≤ {TARGET_PER_1000})"
        )
    sneko = next((r for r in scale if r.bot == "nekocord"), None)
    sfloor = next((r for r in scale if r.bot == "floor"), None)
    if sneko is not None and sfloor is not None:
        r = sneko.rss_kib / sfloor.rss_kib
        lines.append(
            f"{mark(r <= TARGET_RSS_RATIO)} RSS at {sneko.guilds:,} guilds: {r:.2f}× the floor "
            f"({mib(sneko.rss_kib)} vs {mib(sfloor.rss_kib)} MiB; target ≤ {TARGET_RSS_RATIO}×)"
        )
    if sneko is not None:
        ok = sneko.warm_ready < TARGET_WARM_READY and sneko.warm_puts == 0
        lines.append(
            f"{mark(ok)} warm restart: gateway READY {sneko.warm_ready:.2f} s after the process "
            f"started, {sneko.warm_puts} command registrations (target < "
            f"{TARGET_WARM_READY:.0f} s, none)"
        )
    return lines


def before_after(rows: list[BotSummary]) -> list[str]:
    """nekocord against nekocord+main (the same run, the same floor): one line per workload."""
    found = {r.bot: r for r in rows}
    after, before, floor = found.get("nekocord"), found.get("nekocord+main"), _floor(rows)
    if after is None or before is None or floor is None:
        return []
    lines = []
    for new, old, base in zip(after.phases, before.phases, floor.phases, strict=False):
        old_cpu, new_cpu = old.cpu_per_command, new.cpu_per_command
        lines.append(
            f"{new.name}: CPU per command {old_cpu * 1000:.2f} → {new_cpu * 1000:.2f} ms "
            f"({ratio(old_cpu, base.cpu_per_command)} → {ratio(new_cpu, base.cpu_per_command)} "
            "the floor), p50 "
            f"{ms(old.p50)} → {ms(new.p50)} ms ({ratio(old.p50, base.p50)} → "
            f"{ratio(new.p50, base.p50)})"
        )
    return lines


def render(
    rows: list[BotSummary],
    scale: list[ScaleRun],
    settings: Settings,
    *,
    command: str,
    elapsed: float,
    loads: tuple[str, str],
    overload: OverloadRun | None = None,
    sharded: str | None = None,
    layers: str | None = None,
) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = rows[0].runs if rows else 0
    parts = [
        f"Command: `{command}` ({when}, {elapsed:.0f} s; load average {loads[0]} before, "
        f"{loads[1]} after).  ",
        f"Machine: {machine()}.  ",
        f"nekos.best stand-in {settings.latency * 1000:.0f} ms away; Discord stand-in on "
        f"loopback; {settings.concurrency} commands in flight (after {settings.single} sent one "
        "at a time); every command is a slash command with a target user, timed from "
        "INTERACTION_CREATE to the visible message.",
        "",
    ]
    if rows:
        parts += [
            "### Latency, throughput, nekos.best traffic",
            "",
            f"Medians of {runs} interleaved run{'s' if runs != 1 else ''} per bot (traffic and "
            "failures: totals). CPU is the bot process's (all threads) during the workload. "
            "Event loop (read from each process): "
            + "; ".join(f"{r.bot} {'/'.join(r.loops) or '?'}" for r in rows)
            + ".",
            "",
            latency_table(rows),
            "",
        ]
        for row in rows:
            spread = "; ".join(
                f"{p.name}: " + ", ".join(ms(v) for v in p.p50_runs) for p in row.phases
            )
            spread += "; CPU ms / command per run: " + "; ".join(
                f"{p.name}: " + ", ".join(f"{v * 1000:.2f}" for v in p.cpu_runs) for p in row.phases
            )
            extra = ""
            if parse_spec(row.bot).kind != "floor":
                extra = f"; {row.per_1000:.1f} nekos.best requests per 1,000 commands overall"
            parts.append(f"- {row.bot}: p50 per run (ms): {spread}{extra}.")
        parts.append("")
    if changes := before_after(rows):
        parts += ["### nekocord before (`nekocord+main`) and after, medians", ""]
        parts += [f"- {line}" for line in changes]
        parts.append("")
    if layers is not None:
        parts += [
            "### CPU per command by layer",
            "",
            "py-spy over the same runs (`python -m bench.layers` on the logs): each sample "
            "given to the innermost layer on its stack, shares turned into µs with the CPU "
            "per command the runs measured (py-spy itself raises it).",
            "",
            layers,
            "",
        ]
    if scale:
        parts += ["### Memory at one full shard, start-up", "", scale_table(scale), ""]
        parts += [f"- {r.bot}: `{r.guilds_seen}`" for r in scale]
        parts.append("")
    if overload is not None:
        parts += [overload_table(overload)]
    if sharded is not None:
        parts += [sharded]
    checks = targets(rows, scale)
    if checks:
        parts += ["### nekocord against the targets", ""]
        parts += [f"- {line}" for line in checks]
        parts.append("")
    return "\n".join(parts)


def write(path: Path, section: str, *, begin: str = BEGIN, end: str = END) -> None:
    """Replace the results between the markers (the rest of the file is hand-written); other
    runs (bench.memory) keep their own pair of markers."""
    block = f"{begin}\n{section.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)

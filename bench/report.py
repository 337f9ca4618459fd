"""Tables (Markdown, also readable in a terminal), the target check, and BENCHMARKS.md."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
from pathlib import Path

import discord

from bench.run import LatencyRun, ScaleRun, Settings

BEGIN = "<!-- bench:results:begin (written by python -m bench; edit outside these markers) -->"
END = "<!-- bench:results:end -->"

TARGET_P50_RATIO = 1.5
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


def ms(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
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


def latency_table(runs: list[LatencyRun], settings: Settings) -> str:
    floor = next((r for r in runs if r.bot == "floor"), None)
    head = (
        "| bot | workload | p50 ms | p99 ms | commands/s | CPU ms / command "
        "| nekos.best req / 1,000 | failed / errors | peak RSS MiB | p50 ×floor | p99 ×floor "
        "| commands/s ×floor | CPU ×floor | peak RSS ×floor |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |"
    )
    rows = [head]
    for run in runs:
        for i, phase in enumerate(run.phases):
            base = floor.phases[i] if floor is not None and i < len(floor.phases) else None
            p50 = phase.percentile(50, timeout=settings.timeout)
            p99 = phase.percentile(99, timeout=settings.timeout)
            rows.append(
                f"| {run.bot} | {phase.name}: {phase.count} | {ms(p50)} | {ms(p99)} "
                f"| {phase.throughput:.0f} | {phase.cpu_per_command * 1000:.2f} "
                f"| {phase.per_1000:.0f} "
                f"| {phase.failed} / {phase.errors} | {mib(run.peak_rss_kib)} "
                f"| {ratio(p50, base.percentile(50, timeout=settings.timeout) if base else None)} "
                f"| {ratio(p99, base.percentile(99, timeout=settings.timeout) if base else None)} "
                f"| {ratio(phase.throughput, base.throughput if base else None)} "
                f"| {ratio(phase.cpu_per_command, base.cpu_per_command if base else None)} "
                f"| {ratio(run.peak_rss_kib, floor.peak_rss_kib if floor else None)} |"
            )
    return "\n".join(rows)


def overall_per_1000(run: LatencyRun) -> float:
    commands = sum(p.count for p in run.phases)
    requests = sum(p.nekos_requests for p in run.phases)
    return 1000 * requests / commands if commands else math.nan


def scale_table(runs: list[ScaleRun]) -> str:
    floor = next((r for r in runs if r.bot == "floor"), None)
    guilds = runs[0].guilds if runs else 0
    head = (
        f"| bot | RSS at {guilds:,} guilds MiB | ×floor | peak RSS MiB | first start → READY "
        "(command PUTs) | warm restart → READY | → first answer | → on_ready "
        "| PUTs on restart |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    rows = [head]
    for run in runs:
        rows.append(
            f"| {run.bot} | {mib(run.rss_kib)} "
            f"| {ratio(run.rss_kib, floor.rss_kib if floor else None)} "
            f"| {mib(run.peak_rss_kib)} | {sec(run.cold_ready)} ({run.cold_puts}) "
            f"| {sec(run.warm_ready)} | {sec(run.warm_first_answer)} "
            f"| {sec(run.warm_on_ready)} | {run.warm_puts} |"
        )
    return "\n".join(rows)


def targets(latency: list[LatencyRun], scale: list[ScaleRun], settings: Settings) -> list[str]:
    """nekocord against the issue's targets; one line each, ✅ / ❌."""
    lines: list[str] = []

    def mark(ok: bool) -> str:
        return "✅" if ok else "❌"

    neko = next((r for r in latency if r.bot == "nekocord"), None)
    floor = next((r for r in latency if r.bot == "floor"), None)
    if neko is not None and floor is not None:
        for phase, base in zip(neko.phases, floor.phases, strict=False):
            r = phase.percentile(50, timeout=settings.timeout) / base.percentile(
                50, timeout=settings.timeout
            )
            lines.append(
                f"{mark(r <= TARGET_P50_RATIO)} p50 {phase.name}: {r:.2f}× the floor "
                f"(target ≤ {TARGET_P50_RATIO}×)"
            )
    if neko is not None:
        worst = max(
            (p.percentile(99, timeout=settings.timeout), p.name) for p in neko.phases
        )
        lines.append(
            f"{mark(worst[0] < TARGET_P99)} p99 worst ({worst[1]}): {ms(worst[0])} ms "
            f"(target < {TARGET_P99:.0f} s in every scenario)"
        )
        failed = sum(p.failed + p.errors for p in neko.phases)
        lines.append(f"{mark(failed == 0)} unanswered or error answers: {failed}")
        per = overall_per_1000(neko)
        lines.append(
            f"{mark(per <= TARGET_PER_1000)} nekos.best requests: {per:.1f} per 1,000 category "
            f"commands after warm-up (target ≤ {TARGET_PER_1000})"
        )
    sneko = next((r for r in scale if r.bot == "nekocord"), None)
    sfloor = next((r for r in scale if r.bot == "floor"), None)
    if sneko is not None and sfloor is not None:
        r = sneko.rss_kib / sfloor.rss_kib
        lines.append(
            f"{mark(r <= TARGET_RSS_RATIO)} RSS at {sneko.guilds:,} guilds: {r:.2f}× the floor "
            f"(target ≤ {TARGET_RSS_RATIO}×)"
        )
    if sneko is not None:
        lines.append(
            f"{mark(sneko.warm_ready < TARGET_WARM_READY and sneko.warm_puts == 0)} warm restart: "
            f"READY {sneko.warm_ready:.2f} s after spawn with {sneko.warm_puts} command "
            f"re-registrations (target < {TARGET_WARM_READY:.0f} s, 0)"
        )
    return lines


def render(
    latency: list[LatencyRun],
    scale: list[ScaleRun],
    settings: Settings,
    command: str,
    elapsed: float,
) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"Command: `{command}` — {when}, {elapsed:.0f} s.  ",
        f"Machine: {machine()}.  ",
        f"nekos.best stand-in {settings.latency * 1000:.0f} ms away; Discord stand-in on "
        f"loopback (no added latency); {settings.concurrency} commands in flight; each "
        "command is a slash command with a target user, timed from INTERACTION_CREATE to the "
        "visible message.",
        "",
    ]
    if latency:
        parts += ["### Latency, throughput, nekos.best traffic", "", latency_table(latency, settings)]
        for run in latency:
            per = overall_per_1000(run)
            if run.bot != "floor":
                parts.append("")
                parts.append(
                    f"{run.bot}: {per:.1f} nekos.best requests per 1,000 category commands "
                    "after warm-up (both workloads)."
                )
        parts.append("")
    if scale:
        parts += ["### Memory at one full shard, start-up", "", scale_table(scale), ""]
        parts += [f"- {r.bot}: `{r.guilds_seen}`" for r in scale]
        parts.append("")
    checks = targets(latency, scale, settings)
    if checks:
        parts += ["### nekocord against the targets", ""]
        parts += [f"- {line}" for line in checks]
        parts.append("")
    return "\n".join(parts)


def write(path: Path, section: str) -> None:
    """Replace the results between the markers (the rest of the file is hand-written)."""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)

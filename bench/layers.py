"""`python -m bench.layers LOGDIR`: where each bot's time goes, per layer, from the py-spy
profiles `python -m bench --profile` keeps (`<bot>-profile-<run>.txt` and `.json`).

Each sample is given to the first layer found walking its stack from the innermost frame
outwards, so a JSON encode (or a socket write) inside discord.py's interaction callback counts
as sending and an embed built by bot/render.py as rendering; aiohttp and asyncio frames count
on their own only when nothing of a layer is on the stack. Samples waiting in epoll are idle
and left out.
The µs per command are the layer's share of the samples times the CPU per command measured
by the same run (`/proc`): shares come from sampling, the total from the kernel.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

Rules = list[tuple[str, re.Pattern[str]]]


def compiled(patterns: list[tuple[str, str]]) -> Rules:
    return [(name, re.compile(pattern)) for name, pattern in patterns]


# (layer, pattern on one frame "function (path:line)"), checked in this order per frame.
RULES = compiled(
    [
        ("option validation (bot/validation.py)", r"\(bot/validation\.py"),
        ("store (record_action, opt-outs)", r"\((bot/store/|aiosqlite/|sqlite3/)"),
        ("pool and nekos.best client", r"\(bot/nekos/"),
        ("rendering (bot/render.py, wording)", r"\(bot/(render\.py|wording/)"),
        (
            # aiohttp writes a request's body from a task of its own, with no caller on the
            # stack; the interaction callbacks are nearly all the bodies a bot sends.
            "sending (payload, JSON, HTTP callback, socket write)",
            r"\(discord/webhook/|^InteractionResponse\.|\(discord/http\.py"
            r"|^ClientRequest\.write_bytes ",
        ),
        ("answer() (defer timer, error answers)", r"\(bot/responding\.py"),
        (
            "dispatch (tree, options, cog, bot)",
            r"\((discord/app_commands/|discord/ext/|bot/app\.py|cogs/)"
            r"|^(Naive\.)?answer \(bench/(floor|naive)\.py"
            r"|^make_command\.<locals>\.callback \(bench/common\.py",
        ),
        (
            "gateway (read, inflate, parse, build Interaction)",
            r"\((discord/(gateway|state|interactions|client|member|user|message|guild|channel)"
            r"\.py|aiohttp/_websocket/|aiohttp/client_ws\.py)",
        ),
    ]
)
# Only when no frame of the stack belongs to a layer above: aiohttp's protocol callbacks and
# the loop's own work run from the loop, with no caller of ours on the stack.
FALLBACK = compiled(
    [
        ("HTTP responses read (aiohttp protocol)", r"\(aiohttp/"),
        ("logging", r"\(logging/"),
        ("event loop (scheduling, socket reads)", r"\((asyncio/|selectors\.py|uvloop)"),
    ]
)
IDLE = re.compile(r"^(EpollSelector\.select|select) \(selectors\.py")
SOCKET_WRITE = re.compile(r"^_SelectorSocketTransport\.write \(")
OTHER = "other"


def layer_of(frames: list[str]) -> str:
    if frames and frames[0].startswith("_bootstrap ("):  # a thread other than the loop's
        joined = ";".join(frames)
        if "aiosqlite/" in joined:
            return "store (record_action, opt-outs)"
        return "other threads"
    for rules in (RULES, FALLBACK):
        for frame in reversed(frames):
            for name, pattern in rules:
                if pattern.search(frame):
                    return name
    return OTHER


def read_profile(path: Path) -> tuple[Counter[str], int, int]:
    """Samples per layer, idle samples, and samples inside a socket write."""
    layers: Counter[str] = Counter()
    idle = writes = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if IDLE.match(frames[-1]):
            idle += n
            continue
        if SOCKET_WRITE.match(frames[-1]):
            writes += n
        layers[layer_of(frames)] += n
    return layers, idle, writes


def analyse(logdir: Path) -> str:
    per_bot: dict[str, list[tuple[Counter[str], int, int, dict[str, float]]]] = defaultdict(list)
    for path in sorted(logdir.glob("*-profile-*.txt")):
        bot = path.name.rsplit("-profile-", 1)[0]
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        per_bot[bot].append((*read_profile(path), meta))
    if not per_bot:
        sys.exit(f"no *-profile-*.txt in {logdir} (run python -m bench --profile)")
    bots = list(per_bot)
    shares: dict[str, dict[str, float]] = {}
    cpu_us: dict[str, float] = {}
    notes = []
    for bot, runs in per_bot.items():
        total: Counter[str] = Counter()
        idle = writes = 0
        cpu = commands = 0.0
        for layers, run_idle, run_writes, meta in runs:
            total.update(layers)
            idle += run_idle
            writes += run_writes
            cpu += meta.get("cpu_seconds", 0.0)
            commands += meta.get("commands", 0)
        busy = sum(total.values())
        shares[bot] = {name: n / busy for name, n in total.items()}
        cpu_us[bot] = cpu / commands * 1e6 if commands else float("nan")
        notes.append(
            f"- {bot}: {len(runs)} run(s), {busy:,} busy samples ({idle:,} idle in epoll left "
            f"out); CPU {cpu_us[bot]:.0f} µs per command; socket writes (loopback: the kernel "
            f"delivers to the stand-in inside the send) {writes / busy:.0%} of busy samples."
        )
    names = [name for name, _ in RULES + FALLBACK] + ["other threads", OTHER]
    names = [n for n in dict.fromkeys(names) if any(n in shares[b] for b in bots)]
    # Each bot against the first (the floor, when it ran): what its own work adds per layer.
    others = bots[1:]
    head = "| layer | " + " | ".join(f"{b} µs/cmd (share)" for b in bots)
    head += "".join(f" | {b} − {bots[0]} µs" for b in others)
    lines = [head + " |", "| --- |" + " ---: |" * (len(bots) + len(others))]
    for name in names:
        cells = []
        values = []
        for b in bots:
            share = shares[b].get(name, 0.0)
            values.append(share * cpu_us[b])
            cells.append(f"{share * cpu_us[b]:.0f} ({share:.0%})")
        row = f"| {name} | " + " | ".join(cells)
        row += "".join(f" | {value - values[0]:+.0f}" for value in values[1:])
        lines.append(row + " |")
    total_row = "| **total (CPU per command)** | " + " | ".join(f"{cpu_us[b]:.0f}" for b in bots)
    total_row += "".join(f" | {cpu_us[b] - cpu_us[bots[0]]:+.0f}" for b in others)
    lines.append(total_row + " |")
    return "\n".join([*lines, "", *notes])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__.split("\n")[0])
    p.add_argument("logdir", type=Path, help="the directory python -m bench --profile kept")
    args = p.parse_args(argv)
    print(analyse(args.logdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())

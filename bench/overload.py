"""`python -m bench.overload`: sustained overload of one category, in-process, in seconds.

Commands for one category arrive at `factor` times what nekos.best's per-window budget can
answer (its per-window request limit × 20 results) for `windows` windows, each one a
`Pool.take` with the bot's command budget. Time is scaled down: the nekos.best stand-in runs
`window`-second windows instead of 60 s, and the command budget shrinks by the same ratio, so
a run that stands for minutes on nekos.best takes seconds here. Reported: commands answered
and refused, the refusals' "try again in N s" (as the bot words it, in stand-in seconds and
scaled back to nekos.best's 60 s window), upstream requests and 429s.

Usage: python -m bench.overload [--limit 10] [--window 3] [--factor 2] [--windows 2]
                                [--window-kind fixed|sliding]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field

from bot.nekos import NekosClient, NekosError, Pool, RateLimited
from bot.nekos.limits import MAX_AMOUNT
from bot.responding import WORK_BUDGET
from tests.fakes.nekos import WINDOW_KINDS, FakeNekos

CATEGORY = "hug"
NEKOS_WINDOW = 60.0  # nekos.best's category window, what the short stand-in window stands for


@dataclass
class OverloadRun:
    limit: int  # requests per window
    window: float  # stand-in seconds
    factor: float
    windows: int
    window_kind: str = "fixed"  # the stand-in's (nekos.best does not say which it runs)
    commands: int = 0
    answered: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # errors other than "busy", by kind
    upstream: int = 0
    spanned: int = 0  # stand-in windows the upstream requests fell in
    limited: int = 0  # 429s nekos.best answered
    elapsed: float = 0.0
    retry_after: list[float] = field(default_factory=list)  # per refusal, stand-in seconds

    @property
    def refused(self) -> int:
        return len(self.retry_after)

    @property
    def capacity(self) -> int:
        """Results nekos.best allows per window: one batch of 20 per request."""
        return self.limit * MAX_AMOUNT

    @property
    def scale(self) -> float:
        return NEKOS_WINDOW / self.window

    def shown(self, *, scaled: bool) -> list[int]:
        """The N of "try again in N s", as bot.responding rounds it."""
        factor = self.scale if scaled else 1.0
        return [max(1, round(wait * factor)) for wait in self.retry_after]


async def overload_run(
    *,
    limit: int = 10,
    window: float = 3.0,
    factor: float = 2.0,
    windows: int = 2,
    window_kind: str = "fixed",
) -> OverloadRun:
    run = OverloadRun(limit, window, factor, windows, window_kind)
    budget = WORK_BUDGET / run.scale
    rate = factor * run.capacity / window  # commands per second
    run.commands = round(rate * window * windows)

    async with (
        FakeNekos(category_limit=limit, category_window=window, window_kind=window_kind) as nekos,
        NekosClient(base_url=nekos.base_url, app_version="bench") as client,
    ):
        pool = Pool(client)

        async def command() -> None:
            try:
                await pool.take(CATEGORY, budget=budget)
            except RateLimited as exc:
                run.retry_after.append(exc.retry_after)
            except NekosError as exc:
                kind = type(exc).__name__
                run.failed[kind] = run.failed.get(kind, 0) + 1
            else:
                run.answered += 1

        loop = asyncio.get_running_loop()
        started = loop.time()
        tasks = []
        for i in range(run.commands):
            delay = started + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(command()))
        await asyncio.gather(*tasks)
        run.elapsed = loop.time() - started
        await pool.aclose()
        sent = nekos.requests_to(f"/{CATEGORY}")
        run.upstream = len(sent)
        if sent:
            run.spanned = int((sent[-1].time - sent[0].time) // window) + 1
        run.limited = len([r for r in nekos.requests if r.status == 429])
    return run


def _spread(values: list[int]) -> str:
    if not values:
        return "–"
    return f"{min(values)} / {statistics.median(values):g} / {max(values)}"


def table(run: OverloadRun) -> str:
    """A Markdown section on one run."""
    failed = ", ".join(f"{n} {kind}" for kind, n in sorted(run.failed.items())) or "0"
    return "\n".join(
        [
            "### Sustained overload of one category",
            "",
            f"`{CATEGORY}` commands at {run.factor:g}× what nekos.best's per-window budget "
            f"answers ({run.limit} requests × {MAX_AMOUNT} results = {run.capacity}) for "
            f"{run.windows} windows; time scaled down {run.scale:g}× (a {run.window:g} s "
            f"window stands for {NEKOS_WINDOW:g} s, command budget {WORK_BUDGET:g} s → "
            f"{WORK_BUDGET / run.scale:.2f} s), {run.window_kind} windows. In-process pool and "
            "client; "
            "`python -m bench.overload` runs it alone.",
            "",
            "| commands | answered | refused (busy) | other errors | upstream requests "
            "(windows) | 429s | try again in N s (min / median / max) |",
            "|---:|---:|---:|---|---:|---:|---|",
            f"| {run.commands} | {run.answered} | {run.refused} | {failed} | "
            f"{run.upstream} ({run.spanned}) | {run.limited} | "
            f"{_spread(run.shown(scaled=True))} (stand-in: {_spread(run.shown(scaled=False))}) |",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__.split("\n")[0])
    p.add_argument("--limit", type=int, default=10, help="category requests per window (10)")
    p.add_argument("--window", type=float, default=3.0, help="stand-in window, seconds (3)")
    p.add_argument("--factor", type=float, default=2.0, help="demand over the budget (2)")
    p.add_argument("--windows", type=int, default=2, help="windows of demand (2)")
    p.add_argument(
        "--window-kind", choices=WINDOW_KINDS, default="fixed", help="the stand-in's (fixed)"
    )
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    run = asyncio.run(
        overload_run(
            limit=args.limit,
            window=args.window,
            factor=args.factor,
            windows=args.windows,
            window_kind=args.window_kind,
        )
    )
    print(table(run))
    print(f"[bench] {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

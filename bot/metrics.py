"""Prometheus metrics and the probes (METRICS_PORT), one HTTP port per process.

`/livez`: the event loop answers (nothing else: a gateway outage must never get the pod
restarted, every restart costs IDENTIFYs). `/readyz` (and `/healthz`, its older name): every
shard this process owns has a READY gateway session and the database answers.

`Metrics` owns a private registry (several bots in one test process don't collide). Commands
and button presses are counted by the tree when their task ends (`NekoTree.on_finished`); the
rest is read at scrape time from what the bot already keeps: nekos.best answers
(`ClientStats.answers`), pool hits and misses (`Pool.stats()`), store failures
(`ThrottledLog.count`), gateway latency and guilds per shard. So `bot.nekos` and `bot.store`
know nothing of metrics.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import discord
from aiohttp import web
from discord import app_commands
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from bot import responding
from bot.health import shards_not_ready
from bot.nekos import BadRequest, CategoryError, NekosError
from bot.shards import CURRENT_SHARD, owned_shards
from bot.store import StoreError

if TYPE_CHECKING:
    from bot.app import NekoBot

OK = "ok"
REFUSED = "refused"  # the user's doing: a bad option, a cooldown, an opt-out, a disabled command
UPSTREAM = "upstream"  # nekos.best failed (down, slow, rate limited, an asset missing)
ERROR = "error"  # a bug, the database, or Discord refusing our answer
OUTCOMES = (OK, REFUSED, UPSTREAM, ERROR)

# From a cached answer (milliseconds) to a deferred one that waited for nekos.best (seconds).
# `/readyz` waits this long for the database (the chart's probe timeout is longer).
STORE_PING_TIMEOUT = 2.0
COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.6, 2.5, 5.0, 10.0, 15.0)


def outcome_of(error: BaseException | None) -> str:
    """The `outcome` label of a command that ended with `error` (None: it succeeded).

    Follows `responding.describe`: what it calls a bug is an error; of the rest, nekos.best's
    own failures are upstream, the database and Discord's refusals errors, the others refused."""
    if error is None:
        return OK
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, discord.HTTPException | StoreError):
        return ERROR
    if responding.describe(error)[1]:
        return ERROR
    if isinstance(error, CategoryError | BadRequest):  # what the user asked for
        return REFUSED
    if isinstance(error, NekosError | TimeoutError):
        return UPSTREAM
    return REFUSED


def _shard_latencies(bot: NekoBot) -> list[tuple[int, float]]:
    latencies = getattr(bot, "latencies", None)  # an AutoShardedBot
    if latencies is not None:
        return list(latencies)
    return [(bot.shard_id or 0, bot.latency)]


class _ScrapeTime(Collector):
    """What the bot already counts, read when Prometheus asks."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        bot = self._metrics.bot
        requests = CounterMetricFamily(
            "nekocord_nekos_requests",
            "Answers from nekos.best, per rate-limit bucket and HTTP status "
            "(timeout or connection when none came).",
            labels=["endpoint", "status"],
        )
        takes = CounterMetricFamily(
            "nekocord_pool_takes",
            "Takes from the prefetched pool: hit (served from memory) or miss.",
            labels=["result"],
        )
        store_errors = CounterMetricFamily(
            "nekocord_store_errors", "Failed reads and writes of the database."
        )
        latency = GaugeMetricFamily(
            "nekocord_gateway_latency_seconds",
            "Heartbeat round trip to the Discord gateway, per shard.",
            labels=["shard"],
        )
        guilds = GaugeMetricFamily("nekocord_guilds", "Servers, per shard.", labels=["shard"])
        if bot is not None:
            answers: Tally[tuple[str, str]] = bot.nekos.stats.answers
            for (endpoint, status), count in sorted(answers.items()):
                requests.add_metric([endpoint, status], count)
            totals = bot.pool.stats()["totals"]
            takes.add_metric(["hit"], totals["hits"])
            takes.add_metric(["miss"], totals["misses"])
            store_errors.add_metric([], bot.store_errors.count)
            owned = _shard_latencies(bot)
            for shard, seconds in owned:
                if math.isfinite(seconds):  # inf/nan until the first heartbeat is acknowledged
                    latency.add_metric([str(shard)], seconds)
            per_shard: Tally[int] = Tally({shard: 0 for shard, _ in owned})
            per_shard.update(guild.shard_id for guild in bot.guilds)
            for shard, count in sorted(per_shard.items()):
                guilds.add_metric([str(shard)], count)
        yield from (requests, takes, store_errors, latency, guilds)


class Metrics:
    """The bot's metrics, and the HTTP server that serves them with the probes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.bot: NekoBot | None = None
        self.port: int | None = None  # the bound port once serving (METRICS_PORT=0 picks one)
        self._runner: web.AppRunner | None = None
        self.commands = Counter(
            "nekocord_commands",
            "Commands and button presses answered, per command, outcome and shard.",
            ["command", "outcome", "shard"],
            registry=self.registry,
        )
        self.command_seconds = Histogram(
            "nekocord_command_seconds",
            "From receiving an interaction to its answer, per shard.",
            ["shard"],
            buckets=COMMAND_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ScrapeTime(self))

    def watch(self, bot: NekoBot) -> None:
        """Count `bot`'s commands from now on, and read its state at every scrape."""
        self.bot = bot
        bot.tree.on_finished = self.command_finished
        for shard in owned_shards(bot.config.shard_count, bot.config.shard_ids):
            self.command_seconds.labels(shard=str(shard))  # a series from the start

    def command_finished(self, command: str, error: BaseException | None, seconds: float) -> None:
        # Called as the command's task ends, in its context: the shard that delivered it.
        shard = str(CURRENT_SHARD.get() or 0)
        self.commands.labels(command=command, outcome=outcome_of(error), shard=shard).inc()
        self.command_seconds.labels(shard=shard).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def readiness(self) -> str | None:
        """None when ready to serve, else why not (one line)."""
        bot = self.bot
        if bot is None:
            return "starting"
        waiting = shards_not_ready(bot)
        if waiting:
            return f"gateway not ready: shard {', '.join(str(s) for s in waiting)}"
        try:
            await asyncio.wait_for(bot.store.ping(), STORE_PING_TIMEOUT)
        except (StoreError, TimeoutError):
            return "the database does not answer"
        return None

    # -- the HTTP server ------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _livez(self, request: web.Request) -> web.Response:
        # Answering at all is the point: this handler runs on the bot's event loop.
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        problem = await self.readiness()
        if problem is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=f"{problem}\n")

    async def start(self, host: str, port: int) -> int:
        """Serve `/metrics` and the probes on host:port; returns the bound port. Raises
        OSError when the port cannot be bound."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/healthz", self._readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address: Any = runner.addresses[0]
        self.port = int(address[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

"""`python -m bot`: read the configuration, set up logging, run until SIGTERM/SIGINT.
(Other commands, `--help` and `--version`: see `bot.cli`.)

Exit codes: 0 after a clean stop; 2 for a configuration or start-up problem the operator must
fix (one line on stderr, no traceback, never the token); 1 for anything unexpected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import discord
import yarl

from bot import __version__, cli, startup
from bot.app import NekoBot, build_bot
from bot.config import Config, ConfigError, load_config
from bot.coordination import CoordinationError, Coordinator, open_coordinator
from bot.health import Heartbeat
from bot.logs import setup_logging
from bot.metrics import Metrics
from bot.nekos.catalog import Catalog
from bot.nekos.client import NekosClient
from bot.nekos.pool import Pool
from bot.nekos.transport import TransportSettings, make_session
from bot.shards import ShardsHeld, describe_shards
from bot.store import Store, StoreError, StoreUnreachable, open_store
from bot.store.files import make_private_dir, write_private

log = logging.getLogger("bot")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2


class StartupError(Exception):
    """A problem the operator must fix; the message is the one line we print. Exit 2 for what
    only the configuration can fix, 1 for a dependency that stayed out of reach."""

    def __init__(self, message: str, *, code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.code = code


def data_dir_ready(path: Path) -> None:
    """Create the data directory (0700, see `bot.store.files`), or explain why it cannot be
    used."""
    make_private_dir(path)
    probe = path / ".write-test"
    write_private(probe, "ok")
    probe.unlink()


async def wait_for_discord(config: Config, stop: asyncio.Event) -> None:
    """Until Discord's REST API answers at all (the network or a proxy may not be up yet)."""
    try:
        await startup.retry(
            "Discord",
            lambda: startup.probe_http(f"{config.discord_api_base}/gateway"),
            seconds=config.startup_retry_seconds,
            transient=(aiohttp.ClientError, OSError, TimeoutError),
            stop=stop,
        )
    except startup.Unreachable as exc:
        raise StartupError(str(exc), code=EXIT_ERROR) from None


async def open_database(config: Config, stop: asyncio.Event) -> Store:
    """Open the store; a database server not up yet (compose starts it with the bot) is waited
    for like Discord. Rejected credentials, an unknown database, a bad URL: exit 2 at once."""
    try:
        return await startup.retry(
            "The database",
            lambda: open_store(config.database_url, pool_size=config.database_pool_size),
            seconds=config.startup_retry_seconds,
            transient=(StoreUnreachable,),
            stop=stop,
        )
    except startup.Unreachable as exc:
        raise StartupError(str(exc), code=EXIT_ERROR) from None
    except StoreError as exc:
        raise StartupError(f"DATABASE_URL: {exc}") from None


async def serve_metrics(config: Config) -> Metrics | None:
    """Start `/metrics` and `/healthz` when METRICS_PORT is set (the bot is watched once built)."""
    if config.metrics_port is None:
        return None
    metrics = Metrics()
    host, port = config.metrics_host, config.metrics_port
    try:
        bound = await metrics.start(host, port)
    except OSError as exc:
        # asyncio words it "error while attempting to bind on address …": say just why.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartupError(f"METRICS_PORT: cannot listen on {host}:{port}: {reason}") from None
    log.info("Metrics on http://%s:%d/metrics", host, bound)
    return metrics


def apply_discord_endpoints(config: Config) -> None:
    """Point discord.py at the configured REST base and gateway (a proxy, or a test stand-in).

    `Route.BASE` moves REST, interaction callbacks and webhooks alike."""
    discord.http.Route.BASE = config.discord_api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config.discord_gateway_url)


async def run(
    config: Config,
    stop: asyncio.Event | None = None,
    *,
    on_bot: Callable[[NekoBot], None] | None = None,
    install_signals: bool = True,
    breaker_cooldown: float | None = None,
    coordinator: Coordinator | None = None,
) -> int:
    """Run the bot until `stop` is set (or a signal arrives). Returns the exit code.

    `on_bot` receives the bot once built (tests and the benchmark inspect it); `coordinator`
    replaces the one DATABASE_URL names (tests share one between bots of one process)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if install_signals:
        # Python as PID 1 (a container) ignores SIGTERM unless a handler is installed.
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)

    apply_discord_endpoints(config)
    metrics = await serve_metrics(config)
    shards = describe_shards(config.shard_count, config.shard_ids, config.pod_index)
    log.info("nekocord %s: %s", __version__, shards)  # among the first lines: what it runs
    try:
        return await _run(config, stop, metrics, on_bot, breaker_cooldown, coordinator)
    finally:
        if metrics is not None:
            await metrics.stop()


async def _run(
    config: Config,
    stop: asyncio.Event,
    metrics: Metrics | None,
    on_bot: Callable[[NekoBot], None] | None,
    breaker_cooldown: float | None,
    coordinator: Coordinator | None,
) -> int:
    try:
        data_dir_ready(config.data_dir)
    except OSError as exc:
        raise StartupError(f"DATA_DIR: cannot use {config.data_dir}: {exc.strerror}") from None
    store = await open_database(config, stop)

    try:
        shared = coordinator or await open_coordinator(config.database_url, config.data_dir)
    except CoordinationError as exc:
        await store.close()
        raise StartupError(f"DATABASE_URL: {exc}") from None
    except BaseException:
        await store.close()
        raise
    async with store, contextlib.AsyncExitStack() as owned:
        if coordinator is None:  # ours to close
            await owned.enter_async_context(shared)
        return await _run_bot(config, stop, metrics, on_bot, breaker_cooldown, store, shared)


async def _run_bot(
    config: Config,
    stop: asyncio.Event,
    metrics: Metrics | None,
    on_bot: Callable[[NekoBot], None] | None,
    breaker_cooldown: float | None,
    store: Store,
    coordinator: Coordinator,
) -> int:
    await wait_for_discord(config, stop)
    # nekos.best's budgets, shared with the bot's other processes when there are any.
    transport: TransportSettings = {"budget": coordinator.budget}
    if breaker_cooldown is not None:  # tests shorten the pause after nekos.best fails
        transport["breaker_cooldown"] = breaker_cooldown
    async with make_session() as session:
        nekos = NekosClient(
            session,
            base_url=config.nekos_api_base,
            contact=config.nekos_contact,
            app_version=__version__,
            **transport,
        )
        pool = Pool(nekos)
        catalog = Catalog(
            nekos, data_dir=config.data_dir, refresh_interval=config.category_refresh_seconds
        )
        bot = build_bot(
            config,
            nekos=nekos,
            pool=pool,
            catalog=catalog,
            store=store,
            coordinator=coordinator,
            heartbeat=Heartbeat(config.data_dir),
        )
        if metrics is not None:
            metrics.watch(bot)
        if on_bot is not None:
            on_bot(bot)
        async with bot:
            runner = asyncio.create_task(bot.start(config.discord_token), name="nekocord-bot")
            stopper = asyncio.create_task(stop.wait(), name="nekocord-stop")
            await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper.done() and not runner.done():
                log.info("Stopping: finishing interactions in flight")
                await bot.shutdown()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(runner, timeout=2)
                log.info("Stopped cleanly")
                return EXIT_OK
            stopper.cancel()
            try:
                runner.result()
            except discord.LoginFailure:
                raise StartupError(
                    "Discord rejected DISCORD_TOKEN: reset the token in the developer portal "
                    "and update your configuration"
                ) from None
            except discord.PrivilegedIntentsRequired:
                raise StartupError("Discord refused the gateway intents") from None
            except ShardsHeld as exc:  # or lost while running
                raise StartupError(str(exc), code=exc.code) from None
            except (aiohttp.ClientError, OSError) as exc:  # lost again right after the probe
                raise StartupError(
                    f"Discord could not be reached: {exc}", code=EXIT_ERROR
                ) from None
            return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """`python -m bot [COMMAND]`: the command line is `bot.cli`'s."""
    return cli.main(argv, prog="python -m bot", run=run_bot)


def run_bot() -> int:
    """The `run` command: read the configuration, set up logging, run the bot."""
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"nekocord: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, secrets=config.secrets(), fmt=config.log_format)
    try:
        return asyncio.run(run(config))
    except StartupError as exc:
        print(f"nekocord: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

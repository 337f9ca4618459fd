"""Start the real bot against the loopback stand-ins: in-process (its app object, through the
same `run()` that `python -m bot` uses) or as a `python -m bot` process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.__main__ import run
from bot.app import NekoBot
from bot.config import load_config
from bot.coordination import Coordinator
from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos

# Shaped like a real token (so it passes validation) but fake.
TOKEN = "MTAxMDEwMTAxMDEwMTAxMDEw.GabcDE.abcdefghijklmnopqrstuvwxyz012345"
ROOT = Path(__file__).resolve().parent.parent


def bot_env(discord: FakeDiscord, nekos: FakeNekos, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "DISCORD_TOKEN": discord.token,
        "DISCORD_API_BASE": discord.rest_url,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "NEKOS_API_BASE": nekos.base_url,
        "NEKOS_CONTACT": "https://example.invalid/nekocord-tests",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",
        # Tests send bursts from one member: the cooldown tests turn these back on.
        "COOLDOWN": "0",
        "SEARCH_COOLDOWN": "0",
    }
    env.update(extra)
    return env


@dataclass
class RunningBot:
    bot: NekoBot
    task: asyncio.Task[int]
    stop_event: asyncio.Event
    exit_code: int | None = None

    async def stop(self, timeout: float = 10) -> int:
        self.stop_event.set()
        if self.exit_code is None:
            self.exit_code = await asyncio.wait_for(self.task, timeout)
        return self.exit_code


@contextlib.asynccontextmanager
async def running_bot(
    discord: FakeDiscord,
    nekos: FakeNekos,
    data_dir: Path,
    *,
    breaker_cooldown: float | None = None,
    ready_timeout: float = 10,
    on_bot: Callable[[NekoBot], None] | None = None,
    coordinator: Coordinator | None = None,
    overrides: dict[str, Any] | None = None,
    **env: str,
) -> AsyncIterator[RunningBot]:
    """The bot as `python -m bot` runs it, in this event loop; stopped on exit.
    `breaker_cooldown`: seconds the nekos.best breaker stays open (default: production's).
    `on_bot` sees the bot before it starts; `coordinator` is shared with other bots of this
    process; `overrides` replace settings after validation (e.g. a subset of the shards on
    SQLite, which the configuration refuses, for bots that share a `coordinator`)."""
    config = load_config(bot_env(discord, nekos, data_dir, **env), dotenv_path=None)
    config = dataclasses.replace(config, **(overrides or {}))

    def built_bot(bot: NekoBot) -> None:
        if on_bot is not None:
            on_bot(bot)
        built.set_result(bot)

    built: asyncio.Future[NekoBot] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    with discord.patch_client():
        task = asyncio.create_task(
            run(
                config,
                stop,
                on_bot=built_bot,
                install_signals=False,
                breaker_cooldown=breaker_cooldown,
                coordinator=coordinator,
            )
        )
        try:
            done, _ = await asyncio.wait({task, built}, timeout=10, return_when="FIRST_COMPLETED")
            if task in done:
                task.result()
                raise RuntimeError(f"the bot stopped during start-up: exit {task.result()}")
            bot = built.result()
            ready = asyncio.ensure_future(bot.wait_until_ready())
            done, _ = await asyncio.wait(
                {task, ready}, timeout=ready_timeout, return_when="FIRST_COMPLETED"
            )
            if ready not in done:
                ready.cancel()
                if task.done():
                    raise RuntimeError(f"the bot stopped during start-up: exit {task.result()}")
                raise TimeoutError(f"the bot did not become ready within {ready_timeout} s")
            handle = RunningBot(bot=bot, task=task, stop_event=stop)
            yield handle
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except BaseException:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


@dataclass
class BotProcess:
    """`python -m bot` as a child process; output goes to a log file."""

    env: dict[str, str]
    log_path: Path
    cwd: Path
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    _offset: int = 0  # where this run's output starts in a shared log file
    _log_file: Any = field(default=None, repr=False)

    async def start(self) -> BotProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEKOS_"))}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._offset = self._log_file.tell()
        self.started_at = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=self.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )
        return self

    @property
    def output(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self._offset)
            return log.read().decode(errors="replace")

    async def wait_for_output(self, text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"bot exited {self.process.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not seen in the bot's output:\n{self.output}")
            await asyncio.sleep(0.05)

    async def wait(self, timeout: float = 15) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def terminate(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the exit took."""
        assert self.process is not None
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = await self.wait(timeout)
        return code, time.monotonic() - sent

    async def kill(self, timeout: float = 10) -> int:
        """SIGKILL (`kill -9`: no clean shutdown, locks and sessions left to time out);
        returns the exit code. `start()` runs it again, appending to the same log."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        code = await self.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    async def stop(self) -> None:
        """Always called: kills what is left, closes the log."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.process.wait(), 5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@contextlib.asynccontextmanager
async def bot_process(
    discord: FakeDiscord, nekos: FakeNekos, data_dir: Path, **env: str
) -> AsyncIterator[BotProcess]:
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = BotProcess(
        env=bot_env(discord, nekos, data_dir, **env),
        log_path=data_dir.parent / f"{data_dir.name}-bot.log",
        cwd=data_dir,
    )
    try:
        yield await proc.start()
    finally:
        await proc.stop()


@contextlib.asynccontextmanager
async def bot_processes(
    discord: FakeDiscord,
    nekos: FakeNekos,
    data_dir: Path,
    shard_ids: Sequence[str | None],
    **env: str,
) -> AsyncIterator[list[BotProcess]]:
    """One `python -m bot` per entry of `shard_ids` (its SHARD_IDS; None: unset), all against
    the same stand-ins, started together; each has its own DATA_DIR (`data_dir/process-<i>`,
    as on separate machines) and log (`data_dir/process-<i>-bot.log`). Pass SHARD_COUNT, and a
    PostgreSQL DATABASE_URL for subsets, in `env`. All stopped on exit."""
    processes = []
    for index, ids in enumerate(shard_ids):
        own_dir = data_dir / f"process-{index}"
        own_dir.mkdir(parents=True, exist_ok=True)
        extra = dict(env, SHARD_IDS=ids) if ids is not None else dict(env)
        processes.append(
            BotProcess(
                env=bot_env(discord, nekos, own_dir, **extra),
                log_path=data_dir / f"process-{index}-bot.log",
                cwd=own_dir,
            )
        )
    try:
        for process in processes:
            await process.start()
        yield processes
    finally:
        await asyncio.gather(*(process.stop() for process in processes))

"""The bots under test as child processes: start, wait for a log line, read memory, stop.

Every process started here is registered, and `kill_all()` (called from a `finally` and at
exit) kills whatever is still running, so the benchmark never leaves a bot behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent

# Shaped like a real token (nekocord validates the shape) but fake.
TOKEN = "MTAxMDEwMTAxMDEwMTAxMDEw.GabcDE.abcdefghijklmnopqrstuvwxyz012345"

# How each bot is started: nekocord exactly as users start it (`python -m bot`).
MODULES: dict[str, str] = {"floor": "bench.floor", "naive": "bench.naive", "nekocord": "bot"}

_RUNNING: set[BotProcess] = set()


def kill_all() -> None:
    for proc in list(_RUNNING):
        proc.kill()


atexit.register(kill_all)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(eq=False)
class BotProcess:
    kind: str
    env: dict[str, str]
    cwd: Path
    log_path: Path
    # Through `python -m bench.launch` (variant tags applied first; see bench.variants).
    launch: bool = False
    process: asyncio.subprocess.Process | None = None
    spawned_at: float = 0.0
    _log: IO[bytes] | None = field(default=None, repr=False)

    async def start(self) -> BotProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEKOS_"))}
        env.update(self.env)
        # Importable from a fresh clone without installing: the repository root first.
        # A bot tagged `main` runs another revision's code (bench.variants.exported_source).
        root = self.env.get("BENCH_SOURCE") or str(ROOT)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.cwd.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.spawned_at = time.monotonic()
        # BENCH_<BOT>_ARGV: run a variant instead (e.g. a script that patches the bot first).
        argv = os.environ.get(f"BENCH_{self.kind.upper()}_ARGV")
        module = ["-m", MODULES[self.kind]]
        if self.launch:
            module = ["-m", "bench.launch", MODULES[self.kind]]
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *(argv.split() if argv else module),
            cwd=self.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        _RUNNING.add(self)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def memory(self) -> dict[str, int]:
        return memory_kib(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    async def wait_for_output(self, text: str, timeout: float = 30) -> float:
        """Until `text` appears in the output (polled every 5 ms); returns when it was seen."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process is not None
            if self.process.returncode is not None:
                raise RuntimeError(
                    f"{self.kind} exited {self.process.returncode}:\n{self.output[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not seen in {self.kind}'s output:\n{self.output}")
            await asyncio.sleep(0.005)
        return time.monotonic()

    def check_alive(self) -> None:
        assert self.process is not None
        if self.process.returncode is not None:
            raise RuntimeError(f"{self.kind} exited {self.process.returncode}:\n{self.output}")

    async def terminate(self, timeout: float = 15) -> int | None:
        """SIGTERM and wait (as `docker stop` does); kill after `timeout`."""
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.kill()
            return await self.process.wait()
        finally:
            self._close()

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self._close()

    def _close(self) -> None:
        _RUNNING.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> BotProcess:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.terminate()

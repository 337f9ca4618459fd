"""Fault-injection suite: the real bot (in-process or as `python -m bot`) against the loopback
stand-ins, with nekos.best, Discord, the database or the process itself misbehaving.

Every case asserts what the user sees (a first response within 3 s, then a clear final answer)
and what is kept (counts neither lost nor doubled, no crash, no unhandled exception).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot, running_bot
from tests.helpers import BREAKER_COOLDOWN, LogCapture, wait_pool


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)


@pytest.fixture
async def loop_errors(logs: LogCapture) -> AsyncIterator[LogCapture]:
    """Route the running loop's unhandled-exception reports into `logs.loop_errors`."""
    loop = asyncio.get_running_loop()
    old = loop.get_exception_handler()

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        logs.loop_errors.append(context)

    loop.set_exception_handler(handler)
    try:
        yield logs
    finally:
        loop.set_exception_handler(old)


@pytest.fixture
async def bot(
    discord_api: FakeDiscord, nekos: FakeNekos, data_dir: Path, loop_errors: LogCapture
) -> AsyncIterator[RunningBot]:
    # A breaker that closes again after a second: the tests wait for that rather than 30 s.
    async with running_bot(
        discord_api, nekos, data_dir, breaker_cooldown=BREAKER_COOLDOWN
    ) as running:
        await wait_pool(running, "hug")
        yield running

"""Fixtures for end-to-end tests: both stand-ins on loopback, and the real bot against them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot, running_bot


@pytest.fixture
async def bot(
    discord_api: FakeDiscord, nekos: FakeNekos, data_dir: Path
) -> AsyncIterator[RunningBot]:
    async with running_bot(discord_api, nekos, data_dir) as running:
        yield running

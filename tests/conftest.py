"""Shared test setup. Every test has a timeout (pyproject: pytest-timeout); servers bind port 0
and every fixture stops what it started.

The loopback stand-ins as fixtures, for the end-to-end and fault suites (`tests/nekos` has a
`nekos` fixture of its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN
from tests.pg import PostgresCluster, running_cluster


@pytest.fixture
async def nekos() -> AsyncIterator[FakeNekos]:
    async with FakeNekos() as fake:
        yield fake


@pytest.fixture
async def discord_api() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guild_count=1) as fake:
        yield fake


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster shared by the tests of one module (tests/pg.py); skips
    without PostgreSQL's binaries, except under CI=true."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster) -> str:
    """A fresh empty database on the module's cluster."""
    return pg_cluster.create_database()

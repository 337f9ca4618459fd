"""Fixtures for the nekos.best client tests: a FakeNekos on loopback, a real aiohttp session,
and clients pointed at the fake with fast retry settings. Everything started is closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.nekos import NekosClient, make_session
from tests.fakes.nekos import FakeNekos
from tests.nekos.helpers import CONTACT, VERSION, ClientFactory


@pytest.fixture
async def nekos() -> AsyncIterator[FakeNekos]:
    async with FakeNekos() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session() as s:
        yield s


@pytest.fixture
def make_client(session: aiohttp.ClientSession, nekos: FakeNekos) -> ClientFactory:
    """Build a client on the shared session, pointed at the fake, with short backoffs."""

    def factory(**kwargs: Any) -> NekosClient:
        kwargs.setdefault("base_url", nekos.base_url)
        kwargs.setdefault("app_version", VERSION)
        kwargs.setdefault("contact", CONTACT)
        kwargs.setdefault("backoff_base", 0.01)
        kwargs.setdefault("backoff_cap", 0.05)
        kwargs.setdefault("default_budget", 5.0)
        return NekosClient(session, **kwargs)

    return factory


@pytest.fixture
def client(make_client: ClientFactory) -> NekosClient:
    return make_client()

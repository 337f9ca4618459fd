"""Names shared by the nekos.best client tests (their fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from bot.nekos import NekosClient

CONTACT = "https://example.test/nekocord"
VERSION = "9.9.9"

#: The ``make_client`` fixture: ``make_client(**overrides)`` builds a client on the shared
#: session, pointed at the stand-in, with short backoffs.
ClientFactory = Callable[..., NekosClient]

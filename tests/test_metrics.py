"""The outcome label of a finished command, health from the gateway state, the store count."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.health import gateway_connected, shards_not_ready
from bot.logs import ThrottledLog
from bot.metrics import ERROR, OK, OUTCOMES, REFUSED, UPSTREAM, outcome_of
from bot.nekos import (
    BadRequest,
    Category,
    Kind,
    NoSuchCategory,
    NotFound,
    RateLimited,
    Unavailable,
    UnknownCategory,
    WrongKind,
)
from bot.responding import UserError
from bot.store import StoreError


def invoke_error(original: Exception) -> app_commands.CommandInvokeError:
    command: Any = SimpleNamespace(name="hug", qualified_name="hug")
    return app_commands.CommandInvokeError(command, original)


def http_error(status: int) -> discord.HTTPException:
    response: Any = SimpleNamespace(status=status, reason="refused")
    return discord.HTTPException(response, {"code": 10062, "message": "Unknown interaction"})


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, OK),
        (UserError("error_cooldown", seconds=3), REFUSED),
        (UserError("error_category_disabled", category="hug"), REFUSED),
        (invoke_error(UserError("error_target_opted_out", name="Bob")), REFUSED),
        (NoSuchCategory("nope"), REFUSED),
        (UnknownCategory("gone"), REFUSED),
        (WrongKind(Category("neko", Kind.IMAGE), Kind.GIF), REFUSED),
        (BadRequest("query too long"), REFUSED),
        (app_commands.CheckFailure(), REFUSED),
        (app_commands.NoPrivateMessage(), REFUSED),
        (Unavailable("nekos.best answered 500", status=500), UPSTREAM),
        (invoke_error(Unavailable("nekos.best timed out")), UPSTREAM),
        (RateLimited("category:hug", reset_at=time.time() + 12), UPSTREAM),
        (NotFound("no such asset"), UPSTREAM),
        (TimeoutError(), UPSTREAM),
        (StoreError("disk full"), ERROR),
        (invoke_error(StoreError("locked")), ERROR),
        (invoke_error(ZeroDivisionError()), ERROR),
        (KeyError("bug"), ERROR),
        (asyncio.CancelledError(), ERROR),
        (http_error(404), ERROR),
    ],
    ids=repr,
)
def test_outcome_of(error: BaseException | None, outcome: str) -> None:
    assert outcome_of(error) == outcome
    assert outcome in OUTCOMES


def client(*, closed: bool = False, **attributes: Any) -> Any:
    return SimpleNamespace(is_closed=lambda: closed, **attributes)


def sharded(shards: dict[int, Any], *, count: int | None = 2, ids: Any = None) -> Any:
    return client(shards=shards, shard_count=count, shard_ids=ids)


def shard(*, closed: bool) -> Any:
    return SimpleNamespace(is_closed=lambda: closed)


@pytest.mark.parametrize(
    ("bot", "connected"),
    [
        (client(ws=SimpleNamespace(open=True)), True),
        (client(ws=SimpleNamespace(open=False)), False),  # reconnecting
        (client(ws=None), False),  # not connected yet
        (client(closed=True, ws=SimpleNamespace(open=True)), False),
        (sharded({0: shard(closed=False), 1: shard(closed=False)}), True),
        (sharded({0: shard(closed=False), 1: shard(closed=True)}), False),
        (sharded({0: shard(closed=False)}), False),  # shard 1 not launched yet
        (sharded({1: shard(closed=False)}, ids=[1]), True),  # owns shard 1 only
        (sharded({1: shard(closed=False)}, ids=[0, 1]), False),
        (sharded({}, count=None), False),  # before discord.py launches the shards
    ],
)
def test_gateway_connected_needs_every_owned_shard(bot: Any, connected: bool) -> None:
    assert gateway_connected(bot) is connected


@pytest.mark.parametrize(
    ("bot", "waiting"),
    [
        (client(ws=SimpleNamespace(open=True), shard_count=None, ready_shards={0}), []),
        (client(ws=SimpleNamespace(open=True), shard_count=None, ready_shards=set()), [0]),
        # READY once, then the connection dropped: discord.py has not said so yet
        (client(ws=SimpleNamespace(open=False), shard_count=None, ready_shards={0}), [0]),
        (
            client(closed=True, ws=SimpleNamespace(open=True), shard_count=None, ready_shards={0}),
            [0],
        ),
        (sharded({0: shard(closed=False), 1: shard(closed=False)}, ids=None), [0, 1]),
    ],
)
def test_shards_not_ready_are_those_without_a_live_ready_session(bot: Any, waiting: list) -> None:
    if not hasattr(bot, "ready_shards"):
        bot.ready_shards = set()
    assert shards_not_ready(bot) == waiting
    if getattr(bot, "shards", None):
        bot.ready_shards = {1}
        assert shards_not_ready(bot) == [0]
        bot.ready_shards = {0, 1}
        assert shards_not_ready(bot) == []


def test_throttled_log_counts_every_failure_it_leaves_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("tests.metrics"), every=60, clock=lambda: now[0])
    for _ in range(3):
        throttled.error("read", "Could not read: %s", "locked")
    now[0] = 61.0
    throttled.error("write", "Could not write: %s", "locked")
    assert throttled.count == 4
    assert len(caplog.records) == 2

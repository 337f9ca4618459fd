"""Fault-injection suite: the real bot (in-process or as `python -m bot`) against the loopback
stand-ins, with nekos.best, Discord, the database or the process itself misbehaving.

Every case asserts what the user sees (a first response within 3 s, then a clear final answer)
and what is kept (counts neither lost nor doubled, no crash, no unhandled exception).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot import wording
from tests.fakes.discord import EPHEMERAL, FakeDiscord, InteractionRecord
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot, running_bot

WINDOW = 3.0  # Discord's first-response window
# Categories the bot warms at start-up (bot.app.WARM_CATEGORIES): their pool is full.
WARM = ("hug", "pat", "kiss", "cuddle", "neko", "waifu")

# Log lines that mean an exception escaped somewhere (discord.py's and asyncio's last resorts,
# and our own "this is a bug" path).
_UNHANDLED = re.compile(
    r"Ignoring exception|Unhandled error|Task exception was never retrieved|"
    r"exception was never retrieved|Unclosed|Traceback"
)


@dataclass
class LogCapture(logging.Handler):
    """Every record of every logger, plus what asyncio's loop exception handler saw."""

    records: list[logging.LogRecord] = field(default_factory=list)
    loop_errors: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.DEBUG)

    def __hash__(self) -> int:  # logging keeps handlers in sets/lists
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, logger: str | None = None, level: int = logging.DEBUG) -> list[str]:
        out = []
        for r in self.records:
            if r.levelno < level or (logger is not None and not r.name.startswith(logger)):
                continue
            out.append(r.getMessage())
        return out

    def unhandled(self) -> list[str]:
        """Records that show an exception escaped (or was treated as a bug)."""
        bad = []
        for r in self.records:
            text = r.getMessage()
            if r.levelno >= logging.ERROR and (r.exc_info or r.exc_text or _UNHANDLED.search(text)):
                cause = ""
                if r.exc_info and r.exc_info[1] is not None:
                    cause = f" <- {r.exc_info[1]!r}"
                elif r.exc_text:
                    cause = " <- " + r.exc_text.strip().splitlines()[-1]
                bad.append(f"{r.name}: {text}{cause}")
            elif _UNHANDLED.search(text) and "Ignoring exception" in text:
                bad.append(f"{r.name}: {text}")
        bad += [f"loop: {c.get('message')} {c.get('exception')!r}" for c in self.loop_errors]
        return bad

    def assert_clean(self) -> None:
        bad = self.unhandled()
        assert not bad, "unhandled exceptions:\n" + "\n".join(bad)


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
    async with running_bot(discord_api, nekos, data_dir) as running:
        await wait_pool(running, "hug")
        yield running


# -- helpers --------------------------------------------------------------------------------


async def wait_pool(
    running: RunningBot, category: str, minimum: int = 1, timeout: float = 5
) -> None:
    """Until the warm-up refill of `category` has landed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while running.bot.pool.size(category) < minimum:
        if loop.time() > deadline:
            raise TimeoutError(f"pool {category} never reached {minimum}")
        await asyncio.sleep(0.02)


def text_of(message: dict[str, Any] | None) -> str:
    """Everything a user reads in a message: content, embed titles, descriptions, fields."""
    if message is None:
        return ""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f.get('name')}: {f.get('value')}" for f in embed.get("fields") or []]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(p for p in parts if p)


def is_ephemeral(message: dict[str, Any] | None) -> bool:
    return bool(message is not None and int(message.get("flags") or 0) & EPHEMERAL)


def image_url(message: dict[str, Any] | None) -> str | None:
    for embed in (message or {}).get("embeds") or []:
        url = (embed.get("image") or {}).get("url")
        if url:
            return url
    return None


def message_text(key: str, **fields: Any) -> str:
    """A wording message with its placeholders as a regex-free prefix (up to the first field)."""
    template = (
        wording.message(key, **{k: "\x00" for k in fields}) if fields else wording.message(key)
    )
    return template.split("\x00", 1)[0]


ERROR_PREFIXES = {
    key: message_text(key, **fields)
    for key, fields in {
        "error_unavailable": {},
        "error_rate_limited": {"seconds": 0},
        "error_category_gone": {"category": ""},
        "error_internal": {},
        "error_restarting": {},
    }.items()
}


def says(message: dict[str, Any] | None, key: str) -> bool:
    return ERROR_PREFIXES[key] in text_of(message) if key in ERROR_PREFIXES else False


async def answered(record: InteractionRecord, timeout: float = 15) -> dict[str, Any]:
    """The final visible answer; asserts the 3 s rule and a single acknowledgement."""
    message = await record.wait_message(timeout=timeout)
    assert_first_response(record)
    return message


def assert_first_response(record: InteractionRecord) -> None:
    assert record.response_time is not None, record.describe()
    assert record.response_time < WINDOW, f"first response after {record.response_time:.2f}s"
    assert len(record.callbacks) == 1, record.describe()
    doubles = [r for r in record.rejected_callbacks if r.code == 40060]
    assert not doubles, f"acknowledged twice: {record.describe()}"


def bot_messages(discord_api: FakeDiscord) -> list[dict[str, Any]]:
    bot_id = str(discord_api.application_id)
    return [m for m in discord_api.messages.values() if (m.get("author") or {}).get("id") == bot_id]


def assert_no_pings(discord_api: FakeDiscord, allowed: Iterable[str | int] = ()) -> None:
    """No message the bot created pings @everyone/@here, a role, or anyone not `allowed`."""
    allowed_ids = {str(a) for a in allowed}
    for message in bot_messages(discord_api):
        assert not message["mention_everyone"], message
        assert not message["mention_roles"], message
        pinged = {u["id"] for u in message["mentions"]}
        assert pinged <= allowed_ids, (pinged - allowed_ids, message["content"])


def db_path(data_dir: Path) -> Path:
    return data_dir / "nekocord.db"


def db_rows(data_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the bot's database from outside (a separate connection, like an operator would)."""
    conn = sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def assert_db_consistent(data_dir: Path) -> None:
    """Integrity check plus the invariants the store keeps in one transaction."""
    conn = sqlite3.connect(db_path(data_dir), timeout=5)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # received totals equal the sums of the pair counts
        mismatched = conn.execute(
            "SELECT r.guild_id, r.target_id, r.action, r.count, SUM(a.count) FROM received_totals r"
            " LEFT JOIN action_counts a ON a.guild_id = r.guild_id AND a.target_id = r.target_id"
            " AND a.action = r.action GROUP BY r.guild_id, r.target_id, r.action"
            " HAVING r.count != SUM(a.count)"
        ).fetchall()
        assert not mismatched, mismatched
        # every counted action has its dedupe marker and vice versa
        counted = conn.execute("SELECT COALESCE(SUM(count), 0) FROM action_counts").fetchone()[0]
        markers = conn.execute("SELECT COUNT(*) FROM processed_actions").fetchone()[0]
        assert counted == markers, (counted, markers)
    finally:
        conn.close()

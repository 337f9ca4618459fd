"""Helpers shared by the test suites: reading what the bot answered, the 3 s rule, log capture,
looking into the database and the files on disk. Fixtures live in the ``conftest.py`` files;
everything a test imports lives here."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import wording
from tests.fakes.discord import EPHEMERAL, FakeDiscord, InteractionRecord

if TYPE_CHECKING:  # the harness starts the whole bot: tests of a part do not need it
    from bot.store import ActionCounts, Store
    from tests.harness import RunningBot

__all__ = ["EPHEMERAL"]

#: How long a test waits for an interaction's first response. Discord's window is 3 s
#: (docs/discord.md, "Interactions"), but that is a benchmark figure (bench/), not a test
#: assertion: on a loaded 2-core machine the event loop alone can pass it. The stand-in's
#: `callback_deadline` defaults to the same grace.
WINDOW = 10.0

# -- reading messages -------------------------------------------------------------------------


def text_of(message: dict[str, Any] | None) -> str:
    """Everything a user reads in a message: content and the texts of its embeds."""
    if message is None:
        return ""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts.append((embed.get("author") or {}).get("name") or "")
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


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for row in message.get("components") or [] for c in row.get("components", [])]


def message_text(key: str, **fields: Any) -> str:
    """A wording message up to its first placeholder: a prefix to look for in an answer."""
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
    """Whether ``message`` shows the error message ``key`` of ``bot.wording``."""
    return ERROR_PREFIXES[key] in text_of(message) if key in ERROR_PREFIXES else False


# -- answers and the 3 s rule -----------------------------------------------------------------


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


async def wait_pool(
    running: RunningBot, category: str, minimum: int = 1, timeout: float = 5
) -> None:
    """Until the warm-up refill of ``category`` has landed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while running.bot.pool.size(category) < minimum:
        if loop.time() > deadline:
            raise TimeoutError(f"pool {category} never reached {minimum}")
        await asyncio.sleep(0.02)


# -- pings ------------------------------------------------------------------------------------


def assert_no_pings_except(message: dict[str, Any], allowed: set[str]) -> None:
    """``message`` pings nobody but ``allowed`` (no @everyone/@here, no role)."""
    assert not message.get("mention_everyone"), message
    assert not message.get("mention_roles"), message
    pinged = {m["id"] for m in message.get("mentions") or []}
    assert pinged <= allowed, (pinged, allowed)


def bot_messages(discord_api: FakeDiscord) -> list[dict[str, Any]]:
    bot_id = str(discord_api.application_id)
    return [m for m in discord_api.messages.values() if (m.get("author") or {}).get("id") == bot_id]


def assert_no_pings(discord_api: FakeDiscord, allowed: Iterable[str | int] = ()) -> None:
    """No message the bot created pings @everyone/@here, a role, or anyone not ``allowed``."""
    allowed_ids = {str(a) for a in allowed}
    for message in bot_messages(discord_api):
        assert_no_pings_except(message, allowed_ids)


# -- logs -------------------------------------------------------------------------------------

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


# -- the database -----------------------------------------------------------------------------


def db_path(data_dir: Path) -> Path:
    return data_dir / "nekocord.db"


def db_rows(data_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the bot's database from outside (a separate connection, like an operator would)."""
    conn = sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def assert_consistent(path: Path) -> None:
    """The invariants a crash or a bug must never break, checked with plain sqlite3."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # received_totals is exactly the per-target sums of action_counts (both directions).
        mismatched = conn.execute(
            """
            WITH sums AS (
                SELECT guild_id, target_id, action, SUM(count) AS n
                FROM action_counts GROUP BY guild_id, target_id, action
            )
            SELECT s.guild_id, s.target_id, s.action, s.n, r.count FROM sums AS s
            LEFT JOIN received_totals AS r USING (guild_id, target_id, action)
            WHERE r.count IS NOT s.n
            UNION ALL
            SELECT r.guild_id, r.target_id, r.action, NULL, r.count FROM received_totals AS r
            WHERE NOT EXISTS (SELECT 1 FROM sums AS s WHERE s.guild_id = r.guild_id
                AND s.target_id = r.target_id AND s.action = r.action)
            """
        ).fetchall()
        assert mismatched == []
        assert conn.execute("SELECT COUNT(*) FROM action_counts WHERE count <= 0").fetchone() == (
            0,
        )
    finally:
        conn.close()


def assert_db_consistent(data_dir: Path) -> None:
    """:func:`assert_consistent` on the bot's database, and every counted action is marked
    processed exactly once (no forgetting happened in these tests)."""
    assert_consistent(db_path(data_dir))
    conn = sqlite3.connect(db_path(data_dir), timeout=5)
    try:
        counted = conn.execute("SELECT COALESCE(SUM(count), 0) FROM action_counts").fetchone()[0]
        markers = conn.execute("SELECT COUNT(*) FROM processed_actions").fetchone()[0]
        assert counted == markers, (counted, markers)
    finally:
        conn.close()


# Seconds the nekos.best breaker stays open in the fault tests (production: 30 s): tests that
# heal nekos.best wait this long instead of reaching into the breaker.
BREAKER_COOLDOWN = 1.0


# -- the store -------------------------------------------------------------------------------


async def record_one(
    store: Store, *, action_id: int, guild_id: int, action: str, actor_id: int, target_id: int
) -> ActionCounts:
    """`Store.record_action` for an action with one target: the counts of that target."""
    (counts,) = await store.record_action(
        action_id=action_id,
        guild_id=guild_id,
        action=action,
        actor_id=actor_id,
        target_ids=[target_id],
    )
    return counts


# -- files on disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process umask inside the block (a child process started there inherits it)."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def id_encodings(number: int) -> dict[str, bytes]:
    """The ways a stored id could appear in a file's bytes."""
    return {
        "int64 little-endian": struct.pack("<q", number),
        "int64 big-endian": struct.pack(">q", number),
        "decimal text": str(number).encode(),
    }


def traces(directory: Path, number: int) -> list[str]:
    """Every (file, encoding) under `directory` whose raw bytes hold `number`."""
    found = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        found += [
            f"{path.name}: {how}" for how, blob in id_encodings(number).items() if blob in raw
        ]
    return found


def imported_modules(path: Path, package: str, *, runtime_only: bool = False) -> list[str]:
    """The modules a source file of `package` imports (a relative import stands for `package`
    itself: it stays inside by construction). `runtime_only`: without the imports under
    `if TYPE_CHECKING:` (names for the type checker, never loaded)."""
    tree = ast.parse(path.read_text("utf-8"))
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if runtime_only and isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "" if node.level == 0 else package)
    return names

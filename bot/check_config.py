"""`python -m bot check-config`: the settings as the bot reads them (secrets redacted), and
whether the database, Discord and nekos.best answer. Nothing is written anywhere: the database
is only connected to (PostgreSQL) or opened read-only (an existing SQLite file).

Exit codes as the bot's: 0 all good; 1 something could not be reached; 2 a setting is invalid
(including a token or database credentials that were refused).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TextIO

import aiohttp
import asyncpg

from bot import __version__
from bot.config import Config, ConfigError, Setting, load_config, raw_settings
from bot.logs import REDACTED, RedactingFilter
from bot.nekos.client import NekosClient
from bot.nekos.errors import NekosError
from bot.store import StoreError, url_scheme
from bot.store.postgres import REJECTED, TRANSIENT, describe_url
from bot.store.sqlite_schema import parse_sqlite_url

__all__ = ["check_config", "main"]

EXIT_OK, EXIT_UNREACHABLE, EXIT_INVALID = 0, 1, 2
PROBE_TIMEOUT = 10.0
# A setting named like this is shown as redacted whatever it holds (a client secret added
# later is covered before anyone remembers `Config.secrets`).
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")


@dataclass(frozen=True)
class Outcome:
    code: int  # EXIT_OK, EXIT_UNREACHABLE or EXIT_INVALID
    text: str


def shown_settings(config: Config, get: Callable[[str], str | None]) -> list[tuple[str, str]]:
    """(variable, value as the bot uses it) for every setting, secrets redacted; a default is
    marked as such."""
    redactor = RedactingFilter(config.secrets())
    values = {f.name: getattr(config, f.name) for f in fields(Config)}
    rows = []
    for f in fields(Config):
        described: Setting = f.metadata["setting"]
        text = get(described.name)
        if text is None:
            default = described.default
            if default is None:
                rows.append((described.name, "(unset)"))
                continue
            text = default if isinstance(default, str) else default(values)
            text = f"{text} (default)"
        if any(word in described.name for word in SECRET_WORDS):
            text = REDACTED
        rows.append((described.name, redactor.redact(text)))
    return rows


async def probe_database(config: Config) -> Outcome:
    url = config.database_url
    if url_scheme(url) in ("postgresql", "postgres"):
        return await _probe_postgres(url)
    return _probe_sqlite(url)


async def _probe_postgres(url: str) -> Outcome:
    where = f"PostgreSQL at {describe_url(url)}"
    try:
        conn = await asyncpg.connect(url, timeout=PROBE_TIMEOUT)
    except REJECTED as exc:
        return Outcome(EXIT_INVALID, f"{where} refused the connection: {type(exc).__name__}")
    except TRANSIENT as exc:
        return Outcome(EXIT_UNREACHABLE, f"{where} is not reachable: {_reason(exc)}")
    except (asyncpg.PostgresError, ValueError) as exc:
        # asyncpg words a malformed URL with the URL itself: never repeat it.
        reason = type(exc).__name__ if isinstance(exc, asyncpg.PostgresError) else "malformed URL"
        return Outcome(EXIT_INVALID, f"cannot connect to {where}: {reason}")
    try:
        version = await conn.fetchval("SHOW server_version", timeout=PROBE_TIMEOUT)
    except TRANSIENT as exc:
        return Outcome(EXIT_UNREACHABLE, f"{where} went away: {_reason(exc)}")
    finally:
        conn.terminate()
    return Outcome(EXIT_OK, f"ok ({where}, server {version})")


def _probe_sqlite(url: str) -> Outcome:
    try:
        target = parse_sqlite_url(url)
    except StoreError as exc:
        return Outcome(EXIT_INVALID, str(exc))
    file = Path(target.path).expanduser().absolute()
    if not file.exists():
        if target.mode != "rwc":
            return Outcome(EXIT_INVALID, f"SQLite database {file} does not exist")
        parent = next((p for p in file.parents if p.exists()), None)
        if parent is None or not parent.is_dir():
            return Outcome(EXIT_INVALID, f"cannot create SQLite database {file}")
        return Outcome(EXIT_OK, f"ok (SQLite {file}, created at the first start)")
    try:
        with sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True, timeout=5) as conn:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error as exc:
        return Outcome(EXIT_INVALID, f"SQLite database {file} cannot be read: {exc}")
    return Outcome(EXIT_OK, f"ok (SQLite {file}, {tables} schema objects)")


async def probe_discord(config: Config) -> Outcome:
    """`GET /gateway/bot` with the token: proves both that Discord answers and the token."""
    url = f"{config.discord_api_base}/gateway/bot"
    headers = {
        "Authorization": f"Bot {config.discord_token}",
        "User-Agent": f"DiscordBot (https://github.com/nekocord, {__version__})",
    }
    try:
        async with _session() as session, session.get(url, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return Outcome(EXIT_UNREACHABLE, f"Discord is not reachable: {_reason(exc)}")
    if status == 200:
        return Outcome(EXIT_OK, f"ok ({config.discord_api_base}, token accepted)")
    if status == 401:
        return Outcome(EXIT_INVALID, "Discord rejected DISCORD_TOKEN (401)")
    return Outcome(EXIT_UNREACHABLE, f"Discord answered HTTP {status} to GET /gateway/bot")


async def probe_nekos(config: Config) -> Outcome:
    async with _session() as session:
        client = NekosClient(
            session,
            base_url=config.nekos_api_base,
            contact=config.nekos_contact,
            app_version=__version__,
        )
        try:
            categories = await client.endpoints(budget=PROBE_TIMEOUT)
        except (NekosError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Outcome(EXIT_UNREACHABLE, f"nekos.best did not answer: {_reason(exc)}")
    return Outcome(EXIT_OK, f"ok ({config.nekos_api_base}, {len(categories)} categories)")


async def check_config(config: Config) -> list[tuple[str, Outcome]]:
    """The three probes, concurrently."""
    probes: dict[str, Callable[[Config], Awaitable[Outcome]]] = {
        "database": probe_database,
        "Discord": probe_discord,
        "nekos.best": probe_nekos,
    }
    outcomes = await asyncio.gather(*(probe(config) for probe in probes.values()))
    return list(zip(probes, outcomes, strict=True))


def main(out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"nekocord check-config: configuration error: {exc}", file=err)
        return EXIT_INVALID
    print(f"nekocord {__version__}: settings as the bot reads them", file=out)
    rows = shown_settings(config, raw_settings(None, ".env"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}", file=out)
    results = asyncio.run(check_config(config))
    redactor = RedactingFilter(config.secrets())
    print("Reachable:", file=out)
    for what, outcome in results:
        print(f"  {what.ljust(10)}  {redactor.redact(outcome.text)}", file=out)
    code = max(outcome.code for _, outcome in results)
    verdict = {EXIT_OK: "all good", EXIT_UNREACHABLE: "something is unreachable"}
    print(verdict.get(code, "a setting is invalid"), file=out)
    return code


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT))


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__

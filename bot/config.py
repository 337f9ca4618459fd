"""Every setting of the bot: read once from the environment (and `.env`), validated, documented.

Each setting is declared once, as a field of `Config`: its variable, parser, default and help.
`load_config` reads them in that order; the README's configuration table and `.env.example` are
rendered from the same declarations (`bot.config_docs`) and a test keeps both equal to it.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

from dotenv import dotenv_values

from bot.cooldown import Rate, parse_rate
from bot.nekos.limits import CATEGORY_NAME
from bot.shard_settings import (
    ShardSettingError,
    parse_lease_seconds,
    parse_pod_index,
    parse_shard_claim,
    parse_shard_count,
    parse_shard_ids,
    parse_shards_per_pod,
    pod_shards,
)
from bot.urls import database_url, url_credentials

T = TypeVar("T")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")

# A default computed from the settings read before it (keyed by `Config` field name).
DerivedDefault = Callable[[Mapping[str, Any]], str]


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the variable, never its value."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class Invalid(Exception):
    """Raised by a parser; `problem` completes the line "<VARIABLE>: <problem>"."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class Setting:
    """One environment variable: how to read it and how the docs describe it."""

    name: str
    parse: Callable[[str], Any]
    help: str
    default: str | DerivedDefault | None  # raw text used when unset, parsed like user input
    required: str | None  # the problem reported when unset; None for an optional setting
    shown: str | None  # the README's Default cell when the default is not a literal

    @property
    def default_cell(self) -> str:
        if self.required is not None:
            return "(required)"
        if self.shown is not None:
            return self.shown
        return "(unset)" if self.default is None else f"`{self.default}`"

    def read(self, get: Callable[[str], str | None], earlier: Mapping[str, Any]) -> Any:
        text = get(self.name)
        if text is None:
            if self.required is not None:
                raise ConfigError(self.name, self.required)
            if self.default is None:
                return None
            text = self.default if isinstance(self.default, str) else self.default(earlier)
        try:
            return self.parse(text)
        except Invalid as exc:
            raise ConfigError(self.name, exc.problem) from None


@overload
def setting(name: str, parse: Callable[[str], T], *, help: str, required: str) -> T: ...
@overload
def setting(
    name: str,
    parse: Callable[[str], T],
    *,
    help: str,
    default: str | DerivedDefault,
    shown: str | None = None,
) -> T: ...
@overload
def setting(
    name: str, parse: Callable[[str], T], *, help: str, default: None, shown: str | None = None
) -> T | None: ...
def setting(
    name: str,
    parse: Callable[[str], Any],
    *,
    help: str,
    default: str | DerivedDefault | None = None,
    required: str | None = None,
    shown: str | None = None,
) -> Any:
    """Declares a `Config` field read from the variable `name`. The overloads make mypy check
    that `parse` yields the field's type (and that a setting without a default is Optional)."""
    if callable(default) and shown is None:
        raise TypeError(f"{name}: a computed default needs `shown` for the docs")
    described = Setting(name, parse, help, default, required, shown)
    return field(metadata={"setting": described})


# -- parsers: text (stripped, never blank) → value, or `Invalid` ------------------------------

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-.]{20,200}$")
_SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")


def _bot_token(text: str) -> str:
    if not _TOKEN_SHAPE.match(text):
        raise Invalid("does not look like a bot token")
    return text


def _server_id(text: str) -> int:
    if not _SNOWFLAKE.match(text):
        raise Invalid("must be a server ID (a number of 15-21 digits)")
    return int(text)


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            raise Invalid("is not a valid URL") from None
        if parts.scheme not in schemes or not parts.hostname:
            raise Invalid(f"must be a {' or '.join(schemes)} URL")
        return text.rstrip("/") if parts.scheme.startswith("http") else text

    return parse


def _discord_url(*schemes: str) -> Callable[[str], str]:
    parse_url = _url(*schemes)

    def parse(text: str) -> str:
        url = parse_url(text)
        if "@" in urlsplit(url).netloc:
            # discord.py sends the bot token as the Authorization header; aiohttp refuses a
            # request that also carries credentials in its URL.
            raise Invalid("must not contain a user name or password")
        return url

    return parse


def _contact(text: str) -> str:
    # It goes inside the parentheses of the User-Agent header.
    if len(text) > 200 or any(c in text for c in "\r\n()"):
        raise Invalid("must be one line without parentheses, at most 200 characters")
    return text


def _database_in_data_dir(earlier: Mapping[str, Any]) -> str:
    return f"sqlite:///{earlier['data_dir'] / 'nekocord.db'}"


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise Invalid(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _log_format(text: str) -> str:
    log_format = text.lower()
    if log_format not in LOG_FORMATS:
        raise Invalid(f"must be {' or '.join(LOG_FORMATS)}")
    return log_format


def _category_names(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    if len(names) > 5 or any(not CATEGORY_NAME.fullmatch(n) for n in names):
        raise Invalid("must be up to 5 category names separated by commas")
    return names


def _hours_as_seconds(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0.01 <= hours <= 24 * 7:  # also refuses nan and inf
        raise Invalid("must be a number of hours between 0.01 and 168")
    return hours * 3600


def _rate(text: str) -> Rate | None:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:  # also refuses nan and inf
        raise Invalid("must be a number of seconds between 0 and 3600")
    return seconds


def _pool_size(text: str) -> int:
    size = int(text) if text.isdigit() else 0
    if not 1 <= size <= 100:
        raise Invalid("must be a number of connections from 1 to 100")
    return size


def _problem(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A parser from another module, whose ValueError says the problem."""

    def parse_or_explain(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    return parse_or_explain


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise Invalid("must be a port number from 0 to 65535 (0: any free port)")
    return port


def _host(text: str) -> str:
    if any(c.isspace() or c in "/@" for c in text):
        raise Invalid("must be an IP address or a host name")
    return text


@dataclass(frozen=True)
class Config:
    discord_token: str = setting(
        "DISCORD_TOKEN",
        _bot_token,
        required="is not set (copy it from the developer portal)",
        help="The bot token from the Discord developer portal (Bot → Reset Token).",
    )
    dev_guild_id: int | None = setting(
        "DEV_GUILD_ID",
        _server_id,
        default=None,
        help="Register commands in this one server only, where they appear at once (for testing).",
    )
    nekos_api_base: str = setting(
        "NEKOS_API_BASE",
        _url("http", "https"),
        default="https://nekos.best/api/v2",
        help="The nekos.best API base URL.",
    )
    nekos_contact: str | None = setting(
        "NEKOS_CONTACT",
        _contact,
        default=None,
        shown="(the bot's invite link)",
        help="Contact sent in the User-Agent to nekos.best (a URL or an e-mail address).",
    )
    data_dir: Path = setting(
        "DATA_DIR",
        Path,
        default="./data",
        help="Category copy, command hash, heartbeat and database.",
    )
    database_url: str = setting(
        "DATABASE_URL",
        _problem(database_url),
        default=_database_in_data_dir,
        shown="`sqlite:///<DATA_DIR>/nekocord.db`",
        help="Where counters, opt-outs and server settings are stored: a SQLite file, or "
        "PostgreSQL as `postgresql://user:password@host:5432/database` for several processes.",
    )
    database_pool_size: int = setting(
        "DATABASE_POOL_SIZE",
        _pool_size,
        default="10",
        help="PostgreSQL only: at most this many connections per process.",
    )
    discord_api_base: str = setting(
        "DISCORD_API_BASE",
        _discord_url("http", "https"),
        default="https://discord.com/api/v10",
        help="Discord REST base URL (point it at a REST proxy such as nirn-proxy).",
    )
    discord_gateway_url: str = setting(
        "DISCORD_GATEWAY_URL",
        _discord_url("ws", "wss"),
        default="wss://gateway.discord.gg/",
        help="Discord gateway URL (for a gateway proxy).",
    )
    log_level: str = setting(
        "LOG_LEVEL",
        _log_level,
        default="INFO",
        help=f"One of {', '.join(LOG_LEVELS)}.",
    )
    log_format: str = setting(
        "LOG_FORMAT",
        _log_format,
        default="text",
        help="`text`, or `json` for one JSON object per line (time, level, logger, message, "
        "shard).",
    )
    context_menu_actions: tuple[str, ...] = setting(
        "CONTEXT_MENU_ACTIONS",
        _category_names,
        default="hug,pat,cuddle,kiss,poke",
        help="Actions offered when right-clicking a member (Apps menu), comma-separated, "
        "at most 5.",
    )
    category_refresh_seconds: float = setting(
        "CATEGORY_REFRESH_HOURS",
        _hours_as_seconds,
        default="6",
        help="How often the category list is refreshed from nekos.best.",
    )
    cooldown: Rate | None = setting(
        "COOLDOWN",
        _rate,
        default="10/20",
        help="Per member and server (per user in DMs): at most N commands that fetch from "
        "nekos.best (actions, images, buttons, search, credits) per S seconds, as `N/S`; "
        "`0` for no limit.",
    )
    search_cooldown: Rate | None = setting(
        "SEARCH_COOLDOWN",
        _rate,
        default="3/15",
        help="Per member, on top of `COOLDOWN`: at most N `/search` per S seconds (`N/S`; "
        "`0` for no limit). Kept per process.",
    )
    startup_retry_seconds: float = setting(
        "STARTUP_RETRY_SECONDS",
        _seconds,
        default="60",
        help="How long to keep retrying at start when Discord or PostgreSQL cannot be reached "
        "(then exit 1).",
    )
    metrics_port: int | None = setting(
        "METRICS_PORT",
        _port,
        default=None,
        help="Serve Prometheus `/metrics` and the probes `/livez` and `/readyz` on this port "
        "(one per process); unset: off.",
    )
    metrics_host: str = setting(
        "METRICS_HOST",
        _host,
        default="127.0.0.1",
        help="The address `METRICS_PORT` listens on (`0.0.0.0` to be scraped from outside).",
    )
    shard_count: int | None = setting(
        "SHARD_COUNT",
        _problem(parse_shard_count),
        default=None,
        help="Run the bot in this many shards (Discord requires shards past 2,500 servers); "
        "alone: this process runs all of them. Unset: one connection, no sharding.",
    )
    shard_ids: tuple[int, ...] | None = setting(
        "SHARD_IDS",
        _problem(parse_shard_ids),
        default=None,
        help="With `SHARD_COUNT`: the shards this process runs, as `a-b`, `a,b,c` or one id "
        "(from 0). Several processes share one PostgreSQL `DATABASE_URL`.",
    )
    shards_per_pod: int | None = setting(
        "SHARDS_PER_POD",
        _problem(parse_shards_per_pod),
        default=None,
        help="Instead of `SHARD_IDS` (Kubernetes): pod i of `SHARD_COUNT` / k runs shards "
        "i·k … i·k+k−1, i being `POD_INDEX` or else the host name's last `-N`.",
    )
    pod_index: int | None = setting(
        "POD_INDEX",
        _problem(parse_pod_index),
        default=None,
        shown="(the host name's `-N`)",
        help="With `SHARDS_PER_POD`: this pod's index (from 0); the Helm chart sets it from "
        "the label `apps.kubernetes.io/pod-index`.",
    )
    shard_claim: str = setting(
        "SHARD_CLAIM",
        _problem(parse_shard_claim),
        default="wait",
        help="PostgreSQL only: when another process already runs this one's shards, `wait` "
        "for them (one log line a minute) or `exit` (code 2). A shard never runs twice.",
    )
    shard_lease_seconds: float = setting(
        "SHARD_LEASE_SECONDS",
        _problem(parse_lease_seconds),
        default="60",
        help="PostgreSQL only: a process's claim on its shards, renewed while it runs, expires "
        "this long after it died; then another process takes them over. A process cut off "
        "from the database for 3/4 of it stops (exit 1), so it also bounds the outage a "
        "process rides out.",
    )

    def secrets(self) -> list[str]:
        """What no log line may show: the token, and the credentials in any URL setting (as
        written, decoded, and as the Basic auth header aiohttp makes of them)."""
        urls = (self.nekos_api_base, self.database_url, self.discord_api_base)
        return [self.discord_token, *(s for url in urls for s in url_credentials(url))]

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback
        return f"Config(dev_guild_id={self.dev_guild_id}, data_dir={str(self.data_dir)!r}, ...)"


# (Config field name, its setting), in declaration order.
_FIELDS: tuple[tuple[str, Setting], ...] = tuple(
    (f.name, f.metadata["setting"]) for f in fields(Config)
)
SETTINGS: tuple[Setting, ...] = tuple(s for _, s in _FIELDS)


# -- reading ----------------------------------------------------------------------------------


def raw_settings(
    environ: Mapping[str, str] | None, dotenv_path: str | os.PathLike[str] | None
) -> Callable[[str], str | None]:
    """A lookup of raw settings: the process environment wins over `.env`; blank is unset."""
    values: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = values.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    return get


def load_config(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | os.PathLike[str] | None = ".env"
) -> Config:
    """Read and validate every setting. The process environment wins over `.env`."""
    get = raw_settings(environ, dotenv_path)
    values: dict[str, Any] = {}
    for name, described in _FIELDS:
        values[name] = described.read(get, values)
    hostname = get("HOSTNAME") or socket.gethostname()  # Kubernetes sets it to the pod's name
    shards = (values["shard_count"], values["shard_ids"], values["shards_per_pod"])
    try:
        values["shard_ids"], values["pod_index"] = pod_shards(
            *shards, values["pod_index"], hostname, values["database_url"]
        )
    except ShardSettingError as exc:
        raise ConfigError(exc.variable, exc.problem) from None
    return Config(**values)


def data_dir_setting(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | os.PathLike[str] | None = ".env"
) -> Path:
    """DATA_DIR alone (the health check needs nothing else, not even the token)."""
    data_dir: Path = dict(_FIELDS)["data_dir"].read(raw_settings(environ, dotenv_path), {})
    return data_dir

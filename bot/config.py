"""Every setting of the bot: read once from the environment (and `.env`), validated, documented.

The table in README.md and `.env.example` mirror `SETTINGS` below; a test keeps them in step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

DEFAULT_NEKOS_API_BASE = "https://nekos.best/api/v2"
DEFAULT_DISCORD_API_BASE = "https://discord.com/api/v10"
DEFAULT_DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"
DEFAULT_CONTEXT_MENU_ACTIONS = ("hug", "pat", "cuddle", "kiss", "poke")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


# The documented settings, in README order. `default` is what the README shows.
SETTINGS: tuple[Setting, ...] = (
    Setting("DISCORD_TOKEN", "(required)", "The bot token from the Discord developer portal."),
    Setting(
        "DEV_GUILD_ID",
        "(unset)",
        "Register commands in this one server only, where they appear at once (for testing).",
    ),
    Setting("NEKOS_API_BASE", DEFAULT_NEKOS_API_BASE, "The nekos.best API base URL."),
    Setting(
        "NEKOS_CONTACT",
        "(the bot's invite link)",
        "Contact sent in the User-Agent to nekos.best (a URL or an e-mail address).",
    ),
    Setting("DATA_DIR", "./data", "Category copy, command hash, heartbeat and database."),
    Setting(
        "DATABASE_URL",
        "sqlite:///<DATA_DIR>/nekocord.db",
        "Where counters and opt-outs are stored (SQLite).",
    ),
    Setting(
        "DISCORD_API_BASE",
        DEFAULT_DISCORD_API_BASE,
        "Discord REST base URL (point it at a REST proxy such as nirn-proxy).",
    ),
    Setting(
        "DISCORD_GATEWAY_URL",
        DEFAULT_DISCORD_GATEWAY_URL,
        "Discord gateway URL (for a gateway proxy).",
    ),
    Setting("LOG_LEVEL", "INFO", "One of DEBUG, INFO, WARNING, ERROR, CRITICAL."),
    Setting(
        "CONTEXT_MENU_ACTIONS",
        ",".join(DEFAULT_CONTEXT_MENU_ACTIONS),
        "Actions offered when right-clicking a member (Apps menu), comma-separated, at most 5.",
    ),
    Setting(
        "CATEGORY_REFRESH_HOURS",
        "6",
        "How often the category list is refreshed from nekos.best.",
    ),
)


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the variable, never its value."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Config:
    discord_token: str
    dev_guild_id: int | None
    nekos_api_base: str
    nekos_contact: str | None
    data_dir: Path
    database_url: str
    discord_api_base: str
    discord_gateway_url: str
    log_level: str
    context_menu_actions: tuple[str, ...]
    category_refresh_seconds: float

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback
        return f"Config(dev_guild_id={self.dev_guild_id}, data_dir={str(self.data_dir)!r}, ...)"


_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-.]{20,200}$")
_SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")
_CATEGORY_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")


def _reader(
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


def data_dir_setting(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | os.PathLike[str] | None = ".env"
) -> Path:
    """DATA_DIR alone (the health check needs nothing else, not even the token)."""
    return _data_dir(_reader(environ, dotenv_path))


def _data_dir(get: Callable[[str], str | None]) -> Path:
    return Path(get("DATA_DIR") or "./data")


def load_config(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | os.PathLike[str] | None = ".env"
) -> Config:
    """Read and validate every setting. The process environment wins over `.env`."""
    get = _reader(environ, dotenv_path)

    token = get("DISCORD_TOKEN")
    if token is None:
        raise ConfigError("DISCORD_TOKEN", "is not set (copy it from the developer portal)")
    if not _TOKEN_SHAPE.match(token):
        raise ConfigError("DISCORD_TOKEN", "does not look like a bot token")

    dev_guild_id = None
    if (raw := get("DEV_GUILD_ID")) is not None:
        if not _SNOWFLAKE.match(raw):
            raise ConfigError("DEV_GUILD_ID", "must be a server ID (a number of 15-21 digits)")
        dev_guild_id = int(raw)

    nekos_api_base = _url(
        "NEKOS_API_BASE", get("NEKOS_API_BASE") or DEFAULT_NEKOS_API_BASE, ("http", "https")
    )
    discord_api_base = _url(
        "DISCORD_API_BASE", get("DISCORD_API_BASE") or DEFAULT_DISCORD_API_BASE, ("http", "https")
    )
    gateway = _url(
        "DISCORD_GATEWAY_URL",
        get("DISCORD_GATEWAY_URL") or DEFAULT_DISCORD_GATEWAY_URL,
        ("ws", "wss"),
    )

    contact = get("NEKOS_CONTACT")
    if contact is not None and (len(contact) > 200 or any(c in contact for c in "\r\n()")):
        raise ConfigError(
            "NEKOS_CONTACT", "must be one line without parentheses, at most 200 characters"
        )

    data_dir = _data_dir(get)
    database_url = get("DATABASE_URL") or f"sqlite:///{data_dir / 'nekocord.db'}"

    log_level = (get("LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}")

    menu_raw = get("CONTEXT_MENU_ACTIONS")
    if menu_raw is None:
        menu = DEFAULT_CONTEXT_MENU_ACTIONS
    else:
        menu = tuple(dict.fromkeys(p.strip().lower() for p in menu_raw.split(",") if p.strip()))
        if len(menu) > 5 or any(not _CATEGORY_NAME.match(p) for p in menu):
            raise ConfigError(
                "CONTEXT_MENU_ACTIONS", "must be up to 5 category names separated by commas"
            )

    try:
        refresh_hours = float(get("CATEGORY_REFRESH_HOURS") or "6")
    except ValueError:
        refresh_hours = -1.0
    if not 0.01 <= refresh_hours <= 24 * 7:
        raise ConfigError(
            "CATEGORY_REFRESH_HOURS", "must be a number of hours between 0.01 and 168"
        )

    return Config(
        discord_token=token,
        dev_guild_id=dev_guild_id,
        nekos_api_base=nekos_api_base,
        nekos_contact=contact,
        data_dir=data_dir,
        database_url=database_url,
        discord_api_base=discord_api_base,
        discord_gateway_url=gateway,
        log_level=log_level,
        context_menu_actions=menu,
        category_refresh_seconds=refresh_hours * 3600,
    )


def _url(variable: str, value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ConfigError(variable, "is not a valid URL") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(variable, f"must be a {' or '.join(schemes)} URL")
    return value.rstrip("/") if parts.scheme.startswith("http") else value

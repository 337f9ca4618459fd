"""A nekos.best client. Imports nothing of Discord, so it could be published on its own."""

from bot.nekos.breaker import BreakerState, CircuitBreaker
from bot.nekos.catalog import Catalog, load_snapshot
from bot.nekos.client import (
    DEFAULT_BASE_URL,
    ClientStats,
    NekosClient,
    asset_path,
    is_asset_url,
    make_session,
)
from bot.nekos.errors import (
    BadRequest,
    Forbidden,
    NekosError,
    NoSuchCategory,
    NotFound,
    RateLimited,
    Unavailable,
    UnknownCategory,
    WrongKind,
)
from bot.nekos.models import Category, Credit, Kind, Result
from bot.nekos.pool import Pool
from bot.nekos.ratelimit import RateLimiter, parse_limit, parse_reset

__all__ = [
    "DEFAULT_BASE_URL",
    "BadRequest",
    "BreakerState",
    "Catalog",
    "Category",
    "CircuitBreaker",
    "ClientStats",
    "Credit",
    "Forbidden",
    "Kind",
    "NekosClient",
    "NekosError",
    "NoSuchCategory",
    "NotFound",
    "Pool",
    "RateLimited",
    "RateLimiter",
    "Result",
    "Unavailable",
    "UnknownCategory",
    "WrongKind",
    "asset_path",
    "is_asset_url",
    "load_snapshot",
    "make_session",
    "parse_limit",
    "parse_reset",
]

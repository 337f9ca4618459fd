"""A nekos.best client. Imports nothing of Discord, so it could be published on its own."""

from bot.nekos.assets import DEFAULT_BASE_URL, asset_path, is_asset_url
from bot.nekos.breaker import BreakerState, CircuitBreaker
from bot.nekos.budget import SharedBudget
from bot.nekos.catalog import Catalog, load_snapshot
from bot.nekos.client import NekosClient
from bot.nekos.errors import (
    BadRequest,
    CategoryError,
    Forbidden,
    NekosError,
    NoSuchCategory,
    NotFound,
    RateLimited,
    Unavailable,
    UnknownCategory,
    WrongKind,
)
from bot.nekos.limits import (
    CATEGORY_NAME,
    CATEGORY_NAME_MAX,
    CATEGORY_NAME_PATTERN,
    MAX_AMOUNT,
    QUERY_MAX,
    QUERY_MIN,
)
from bot.nekos.models import Category, Credit, Kind, Result
from bot.nekos.pool import Pool
from bot.nekos.ratelimit import RateLimiter, parse_limit, parse_reset
from bot.nekos.transport import ATTEMPT_TIMEOUT, DEFAULT_BUDGET, ClientStats, make_session

__all__ = [
    "ATTEMPT_TIMEOUT",
    "CATEGORY_NAME",
    "CATEGORY_NAME_MAX",
    "CATEGORY_NAME_PATTERN",
    "DEFAULT_BASE_URL",
    "DEFAULT_BUDGET",
    "MAX_AMOUNT",
    "QUERY_MAX",
    "QUERY_MIN",
    "BadRequest",
    "BreakerState",
    "Catalog",
    "Category",
    "CategoryError",
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
    "SharedBudget",
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

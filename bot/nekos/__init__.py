"""A nekos.best v2 client. Imports nothing of Discord, so it could be published on its own."""

from bot.nekos.errors import (
    BadRequest,
    NekosError,
    NotFound,
    RateLimited,
    Unavailable,
    UnknownCategory,
)
from bot.nekos.models import Category, Credit, Kind, Result

__all__ = [
    "BadRequest",
    "Category",
    "Credit",
    "Kind",
    "NekosError",
    "NotFound",
    "RateLimited",
    "Result",
    "Unavailable",
    "UnknownCategory",
]

"""Typed errors of the nekos.best client. Callers catch `NekosError` and its subclasses."""

from __future__ import annotations

import time

from bot.nekos.models import Category, Kind


class NekosError(Exception):
    """Base class of every error the nekos.best client raises."""


class BadRequest(NekosError):
    """Our own validation refused the call before any request was sent (or, rarely,
    nekos.best answered 400)."""


class Forbidden(NekosError):
    """nekos.best answered 403: it refused our User-Agent or banned this address.
    Never retried: asking again would only make a ban likelier."""


class CategoryError(NekosError):
    """A category name that cannot be served; `category` is the name asked for."""

    category: str


class UnknownCategory(CategoryError):
    """nekos.best doesn't have it (any more): it answered 404, or the catalog saw it removed."""

    def __init__(self, category: str) -> None:
        super().__init__(f"unknown category: {category!r}")
        self.category = category


class NoSuchCategory(CategoryError):
    """The name never was a nekos.best category the catalog knew."""

    def __init__(self, category: str) -> None:
        super().__init__(f"no such category: {category!r}")
        self.category = category


class WrongKind(CategoryError):
    """The category exists but serves the other kind (a GIF category where images were asked
    for, or the reverse)."""

    def __init__(self, category: Category, expected: Kind) -> None:
        super().__init__(f"{category.name!r} serves {category.kind}, not {expected}")
        self.category = category.name
        self.expected = expected
        self.actual = category.kind


class NotFound(NekosError):
    """The asset (file endpoint) does not exist."""


class RateLimited(NekosError):
    """A bucket is exhausted until `reset_at` (a `time.time()` instant)."""

    def __init__(self, bucket: str, reset_at: float) -> None:
        super().__init__(f"rate limited on {bucket!r} for {max(0.0, reset_at - time.time()):.1f}s")
        self.bucket = bucket
        self.reset_at = reset_at

    @property
    def retry_after(self) -> float:
        """Seconds until the bucket resets (never negative)."""
        return max(0.0, self.reset_at - time.time())


class Unavailable(NekosError):
    """nekos.best could not give a usable answer: 5xx, timeout, connection error, garbage,
    an open circuit breaker, or no time left in the caller's budget."""

    def __init__(self, message: str = "nekos.best is unavailable", *, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status when there was an answer

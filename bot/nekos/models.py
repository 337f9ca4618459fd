"""Typed values of the nekos.best v2 API. Every metadata field is optional."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What a category serves: still images (png) or animated GIFs."""

    IMAGE = "image"
    GIF = "gif"

    @property
    def search_type(self) -> int:
        """The `type` parameter of `/search`: 1 for images, 2 for GIFs."""
        return 1 if self is Kind.IMAGE else 2


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    format: str  # "png" or "gif", as /endpoints reports it

    @property
    def kind(self) -> Kind:
        return Kind.GIF if self.format == "gif" else Kind.IMAGE


@dataclass(frozen=True, slots=True)
class Credit:
    """Who made it: the anime (GIFs) or the artist and source (images)."""

    anime_name: str | None = None
    artist_name: str | None = None
    artist_href: str | None = None
    source_url: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.anime_name or self.artist_name or self.artist_href or self.source_url)


@dataclass(frozen=True, slots=True)
class Result:
    """One asset: its nekos.best URL (never re-hosted) and its credit."""

    url: str
    credit: Credit = Credit()
    category: str | None = None
    width: int | None = None
    height: int | None = None

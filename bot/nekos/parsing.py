"""Turning nekos.best answers into typed values: JSON bodies (`/endpoints`, results) and the
URL-encoded credit headers of the file endpoint. Anything unusable raises `Unavailable`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import aiohttp

from bot.nekos.errors import Unavailable
from bot.nekos.limits import CATEGORY_NAME
from bot.nekos.models import Category, Credit, Result

__all__ = ["parse_credit_headers", "parse_endpoints", "parse_results", "read_json"]

log = logging.getLogger(__name__)

MAX_JSON = 2 * 1024 * 1024  # an /endpoints or results body is a few KiB; more is garbage
CREDIT_HEADERS = ("anime_name", "artist_name", "artist_href", "source_url")


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _dimension(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _decode_header(value: str | None) -> str | None:
    """Decode a URL-encoded credit header: `+` is a space, `%E3%81%BD` is UTF-8."""
    if value is None:
        return None
    # aiohttp hands raw non-ASCII header bytes over as surrogate escapes: recover them.
    raw = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _text(unquote_plus(raw, encoding="utf-8", errors="replace"))


def parse_credit_headers(headers: Mapping[str, str]) -> Credit:
    """The credit the file endpoint reports in its headers (each one optional)."""
    return Credit(**{name: _decode_header(headers.get(name)) for name in CREDIT_HEADERS})


def _category_of(url: str) -> str | None:
    parts = urlsplit(url).path.rsplit("/", 2)
    if len(parts) == 3 and CATEGORY_NAME.fullmatch(parts[1]):
        return parts[1]
    return None


def parse_results(data: Any, category: str | None = None) -> list[Result]:
    """Turn a `{"results": [...]}` body into Results; anything else raises Unavailable.

    A result needs a URL; every other field is optional and unknown fields are ignored.
    """
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise Unavailable("nekos.best answered an unexpected shape (no results list)", status=200)
    out: list[Result] = []
    for item in results:
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise Unavailable("nekos.best answered a result without a usable url", status=200)
        dims = item.get("dimensions")
        width = height = None
        if isinstance(dims, dict):
            width, height = _dimension(dims.get("width")), _dimension(dims.get("height"))
        credit = Credit(
            anime_name=_text(item.get("anime_name")),
            artist_name=_text(item.get("artist_name")),
            artist_href=_text(item.get("artist_href")),
            source_url=_text(item.get("source_url")),
        )
        out.append(
            Result(
                url=url,
                credit=credit,
                category=category or _category_of(url),
                width=width,
                height=height,
            )
        )
    return out


def parse_endpoints(data: Any) -> dict[str, Category]:
    """Turn an `/endpoints` body into categories, in the order given.

    Entries that are not `name: {"format": str}` are skipped; a body with none usable raises
    Unavailable.
    """
    if not isinstance(data, dict):
        raise Unavailable("nekos.best /endpoints answered an unexpected shape", status=200)
    categories: dict[str, Category] = {}
    for name, info in data.items():
        fmt = _text(info.get("format") if isinstance(info, dict) else None)
        if not isinstance(name, str) or not CATEGORY_NAME.fullmatch(name) or fmt is None:
            log.debug("ignoring malformed /endpoints entry %r: %r", name, info)
            continue
        categories[name] = Category(name=name, format=fmt.lower())
    if not categories:
        raise Unavailable("nekos.best /endpoints listed no usable category", status=200)
    return categories


async def read_json(resp: aiohttp.ClientResponse) -> Any:
    """The answer's JSON body; an oversized or invalid one raises Unavailable."""
    if resp.content_length is not None and resp.content_length > MAX_JSON:
        raise Unavailable("nekos.best answered an oversized body", status=resp.status)
    body = await resp.read()
    if len(body) > MAX_JSON:
        raise Unavailable("nekos.best answered an oversized body", status=resp.status)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unavailable("nekos.best answered invalid JSON", status=resp.status) from exc

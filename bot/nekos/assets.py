"""Which URLs are nekos.best assets. `NekosClient.credit()` fetches the URL it is given, so
this check is what keeps a user-supplied URL from steering a request anywhere else."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from bot.nekos.limits import CATEGORY_NAME_PATTERN

__all__ = ["DEFAULT_BASE_URL", "asset_path", "is_asset_url"]

DEFAULT_BASE_URL = "https://nekos.best/api/v2"
_ASSET_REST = re.compile(rf"({CATEGORY_NAME_PATTERN})/([A-Za-z0-9_-]+)\.(png|gif)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def asset_path(url: str, base_url: str = DEFAULT_BASE_URL) -> tuple[str, str] | None:
    """`(category, filename)` when `url` is a nekos.best asset under `base_url`, else None.

    Strict on purpose: anything that could steer the request elsewhere (another host or port,
    userinfo, percent-encoded or backslashed path tricks, dot segments) is refused. The query
    and fragment are ignored (never sent).
    """
    if not isinstance(url, str) or len(url) > 2048 or not url.isascii():
        return None
    if "\\" in url or any(ch <= " " or ch == "\x7f" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        base = urlsplit(base_url)
        port = parts.port
        base_port = base.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme != base.scheme.lower() or scheme not in _DEFAULT_PORTS:
        return None
    if "@" in parts.netloc:
        return None
    host, base_host = parts.hostname, base.hostname
    if not host or not base_host or host.lower() != base_host.lower():
        return None
    if (port or _DEFAULT_PORTS[scheme]) != (base_port or _DEFAULT_PORTS[scheme]):
        return None
    path = parts.path
    if "%" in path:
        return None
    prefix = base.path.rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    m = _ASSET_REST.fullmatch(path[len(prefix) :])
    if m is None:
        return None
    return m.group(1), f"{m.group(2)}.{m.group(3)}"


def is_asset_url(url: str, base_url: str = DEFAULT_BASE_URL) -> bool:
    """True only for a nekos.best asset URL under `base_url` (see `asset_path`)."""
    return asset_path(url, base_url) is not None

"""Credentials in URLs (NEKOS_API_BASE, DATABASE_URL): the forms to redact from logs, and the
URL as users may see it; and DATABASE_URL's own checks (for `bot.config`)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

__all__ = ["database_url", "url_credentials", "without_credentials"]


def url_credentials(url: str) -> list[str]:
    """The secret forms of a URL's userinfo: the password, `user:password` and its base64 (the
    Basic auth header aiohttp builds from it), both as written and percent-decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    # libpq-style URLs may carry the password as a parameter (postgresql://h/db?password=…).
    for key, value in parse_qsl(parts.query):
        if key.lower() == "password" and value:
            found += [value, quote(value, safe="")]
    if "@" not in parts.netloc:
        return [secret for secret in found if len(secret) >= 3]
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" not in userinfo and parts.scheme.lower() in ("postgresql", "postgres"):
        # A database user name alone (trust auth, .pgpass) is no secret; redacting it would
        # hide every "nekocord" in the logs. (Over HTTP a bare userinfo may be a token.)
        return [secret for secret in found if len(secret) >= 3]
    for form in dict.fromkeys((userinfo, unquote(userinfo))):
        password = form.partition(":")[2]
        found += [form, base64.b64encode(form.encode()).decode()]
        if password:
            found.append(password)
    return [secret for secret in found if len(secret) >= 3]


def without_credentials(url: str) -> str:
    """The URL as users and logs may see it: no userinfo."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


# -- the settings, in README order ---------------------------------------------------------------


def _postgres_url(text: str) -> str:
    # Checked here so that a typo exits 2 at once instead of being retried as "unreachable".
    # Messages never repeat the URL: it may hold a password.
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
        if parts.fragment:  # an unescaped '#' (in a password?) cuts the URL short
            raise ValueError
    except ValueError:
        raise ValueError("is not a valid PostgreSQL URL") from None
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("must name a host: postgresql://user:password@host:5432/database")
    return text


def database_url(text: str) -> str:
    """DATABASE_URL as given, or ValueError with the problem (never the URL)."""
    if text.partition("://")[0].lower() in ("postgresql", "postgres"):
        return _postgres_url(text)
    # An opt-out must survive a restart: a member who opted out must never be pinged again.
    lowered = text.lower()
    if ":memory:" in lowered or "mode=memory" in lowered or lowered.rstrip("/") == "sqlite:":
        raise ValueError(
            "an in-memory database would forget opt-outs at every restart: "
            "name a file (sqlite:///path/to/nekocord.db)"
        )
    return text

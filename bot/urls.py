"""Credentials in URLs (NEKOS_API_BASE, DATABASE_URL): the forms to redact from logs, and the
URL as users may see it."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

__all__ = ["url_credentials", "without_credentials"]


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

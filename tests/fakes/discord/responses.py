"""Answers shaped like Discord's: JSON errors with a numeric ``code``, and form errors (50035)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py only parses a body whose Content-Type is exactly "application/json";
    # web.json_response would add "; charset=utf-8".
    out = {"Content-Type": "application/json"}
    out.update(headers or {})
    return web.Response(status=status, body=json.dumps(data).encode(), headers=out)


def error(status: int, message: str, code: int = 0, **extra: Any) -> web.Response:
    return json_response({"message": message, "code": code, **extra}, status)


def plain_error(status: int) -> web.Response:
    """Discord's answer for an error without a specific code, e.g. ``404: Not Found``."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return error(status, f"{status}: {reason}")


def no_content() -> web.Response:
    return web.Response(status=204)


def set_path(errors: dict[str, Any], path: str, code: str, message: str) -> None:
    """Add one error at ``path`` ("embeds.0.title") of a form-error tree, as Discord nests it."""
    node = errors
    for part in path.split("."):
        node = node.setdefault(part, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def form_error(errors: dict[str, Any]) -> web.Response:
    return error(400, "Invalid Form Body", 50035, errors=errors)

"""Small assertions shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

EPHEMERAL = 1 << 6


def is_ephemeral(message: dict[str, Any]) -> bool:
    return bool(int(message.get("flags") or 0) & EPHEMERAL)


def text_of(message: dict[str, Any]) -> str:
    """Everything a user reads in a message: content and embed texts."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [(embed.get("footer") or {}).get("text") or ""]
        parts += [(embed.get("author") or {}).get("name") or ""]
        parts += [f"{f.get('name')} {f.get('value')}" for f in embed.get("fields") or []]
    return "\n".join(p for p in parts if p)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for row in message.get("components") or [] for c in row.get("components", [])]


def assert_no_pings_except(message: dict[str, Any], allowed: set[str]) -> None:
    assert not message.get("mention_everyone"), message
    assert not message.get("mention_roles"), message
    pinged = {m["id"] for m in message.get("mentions") or []}
    assert pinged <= allowed, (pinged, allowed)

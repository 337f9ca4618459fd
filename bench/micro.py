"""`python -m bench.micro`: per-message costs of the answer path, in microseconds, in-process.

What an action answer costs beside the floor's constant embed, one piece at a time: the
`discord.ui.View` of persistent buttons (built, serialized, stored in discord.py's view store
as `send_message` does) against the same components as prebuilt dicts; the rest of
`render.action`; discord.py's payload assembly; and JSON both ways (stdlib against orjson,
which `discord.py[speed]` installs). Best of several repeats: compare, don't add up loosely.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import discord
from discord.ui.view import ViewStore
from discord.webhook.async_ import interaction_message_response_params

from bot import custom_ids, render, render_buttons, wording
from bot.nekos import Credit, Result
from bot.store import open_store
from bot.wording import Case

ACTION_ID = 1_312_000_000_000_000_123
ACTOR_ID = 300_000_000_000_000_001
TARGET_ID = 300_000_000_000_000_002
CATEGORY = "hug"
# Worded once per category at start, not per message.
RETURN_LABEL = wording.return_label(CATEGORY) or "Return"
ANOTHER_LABEL = wording.message("label_another")


@dataclass
class Member:
    """Enough of a user for rendering and allowed mentions."""

    id: int
    name: str

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


ACTOR = Member(ACTOR_ID, "member1")
TARGET = Member(TARGET_ID, "member2")
RESULT = Result(
    url="https://nekos.best/api/v2/hug/0a1b2c3d-0000-4000-8000-000000000000.gif",
    credit=Credit(anime_name="Some Anime"),
    category=CATEGORY,
)


class Components:
    """Prebuilt components, passed where discord.py takes a view. discord.py only serializes
    it (`to_components()`, `has_components_v2()`); `is_finished()` and `is_dispatchable()`
    keep it out of the view store (persistent buttons are routed by `add_dynamic_items`, not
    by stored views), and `__discord_ui_view__` passes the followup/webhook type check."""

    __slots__ = ("rows",)
    __discord_ui_view__ = True
    timeout = None

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def to_components(self) -> list[dict[str, Any]]:
        return self.rows

    def has_components_v2(self) -> bool:
        return False

    def is_finished(self) -> bool:
        return True

    def is_dispatchable(self) -> bool:
        return False


def b36(number: int) -> str:
    return custom_ids.b36(number)


def action_components(
    category: str, action_id: int, actor_id: int, target_id: int
) -> list[dict[str, Any]]:
    """The two buttons `render.action` sends, as the dicts `View.to_components()` yields."""
    action, actor = b36(action_id), b36(actor_id)
    return [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 1,
                    "label": RETURN_LABEL,
                    "custom_id": f"nc:r:{category}:{action}:{actor}:{b36(target_id)}",
                    "disabled": False,
                },
                {
                    "type": 2,
                    "style": 2,
                    "label": ANOTHER_LABEL,
                    "emoji": {"id": None, "name": "🔁"},
                    "custom_id": f"nc:a:{category}:{action}:{actor}",
                    "disabled": False,
                },
            ],
        }
    ]


class _State:
    """The little of ConnectionState a ViewStore touches when a view is stored."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()


STORE = ViewStore(_State())  # type: ignore[arg-type]


def view_path() -> list[dict[str, Any]]:
    """What render.action + send_message do with the buttons today."""
    view = discord.ui.View(timeout=None)
    view.add_item(
        render_buttons.button(custom_ids.ReturnId(CATEGORY, ACTION_ID, ACTOR_ID, TARGET_ID))
    )
    view.add_item(render_buttons.button(custom_ids.RerollId(CATEGORY, ACTION_ID, ACTOR_ID)))
    rows = view.to_components()
    STORE.add_view(view, ACTION_ID)  # send_message: state.store_view(view, message_id)
    return rows


def dict_path() -> list[dict[str, Any]]:
    return Components(action_components(CATEGORY, ACTION_ID, ACTOR_ID, TARGET_ID)).to_components()


def render_action(*, buttons: bool = True) -> render.Reply:
    return render.action(
        category=CATEGORY,
        result=RESULT,
        actor=ACTOR,  # type: ignore[arg-type]
        targets=[TARGET],
        case=Case.OTHER,
        counts=None,
        action_id=ACTION_ID if buttons else None,
        returnable={TARGET_ID} if buttons else (),
    )


def payload_of(reply: render.Reply, view: Any) -> Any:
    return interaction_message_response_params(
        type=4,
        content=reply.content,
        embeds=reply.embeds,
        allowed_mentions=reply.allowed_mentions,
        previous_allowed_mentions=render.NO_PINGS,
        view=view,
    )


def measure(fn: Callable[[], Any], number: int = 2000, repeat: int = 7) -> float:
    """Best per-call time in microseconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> int:
    reply = render_action()
    rows = dict_path()
    assert rows == view_path(), "the prebuilt components differ from the View's"
    view, components = reply.view, Components(rows)
    payload = payload_of(reply, components).payload
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    raw = _interaction_create()
    figures: list[tuple[str, Callable[[], Any]]] = [
        ("buttons: View of 2 buttons + to_components + view store", view_path),
        ("buttons: prebuilt component dicts", dict_path),
        ("render.action, with its View (as today)", render_action),
        ("render.action without buttons", lambda: render_action(buttons=False)),
        ("payload assembly (embed.to_dict, mentions), View", lambda: payload_of(reply, view)),
        ("payload assembly, prebuilt components", lambda: payload_of(reply, components)),
        (
            "JSON encode the callback body, stdlib",
            lambda: json.dumps(payload, separators=(",", ":"), ensure_ascii=True),
        ),
        ("JSON decode an INTERACTION_CREATE, stdlib", lambda: json.loads(raw)),
    ]
    try:
        import orjson
    except ImportError:
        print("(orjson not installed: pip install orjson to compare)", file=sys.stderr)
    else:
        figures.append(("JSON encode the callback body, orjson", lambda: orjson.dumps(payload)))
        figures.append(("JSON decode an INTERACTION_CREATE, orjson", lambda: orjson.loads(raw)))
    print(f"callback body: {len(body)} bytes; INTERACTION_CREATE: {len(raw)} bytes")
    print("| step | µs per message |\n| --- | ---: |")
    for name, fn in figures:
        print(f"| {name} | {measure(fn):.1f} |", flush=True)
    for name, us in asyncio.run(store_figures()):
        print(f"| {name} | {us:.1f} |", flush=True)
    return 0


async def store_figures(n: int = 2000) -> list[tuple[str, float]]:
    """The counter every targeted action commits (WAL, on the loop's thread), and the
    busy_timeout switch it makes around each inline transaction."""
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(f"sqlite:///{tmp}/bench.db")
        async with store:
            started = time.perf_counter()
            for i in range(n):
                await store.record_action(
                    action_id=ACTION_ID + i,
                    guild_id=1,
                    action=CATEGORY,
                    actor_id=ACTOR_ID + i % 24,
                    target_ids=[TARGET_ID + i % 23],
                )
            per_action = (time.perf_counter() - started) / n * 1e6
        raw = sqlite3.connect(f"{tmp}/bench.db")
        toggle = measure(
            lambda: (
                raw.execute("PRAGMA busy_timeout = 0"),
                raw.execute("PRAGMA busy_timeout = 5000"),
            )
        )
        raw.close()
    return [
        ("store.record_action (commit on the loop's thread)", per_action),
        ("of which: PRAGMA busy_timeout, set and reset", toggle),
    ]


def _interaction_create() -> str:
    """An INTERACTION_CREATE as the Discord stand-in sends it (a slash command with a user)."""
    from tests.fakes.discord import FakeDiscord, make_user

    fake = FakeDiscord(token="x", guild_count=1)
    actor = make_user(name="member1")
    target = make_user(name="member2")
    payload = fake.slash(CATEGORY, {"user": target}, user=actor)
    return json.dumps({"op": 0, "t": "INTERACTION_CREATE", "s": 42, "d": payload})


if __name__ == "__main__":
    sys.exit(main())

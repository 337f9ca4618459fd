"""Hostile or broken input, fuzzed with Hypothesis against one running bot per test.

Every option of every command: wrong types, out-of-range numbers, empty/huge/unicode/
zero-width/markdown/mention strings, unknown categories, autocomplete values outside the list,
forged `custom_id`s, buttons pressed by the wrong user, users that are not in the guild, menus
on odd targets. The result is always a clear ephemeral message or the normal answer: never an
unhandled exception, never a ping of @everyone, a role or anyone but the target.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fakes.discord import FakeDiscord, InteractionRecord, make_user, snowflake
from tests.fakes.discord.payloads import member
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot
from tests.helpers import WINDOW, LogCapture, is_ephemeral, text_of

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=4,
    deadline=None,
    # No shrinking: every example runs against the same live bot, and a shrink pass would
    # replay dozens of interactions per step. A failure names the interaction it saw.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

ROLE_ID = "1128000000000000001"
SOME_ID = "1128000000000000002"

NASTY_STRINGS = [
    "",
    " ",
    "\u200b",
    "\u200b\u200c\u200d\ufeff",
    "@everyone",
    "@here",
    "hey @everyone and @here",
    f"<@&{ROLE_ID}>",
    f"<@{SOME_ID}>",
    f"<@!{SOME_ID}>",
    "<#1>",
    "**bold** __under__ ~~strike~~ ||spoiler|| `code` ```block```",
    "# heading\n> quote\n- item",
    "[click](https://evil.example/phish)",
    "\n" * 60,
    "A" * 5000,
    "🐱" * 300,
    "ｈｕｇ",
    "HUG",
    " hug ",
    "hug\u200b",
    "../../endpoints",
    "hug/../search",
    "%2e%2e%2f",
    "\x00\x01\x7f",
    "\u202egnp.exe",
    "a\u0301" * 300,
    "{category} {0} %s %(x)s",
    "null",
    "-1",
    "1e309",
    "wave",
    "neko",
    "search",
    "nope",
]
NASTY_INTS = [-(2**63), -1, 0, 1, 2, 10, 11, 20, 21, 2**31, 2**53 + 1, 2**63, 2**64 + 7]
NASTY_FLOATS = [0.5, 1.5, -0.0, 1e308, 2.0, 10.000001]

COMMANDS = [
    "hug",
    "pat",
    "wave",
    "action",
    "image",
    "neko",
    "search",
    "source",
    "stats",
    "optout",
    "optin",
    "forgetme",
    "help",
]
OPTION_NAMES = ["user", "message", "category", "amount", "query", "type", "url", "keep_optout"]
USER_KINDS = [
    "normal",
    "nasty_name",
    "not_in_guild",
    "unresolved",
    "bot_itself",
    "invoker",
    "other_bot",
    "garbage_id",
    "huge_id",
]

strings = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=40),
    st.text(min_size=150, max_size=400),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY_STRINGS), st.text(max_size=10)),
)
ints = st.one_of(st.sampled_from(NASTY_INTS), st.integers(-5, 25))
floats = st.sampled_from(NASTY_FLOATS)


@dataclass
class Option:
    name: str
    confused_type: int | None  # None: the declared type; else this (wrong) type code
    text: str
    number: int
    real: float
    flag: bool
    user_kind: str


options = st.builds(
    Option,
    name=st.sampled_from([*OPTION_NAMES, "bogus"]),
    confused_type=st.one_of(st.none(), st.none(), st.sampled_from([3, 4, 5, 6, 10, 99])),
    text=strings,
    number=ints,
    real=floats,
    flag=st.booleans(),
    user_kind=st.sampled_from(USER_KINDS),
)


@dataclass
class SlashCase:
    command: str
    options: list[Option]
    in_dm: bool
    nasty_invoker: bool


slash_cases = st.builds(
    SlashCase,
    command=st.sampled_from(COMMANDS),
    options=st.lists(options, max_size=4),
    in_dm=st.sampled_from([False, False, False, True]),
    nasty_invoker=st.booleans(),
)


# -- building payloads -----------------------------------------------------------------------


@dataclass
class Built:
    payload: dict[str, Any]
    allowed_pings: set[str]  # who may be pinged by the answer (the target, when valid)


def nasty_user(name: str) -> dict[str, Any]:
    return make_user(name=name[:32] or "x", global_name=name[:100] or None)


def schema_of(discord_api: FakeDiscord, command: str, ctype: int = 1) -> dict[str, Any]:
    for cmd in discord_api.commands[None]:
        if cmd["name"] == command and cmd["type"] == ctype:
            return cmd
    raise LookupError(command)


def build_slash(discord_api: FakeDiscord, case: SlashCase) -> Built:
    schema = {o["name"]: o for o in schema_of(discord_api, case.command).get("options", [])}
    invoker = nasty_user("@everyone **x**") if case.nasty_invoker else None
    resolved: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    allowed: set[str] = set()
    guild = None if case.in_dm else discord_api.guild_ids[0]
    for option in case.options:
        if any(o["name"] == option.name for o in out):
            continue
        declared = schema.get(option.name, {}).get("type", 3)
        otype = option.confused_type or declared
        if otype == 6:
            value = user_value(discord_api, option, resolved, guild, invoker, allowed)
        elif otype == 4:
            value = option.number
        elif otype == 10:
            value = option.real
        elif otype == 5:
            value = option.flag
        elif otype == 99:
            value = {"nested": [option.text]}
        else:
            value = option.text
        if option.confused_type is not None and otype != declared and otype == 4:
            value = option.text  # a string where a number is declared
        out.append({"name": option.name, "type": otype, "value": value})
    payload = discord_api.slash(case.command, out, user=invoker, guild_id=guild)
    if resolved:
        payload["data"]["resolved"] = resolved
    return Built(payload, allowed)


def user_value(
    discord_api: FakeDiscord,
    option: Option,
    resolved: dict[str, dict[str, Any]],
    guild: int | None,
    invoker: dict[str, Any] | None,
    allowed: set[str],
) -> Any:
    kind = option.user_kind
    if kind == "garbage_id":
        return option.text[:30] or "abc"
    if kind == "huge_id":
        return str(2**64 + option.number % 1000)
    if kind == "unresolved":
        return snowflake()
    if kind == "bot_itself":
        user = discord_api.bot_user
    elif kind == "invoker":
        user = invoker or discord_api.default_user
    elif kind == "other_bot":
        user = make_user(name="otherbot", bot=True)
    elif kind == "nasty_name":
        user = nasty_user(option.text)
    else:
        user = make_user(name="target")
    resolved.setdefault("users", {})[user["id"]] = user
    if guild is not None and kind != "not_in_guild":
        resolved.setdefault("members", {})[user["id"]] = member()
    allowed.add(user["id"])
    return user["id"]


# -- checking answers --------------------------------------------------------------------------


async def settle(record: InteractionRecord, *, deferred_budget: float = 16) -> None:
    """Wait for the first response, then (after a defer) for the final answer."""
    try:
        await record.wait_for(lambda r: r.callbacks or r.rejected_callbacks, timeout=WINDOW + 2)
    except TimeoutError:
        data = record.payload.get("data")
        raise AssertionError(f"no answer to type {record.type} with data {data!r}") from None
    if record.callbacks and record.callbacks[0].type == 5:
        await record.wait_message(timeout=deferred_budget)


def check_answer(
    record: InteractionRecord, allowed: set[str], *, autocomplete: bool = False
) -> None:
    assert len(record.callbacks) == 1, record.describe()
    assert not record.rejected_callbacks, record.describe()
    assert record.response_time is not None and record.response_time < WINDOW, record.describe()
    if autocomplete:
        assert record.callbacks[0].type == 8
        choices = record.choices or []
        assert len(choices) <= 25
        return
    messages = [m for m in [record.original, *record.followups] if m is not None]
    for message in messages:
        assert not message["mention_everyone"], message
        assert not message["mention_roles"], message
        pinged = {u["id"] for u in message["mentions"]}
        assert pinged <= allowed, (pinged, allowed, message["content"])
    visible = record.visible_message()
    if record.callbacks[0].type in (4, 5):
        assert visible is not None, record.describe()
        assert text_of(visible) or visible.get("embeds"), visible
        if "Something went wrong" in text_of(visible):
            raise AssertionError(f"an internal error was shown: {record.describe()}")


async def run_cases(
    discord_api: FakeDiscord, built: list[Built], *, autocomplete: bool = False
) -> None:
    records = []
    for item in built:
        records.append((await discord_api.interact(item.payload), item))
        await asyncio.sleep(0.01)
    await asyncio.gather(*(settle(r) for r, _ in records))
    for record, item in records:
        check_answer(record, item.allowed_pings, autocomplete=autocomplete)


# -- the fuzz tests ----------------------------------------------------------------------------


@FUZZ
@given(cases=st.lists(slash_cases, min_size=30, max_size=30))
async def test_fuzz_every_command_option(
    bot: RunningBot, discord_api: FakeDiscord, nekos: FakeNekos, logs: LogCapture, cases
) -> None:
    built = [build_slash(discord_api, case) for case in cases]
    await run_cases(discord_api, built)
    logs.assert_clean()


EACH_OPTION = [
    ("hug", "user"),
    ("hug", "message"),
    ("action", "category"),
    ("action", "user"),
    ("action", "message"),
    ("image", "category"),
    ("image", "amount"),
    ("neko", "amount"),
    ("search", "query"),
    ("search", "type"),
    ("search", "category"),
    ("search", "amount"),
    ("source", "url"),
    ("stats", "user"),
    ("forgetme", "keep_optout"),
]
SANE = {
    "action": [Option("category", None, "hug", 0, 0, False, "normal")],
    "image": [Option("category", None, "neko", 0, 0, False, "normal")],
    "search": [Option("query", None, "Nichijou", 0, 0, False, "normal")],
    "source": [Option("url", None, "https://nekos.best/api/v2/neko/x.png", 0, 0, False, "")],
}


@FUZZ
@given(data=st.data())
async def test_fuzz_each_option_alone(
    bot: RunningBot,
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    logs: LogCapture,
    data: st.DataObject,
) -> None:
    """Every declared option of every command, one at a time, the other required ones sane."""
    built = []
    for command, name in EACH_OPTION * 2:
        mine = data.draw(options.map(lambda o, n=name: Option(**{**o.__dict__, "name": n})))
        rest = [o for o in SANE.get(command, []) if o.name != name]
        in_dm = data.draw(st.sampled_from([False, False, True]))
        built.append(build_slash(discord_api, SlashCase(command, [mine, *rest], in_dm, False)))
    await run_cases(discord_api, built)
    logs.assert_clean()


autocomplete_cases = st.tuples(
    st.sampled_from(
        [
            ("action", "category"),
            ("image", "category"),
            ("search", "category"),
            ("search", "query"),
            ("hug", "message"),
            ("action", "bogus"),
        ]
    ),
    strings,
    st.sampled_from([None, 1, 2, 3, "x"]),
)


@FUZZ
@given(cases=st.lists(autocomplete_cases, min_size=20, max_size=20))
async def test_fuzz_autocomplete(
    bot: RunningBot, discord_api: FakeDiscord, nekos: FakeNekos, logs: LogCapture, cases
) -> None:
    built = []
    for (command, focused), value, search_type in cases:
        options: list[dict[str, Any]] = [
            {"name": focused, "type": 3, "value": value, "focused": True}
        ]
        if command == "search" and search_type is not None:
            options.append(
                {
                    "name": "type",
                    "type": 4 if isinstance(search_type, int) else 3,
                    "value": search_type,
                }
            )
        payload = discord_api.autocomplete(command, focused, options)
        built.append(Built(payload, set()))
    await run_cases(discord_api, built, autocomplete=True)
    logs.assert_clean()


# -- components --------------------------------------------------------------------------------

B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
b36_numbers = st.one_of(
    st.text(alphabet=B36, min_size=1, max_size=14),
    st.sampled_from(["0", "z" * 13, "z" * 14, "1y2p0ij32e8e7", "1y2p0ij32e8e8"]),
)
forged_ids = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda kind, cat, a, b, c: f"nc:{kind}:{cat}:{a}:{b}" + (f":{c}" if kind == "r" else ""),
        st.sampled_from(["r", "a"]),
        st.sampled_from(["hug", "wave", "neko", "nope", "HUG", "a" * 32, "hug-", "_"]),
        b36_numbers,
        b36_numbers,
        b36_numbers,
    ),
    st.sampled_from(["nc:r:", "nc:a:hug::", "nc:x", "nc:r:hug:1:2:3:4", "x" * 101]),
)

PRESSERS = ["actor", "target", "stranger", "nasty"]


@FUZZ
@given(
    presses=st.lists(
        st.tuples(
            st.sampled_from(["return", "reroll", "forged", "forged_on_message"]),
            forged_ids,
            st.sampled_from(PRESSERS),
        ),
        min_size=25,
        max_size=25,
    )
)
async def test_fuzz_buttons(
    bot: RunningBot, discord_api: FakeDiscord, nekos: FakeNekos, logs: LogCapture, presses
) -> None:
    actor = make_user(name="actor")
    target = make_user(name="target")
    record = await discord_api.interact(discord_api.slash("hug", {"user": target}, user=actor))
    message = await record.wait_message(timeout=5)
    ids = {
        c["custom_id"][3]: c["custom_id"]
        for row in message["components"]
        for c in row["components"]
    }
    people = {
        "actor": actor,
        "target": target,
        "stranger": make_user(name="stranger"),
        "nasty": nasty_user("@everyone <@&1> **hi**"),
    }
    built = []
    for which, forged, presser in presses:
        custom_id = ids["r"] if which == "return" else ids["a"] if which == "reroll" else forged
        shown = message
        if which == "forged_on_message" and forged:
            # a tampered message that really carries the forged button (its handler runs)
            shown = copy.deepcopy(message)
            shown["components"][0]["components"][-1]["custom_id"] = forged
        payload = discord_api.component(custom_id, shown, user=people[presser], strict=False)
        built.append(Built(payload, {actor["id"], target["id"]}))
    await run_cases(discord_api, built)
    logs.assert_clean()
    # The return was counted at most once, whoever pressed how often.
    returned = [
        m
        for m in discord_api.messages.values()
        if "back" in text_of(m).lower() and m.get("interaction_metadata", {}).get("type") == 3
    ]
    assert len(returned) <= 1


@FUZZ
@given(
    cases=st.lists(
        st.tuples(
            st.sampled_from(["Hug", "Pat", "Poke", "Image credit"]),
            st.sampled_from(USER_KINDS),
            strings,
        ),
        min_size=15,
        max_size=15,
    )
)
async def test_fuzz_context_menus(
    bot: RunningBot, discord_api: FakeDiscord, nekos: FakeNekos, logs: LogCapture, cases
) -> None:
    built = []
    for menu, kind, text in cases:
        if menu == "Image credit":
            target = discord_api.user_message(text or "x")
            payload = discord_api.message_command(menu, target)
            built.append(Built(payload, set()))
            continue
        user = {
            "bot_itself": discord_api.bot_user,
            "invoker": discord_api.default_user,
            "other_bot": make_user(name="b", bot=True),
            "nasty_name": nasty_user(text),
        }.get(kind, make_user(name="t"))
        payload = discord_api.user_command(menu, user)
        if kind == "not_in_guild":
            payload["data"]["resolved"].pop("members", None)
        built.append(Built(payload, {user["id"]}))
    await run_cases(discord_api, built)
    logs.assert_clean()


async def test_ephemeral_errors_are_ephemeral(
    bot: RunningBot, discord_api: FakeDiscord, logs: LogCapture
) -> None:
    """A few known-bad inputs: each answer is a private, clear message."""
    bad = [
        discord_api.slash("action", {"category": "zzz-unknown"}),
        discord_api.slash(
            "image",
            [
                {"name": "category", "type": 3, "value": "neko"},
                {"name": "amount", "type": 4, "value": 11},
            ],
        ),
        discord_api.slash("search", {"query": "\u200b\u200b"}),
        discord_api.slash("source", {"url": "https://evil.example/neko/x.png"}),
        discord_api.slash("hug", {"message": "x" * 300}),
    ]
    for payload in bad:
        record = await discord_api.interact(payload)
        await settle(record)
        check_answer(record, set())
        assert is_ephemeral(record.visible_message()), record.describe()
    logs.assert_clean()

"""Malformed input from Discord's side, through the real discord.py client and the stand-in:
INTERACTION_CREATE payloads discord.py cannot parse (dropped, the shard keeps running, in
process and as `python -m bot`), fuzzed ones, and payloads that parse but that the command tree
cannot read (answered privately with "could not read that command").
"""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot import wording
from tests.fakes.discord import FakeDiscord, InteractionRecord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, RunningBot, bot_process, running_bot
from tests.helpers import LogCapture, answered, is_ephemeral, text_of

pytestmark = pytest.mark.timeout(120)

# What Discord sends as a string of digits, as the reports found it: each one made discord.py's
# parser raise, and the process exit 1.
BAD_PERMISSIONS = ["abc", "0x20", None, [], {}]
DROPPED = "Dropped a gateway event INTERACTION_CREATE"


def with_permissions(discord_api: FakeDiscord, value: Any) -> dict[str, Any]:
    payload = discord_api.slash("help", user=make_user(name="mallory"))
    payload["member"]["permissions"] = value
    return payload


async def still_answers(discord_api: FakeDiscord) -> None:
    """The next valid command gets its normal answer."""
    record = await discord_api.interact(discord_api.slash("help"))
    message = await answered(record)
    assert "nekocord" in text_of(message).lower() or message.get("embeds"), message


def dropped_lines(logs: LogCapture) -> list[str]:
    return [m for m in logs.messages("bot.event_guard") if m.startswith(DROPPED)]


@pytest.mark.parametrize("permissions", BAD_PERMISSIONS, ids=repr)
async def test_an_interaction_discord_py_cannot_parse_is_dropped(
    bot: RunningBot, discord_api: FakeDiscord, logs: LogCapture, permissions: Any
) -> None:
    record = await discord_api.interact(with_permissions(discord_api, permissions))
    await still_answers(discord_api)  # the same shard's connection, after the bad event
    assert not bot.task.done(), "the bot stopped"
    assert discord_api.sessions == 1 and len(discord_api.identifies) == 1  # never reconnected
    assert not record.callbacks and not record.rejected_callbacks  # dropped: nothing to answer
    [line] = dropped_lines(logs)
    assert "ValueError" in line or "TypeError" in line, line
    assert record.token not in "\n".join(logs.messages())
    logs.assert_clean()


async def test_dropped_events_are_logged_once_a_minute(
    bot: RunningBot, discord_api: FakeDiscord, logs: LogCapture
) -> None:
    for value in BAD_PERMISSIONS * 4:
        await discord_api.interact(with_permissions(discord_api, value))
    await still_answers(discord_api)
    assert len(dropped_lines(logs)) == 1, dropped_lines(logs)
    assert bot.bot.unreadable_events.count == len(BAD_PERMISSIONS) * 4


async def test_a_python_m_bot_process_survives_malformed_permissions(tmp_path: Path) -> None:
    """The reported failure as it happened: `python -m bot` exited 1 on the first of these."""
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with bot_process(discord_api, nekos, tmp_path / "data") as proc:
            await proc.wait_for_output("Ready as", timeout=30)
            await discord_api.wait_connected(timeout=10)
            bad = []
            for value in BAD_PERMISSIONS:
                bad.append(await discord_api.interact(with_permissions(discord_api, value)))
                try:
                    await still_answers(discord_api)
                except (TimeoutError, RuntimeError):
                    assert proc.process is not None
                    code = proc.process.returncode
                    raise AssertionError(f"after {value!r}: no answer, exit {code}") from None
                assert proc.process is not None and proc.process.returncode is None, proc.output
            await proc.wait_for_output(DROPPED, timeout=10)
            code, _ = await proc.terminate(timeout=10)
            output = proc.output
    assert code == 0, output
    assert output.count(DROPPED) == 1, output  # throttled: one line for the five
    assert "Traceback" not in output
    assert TOKEN not in output and not any(r.token in output for r in bad)


async def test_every_shard_of_a_sharded_bot_keeps_running(
    nekos: FakeNekos, data_dir: Path, logs: LogCapture
) -> None:
    async with FakeDiscord(token=TOKEN, guild_count=2, shard_count=2) as sharded:
        # Two IDENTIFYs, Discord's 5 s apart: a longer start than the default.
        async with running_bot(sharded, nekos, data_dir, ready_timeout=60, SHARD_COUNT="2") as bot:
            await sharded.wait_connected(timeout=60)
            for shard in (0, 1):
                payload = sharded.slash("help", guild_id=sharded.guilds_of(shard)[0])
                payload["member"]["permissions"] = "abc"
                await sharded.interact(payload)
            for shard in (0, 1):
                help_ = sharded.slash("help", guild_id=sharded.guilds_of(shard)[0])
                await answered(await sharded.interact(help_))
            assert not bot.task.done(), "the bot stopped"
            assert len(sharded.identifies) == 2, "a shard reconnected"
    assert len(dropped_lines(logs)) == 1  # throttled across the shards
    logs.assert_clean()


# -- fuzzing every parsed field of INTERACTION_CREATE ------------------------------------------

FUZZ = settings(
    max_examples=10,
    deadline=None,
    # No shrinking: every example runs against the same live bot (a failure names the payload).
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

HUGE_INT = 2**70
ODD_VALUES: list[Any] = [
    None,
    "",
    "abc",
    "0x20",
    "-1",
    "9" * 40,
    "\u0000",
    "x" * 5000,
    0,
    -1,
    HUGE_INT,
    -HUGE_INT,
    1.5,
    float("1e308"),
    True,
    False,
    [],
    [1, "a"],
    {},
    {"id": "1"},
]
MISSING = object()  # the field is removed
odd_values = st.one_of(
    st.sampled_from([*ODD_VALUES, MISSING]),
    st.text(max_size=20),
    st.integers(),
)

# The payloads fuzzed: a slash command with a user option (resolved users and members), one in a
# DM, a context menu on a user, a button press on a real answer and an autocomplete.
SHAPES = ["slash_user", "slash_dm", "user_menu", "button", "autocomplete"]


def paths(payload: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every field of `payload` (dict keys and list items, nested), as key paths; the token and
    id are left alone (they say which interaction an answer is for, and the stand-in needs
    them to dispatch)."""
    out: list[tuple[Any, ...]] = []
    items = payload.items() if isinstance(payload, dict) else enumerate(payload)
    for key, value in items:
        if not prefix and key in ("token", "id"):
            continue
        path = (*prefix, key)
        out.append(path)
        if isinstance(value, dict | list) and len(path) < 6:
            out += paths(value, path)
    return out


def mutate(payload: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    parent: Any = payload
    for key in path[:-1]:
        parent = parent[key]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


async def base_payloads(discord_api: FakeDiscord) -> dict[str, dict[str, Any]]:
    target = make_user(name="target")
    hug = await discord_api.interact(discord_api.slash("hug", {"user": target}))
    message = await hug.wait_message(timeout=10)
    reroll = next(c["custom_id"] for row in message["components"] for c in row["components"])
    return {
        "slash_user": discord_api.slash("stats", {"user": target}),
        "slash_dm": discord_api.slash("help", guild_id=None),
        "user_menu": discord_api.user_command("Hug", target),
        "button": discord_api.component(reroll, message),
        "autocomplete": discord_api.autocomplete("action", "category", {"category": "hu"}),
    }


@FUZZ
@given(data=st.data())
async def test_fuzz_interaction_fields(
    bot: RunningBot, discord_api: FakeDiscord, logs: LogCapture, data: st.DataObject
) -> None:
    """Types swapped, fields missing, huge values, anywhere in the payload: the bot survives
    every one, raises nothing unhandled, and answers the next valid command."""
    bases = await base_payloads(discord_api)
    sent: list[tuple[InteractionRecord, str]] = []
    for _ in range(30):
        shape = data.draw(st.sampled_from(SHAPES))
        payload = copy.deepcopy(bases[shape])
        payload.pop("id", None)
        payload.pop("token", None)
        changes = []
        for _ in range(data.draw(st.integers(1, 3))):
            fields = paths(payload)
            if not fields:
                break
            path = data.draw(st.sampled_from(fields))
            value = data.draw(odd_values)
            mutate(payload, path, value)
            shown = "<missing>" if value is MISSING else repr(value)[:40]
            changes.append(f"{'.'.join(map(str, path))}={shown}")
        record = await discord_api.interact(payload, shard=0)
        sent.append((record, f"{shape}: {', '.join(changes)}"))
        await asyncio.sleep(0.01)
    await still_answers(discord_api)
    assert not bot.task.done(), "the bot stopped"
    assert len(discord_api.identifies) == 1, "a malformed event cost the shard its session"
    # The stand-in's own request handler (aiohttp.server) may trip over a forged payload it
    # reads back when storing an answer: not the bot's doing.
    problems = [p for p in logs.unhandled() if not p.startswith("aiohttp.server")]
    assert not problems, "\n".join(problems) + "\nsent:\n" + "\n".join(c for _, c in sent)


# -- payloads that parse, but that the command tree cannot read (item 8) -----------------------

NOT_A_LIST: list[Any] = [{}, {"name": "user", "type": 6, "value": "1"}, "user", 7, True]


@pytest.mark.parametrize("options", NOT_A_LIST, ids=repr)
async def test_options_that_are_not_a_list_get_the_generic_answer_privately(
    bot: RunningBot, discord_api: FakeDiscord, logs: LogCapture, options: Any
) -> None:
    payload = discord_api.slash("hug", locale="de")
    payload["data"]["options"] = options
    answer = await answered(await discord_api.interact(payload))
    assert is_ephemeral(answer), answer
    assert text_of(answer) == wording.message("error_unreadable", "de")
    logs.assert_clean()
    await still_answers(discord_api)


async def test_subcommand_options_that_are_not_a_list_get_the_generic_answer(
    bot: RunningBot, discord_api: FakeDiscord, logs: LogCapture
) -> None:
    payload = discord_api.slash("config", subcommand="show")
    payload["data"]["options"][0]["options"] = {"category": "hug"}
    answer = await answered(await discord_api.interact(payload))
    assert is_ephemeral(answer) and text_of(answer) == wording.message("error_unreadable")
    autocomplete = discord_api.autocomplete("action", "category", {"category": "hu"})
    autocomplete["data"]["options"] = "hu"
    record = await discord_api.interact(autocomplete)
    await record.wait_for(lambda r: r.callbacks, timeout=5)
    assert record.callbacks[0].type == 8 and record.choices == []
    logs.assert_clean()
    assert any("could not be read" in m for m in logs.messages("bot.event_guard", logging.WARNING))


# -- locales that are not strings (item 7) ------------------------------------------------------

NOT_A_LOCALE: list[Any] = [["de"], {"de": "de"}, 7, True, None]


def localized(payload: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    payload[field] = value
    if field == "guild_locale" and "guild" in payload:
        payload["guild"]["locale"] = value
    return payload


@pytest.mark.parametrize("field", ["locale", "guild_locale"])
async def test_a_locale_that_is_not_a_string_reads_english(
    bot: RunningBot, discord_api: FakeDiscord, logs: LogCapture, field: str
) -> None:
    opted_out = make_user(name="carol", global_name="Carol")
    await answered(await discord_api.interact(discord_api.slash("optout", user=opted_out)))
    english = {
        "help": text_of(await answered(await discord_api.interact(discord_api.slash("help")))),
        "config": text_of(
            await answered(
                await discord_api.interact(discord_api.slash("config", subcommand="show"))
            )
        ),
    }
    refused = wording.message("error_target_opted_out", name="Carol")
    for value in NOT_A_LOCALE:
        help_ = localized(discord_api.slash("help", locale="de", guild_locale="de"), field, value)
        show = localized(
            discord_api.slash("config", subcommand="show", locale="de", guild_locale="de"),
            field,
            value,
        )
        error = localized(
            discord_api.slash("hug", {"user": opted_out}, locale="de", guild_locale="de"),
            field,
            value,
        )
        public = localized(
            discord_api.slash("hug", {"user": make_user(name="bob")}, guild_locale="de"),
            field,
            value,
        )
        help_answer, show_answer, error_answer, public_answer = [
            await answered(await discord_api.interact(p)) for p in (help_, show, error, public)
        ]
        if field == "locale":  # private answers read the member's locale
            assert text_of(help_answer) == english["help"], value
            assert text_of(show_answer) == english["config"], value
            assert text_of(error_answer) == refused, value
        else:  # the member's own (German) locale still holds for private answers
            assert is_ephemeral(help_answer) and text_of(error_answer) == wording.message(
                "error_target_opted_out", "de", name="Carol"
            ), value
        assert is_ephemeral(error_answer) and is_ephemeral(show_answer)
        assert not is_ephemeral(public_answer), public_answer
        line = public_answer["embeds"][0]["description"].split("\n")[0]
        assert "Something went wrong" not in text_of(public_answer)
        if field == "guild_locale":  # public answers read the server's: English here
            templates = wording.tables.load_english().gifs["hug"].sentences[wording.Case.OTHER]
            shown = {t.format_map({"a": "Tester", "b": "bob"}) for t in templates}
            assert line in shown, (value, line)
    logs.assert_clean()

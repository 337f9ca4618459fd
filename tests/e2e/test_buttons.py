"""Persistent buttons end to end: presses of buttons posted by an earlier release, presses that
must not cost a GIF, and options outside their declared range."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

from bot.custom_ids import ReturnId
from tests.fakes.discord import FakeDiscord, make_user
from tests.harness import RunningBot, running_bot
from tests.helpers import buttons, is_ephemeral, text_of

ALICE = make_user(id=111111111111111111, name="alice", global_name="Alice")
BOB = make_user(id=222222222222222222, name="bob", global_name="Bob")
# Made by the release before the buttons moved (ReturnButton / RerollButton in bot/render.py,
# action 1100000000000000000 from Alice to Bob): already posted messages carry exactly these.
OLD_RETURN = "nc:r:hug:8cv1gfspn1fk:ue1lnrzoibr:1os37bjzd0ni"
OLD_REROLL = "nc:a:hug:8cv1gfspn1fk:ue1lnrzoibr"


async def hug(discord_api: FakeDiscord) -> dict[str, Any]:
    handle = await discord_api.interact(discord_api.slash("hug", {"user": BOB}, user=ALICE))
    return await handle.wait_message()


def with_custom_ids(message: dict[str, Any], *custom_ids: str) -> dict[str, Any]:
    """The message as an earlier release posted it: the same buttons, older custom_ids."""
    row = message["components"][0]["components"]
    for component, custom_id in zip(row, custom_ids, strict=False):
        component["custom_id"] = custom_id
    return message


def pool_takes(bot: RunningBot) -> int:
    totals = bot.bot.pool.stats()["totals"]
    return int(totals["hits"] + totals["misses"])


async def test_return_button_of_the_previous_release_still_returns(bot, discord_api) -> None:
    message = with_custom_ids(await hug(discord_api), OLD_RETURN)
    press = await discord_api.interact(discord_api.component(OLD_RETURN, message, user=BOB))
    await press.wait_for(lambda r: r.followups)
    returned = press.followups[0]
    assert returned["content"] == f"<@{ALICE['id']}>"
    assert "Bob" in returned["embeds"][0]["description"]
    pressed = next(
        b for b in buttons(discord_api.messages[message["id"]]) if b["custom_id"] == OLD_RETURN
    )
    assert pressed["disabled"] is True
    assert await bot.bot.store.is_returned(action_id=1100000000000000000, target_id=int(BOB["id"]))


async def test_reroll_button_of_the_previous_release_is_understood(bot, discord_api) -> None:
    # The action id it carries is from 2025: past the reroll window, which only a decoded
    # custom_id can tell (an unknown one would answer "This button has expired").
    message = with_custom_ids(await hug(discord_api), OLD_RETURN, OLD_REROLL)
    press = await discord_api.interact(discord_api.component(OLD_REROLL, message, user=ALICE))
    answer = await press.wait_message()
    assert is_ephemeral(answer)
    assert text_of(answer) == "This reroll button has expired."


async def test_a_second_press_takes_no_gif(bot, discord_api) -> None:
    message = await hug(discord_api)
    back = next(b for b in buttons(message) if b["label"] == "Hug back")
    first = await discord_api.interact(discord_api.component(back["custom_id"], message, user=BOB))
    await first.wait_for(lambda r: r.followups)
    before = pool_takes(bot)
    again = await discord_api.interact(discord_api.component(back["custom_id"], message, user=BOB))
    answer = await again.wait_message()
    assert text_of(answer) == "This one was already returned."
    assert pool_takes(bot) == before


async def test_after_a_restart_a_second_press_takes_no_gif(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir) as first_run:
        message = await hug(discord_api)
        back = next(b for b in buttons(message) if b["label"] == "Hug back")
        press = await discord_api.interact(
            discord_api.component(back["custom_id"], message, user=BOB)
        )
        await press.wait_for(lambda r: r.followups)
        assert pool_takes(first_run) == 2
    async with running_bot(discord_api, nekos, data_dir) as second_run:
        again = await discord_api.interact(
            discord_api.component(back["custom_id"], message, user=BOB)
        )
        assert text_of(await again.wait_message()) == "This one was already returned."
        assert pool_takes(second_run) == 0


async def test_options_outside_their_declaration_are_refused_before_any_request(
    bot, discord_api, nekos
) -> None:
    await bot.bot.pool.settle()
    nekos.requests.clear()
    cases = [
        ("neko", {"amount": 11}, "`amount` must be from 1 to 10."),
        ("image", {"category": "neko", "amount": 0}, "`amount` must be from 1 to 10."),
        ("hug", {"message": "x" * 201}, "`message` must be 1–200 characters long."),
        ("search", {"query": "ab"}, "`query` must be 3–150 characters long."),
        ("search", {"query": "Senko", "type": 9}, "That isn't a valid choice"),
    ]
    for command, options, expected in cases:
        handle = await discord_api.interact(discord_api.slash(command, options, user=ALICE))
        answer = await handle.wait_message()
        assert is_ephemeral(answer), command
        assert text_of(answer).startswith(expected), (command, text_of(answer))
    assert nekos.requests == []


async def test_a_forged_return_cannot_use_up_the_targets_return(bot, discord_api) -> None:
    message = await hug(discord_api)
    back = next(b for b in buttons(message) if b["label"] == "Hug back")
    real = ReturnId.from_match(re.fullmatch(ReturnId.TEMPLATE, back["custom_id"]))
    carol = make_user(name="carol", global_name="Carol")
    forged = replace(real, target_id=int(carol["id"])).custom_id  # "aimed at Carol"
    original = copy.deepcopy(message)
    forged_message = with_custom_ids(copy.deepcopy(message), forged)
    press = await discord_api.interact(discord_api.component(forged, forged_message, user=carol))
    await press.wait_for(lambda r: r.callbacks)
    # Whatever Carol's forged button did, Bob's return (on the message as Bob sees it) stands.
    press = await discord_api.interact(discord_api.component(back["custom_id"], original, user=BOB))
    await press.wait_for(lambda r: r.followups)
    returned = press.followups[0]
    assert returned["content"] == f"<@{ALICE['id']}>" and "Bob" in text_of(returned)


async def test_answers_leave_no_view_behind(bot, discord_api) -> None:
    # Every action message has buttons; discord.py would keep each message's view for ever
    # (persistent: custom_ids, no timeout) although presses go to the DynamicItem templates.
    for _ in range(3):
        message = await hug(discord_api)
    back = next(b for b in buttons(message) if b["label"] == "Hug back")
    press = await discord_api.interact(discord_api.component(back["custom_id"], message, user=BOB))
    await press.wait_for(lambda r: r.followups)
    assert bot.bot.persistent_views == []
    # And the buttons still answer.
    assert "Bob" in press.followups[0]["embeds"][0]["description"]

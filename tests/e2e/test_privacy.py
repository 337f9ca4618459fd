"""Privacy end to end: what others may see of a member who opted out."""

from __future__ import annotations

from tests.fakes.discord import FakeDiscord, make_user
from tests.helpers import is_ephemeral, text_of

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
CAROL = make_user(name="carol", global_name="Carol")


async def send(discord_api: FakeDiscord, interaction: dict) -> dict:
    handle = await discord_api.interact(interaction)
    return await handle.wait_message()


async def test_stats_about_an_opted_out_member_are_refused_to_others(bot, discord_api) -> None:
    await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
    await send(discord_api, discord_api.slash("hug", {"user": CAROL}, user=BOB))
    await send(discord_api, discord_api.slash("optout", user=BOB))

    refused = await send(discord_api, discord_api.slash("stats", {"user": BOB}, user=ALICE))
    assert is_ephemeral(refused)
    assert text_of(refused) == "Bob has opted out of actions: their figures are theirs alone."
    assert f"<@{CAROL['id']}>" not in text_of(refused)

    own = await send(discord_api, discord_api.slash("stats", user=BOB))  # their own: shown
    assert "hug" in text_of(own) and f"<@{ALICE['id']}>" in text_of(own)

    # Someone else's stats do not list an opted-out partner either.
    carol = await send(discord_api, discord_api.slash("stats", {"user": CAROL}, user=ALICE))
    assert not is_ephemeral(carol)
    assert "hug" in text_of(carol) and f"<@{BOB['id']}>" not in text_of(carol)

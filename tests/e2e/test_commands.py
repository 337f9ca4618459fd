"""The bot end to end: real discord.py against the loopback Discord and nekos.best stand-ins.

Every test asserts on what the bot sent to Discord (callbacks, edits, follow-ups) and what it
asked of nekos.best."""

from __future__ import annotations

import uuid

import pytest

from bot import wording
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import running_bot
from tests.helpers import WINDOW, assert_no_pings_except, buttons, is_ephemeral, text_of

FIXED = {
    "action",
    "image",
    "search",
    "source",
    "help",
    "stats",
    "optout",
    "optin",
    "forgetme",
    "config",
    "leaderboard",
    "mydata",
}


def registered(discord_api: FakeDiscord) -> dict[str, dict]:
    return {c["name"]: c for c in discord_api.commands.get(None) or []}


async def test_one_command_per_category_including_new_ones(discord_api, nekos, data_dir) -> None:
    nekos.add_category("glomp", "gif")  # a category no published list has
    async with running_bot(discord_api, nekos, data_dir):
        commands = registered(discord_api)
    chat = {name for name, c in commands.items() if c.get("type", 1) == 1}
    expected = set(nekos.categories) | FIXED
    assert chat == expected
    assert len(nekos.categories) == 64
    glomp = commands["glomp"]
    assert [o["name"] for o in glomp["options"]] == [
        "user",
        "user2",
        "user3",
        "user4",
        "user5",
        "message",
    ]
    neko = commands["neko"]
    assert [o["name"] for o in neko["options"]] == ["amount"]
    assert neko["options"][0]["max_value"] == 10
    menus = {name for name, c in commands.items() if c.get("type") in (2, 3)}
    assert menus == {"Hug", "Pat", "Cuddle", "Kiss", "Poke", "Image credit"}
    assert discord_api.command_puts == 1


async def test_categories_past_the_command_limit_use_action_and_image(
    discord_api, nekos, data_dir
) -> None:
    for i in range(50):
        nekos.add_category(f"extra{i:02d}", "gif")
    async with running_bot(discord_api, nekos, data_dir):
        chat = [c for c in discord_api.commands[None] if c.get("type", 1) == 1]
        assert len(chat) == 100
        names = {c["name"] for c in chat}
        assert "extra49" not in names  # past the limit, in /endpoints order
        handle = await discord_api.interact(
            discord_api.slash("action", {"category": "extra49", "user": make_user(name="bob")})
        )
        message = await handle.wait_message()
        assert "extra49" in text_of(message)
        assert handle.response_time < WINDOW


async def test_hug_with_and_without_target(bot, discord_api, nekos) -> None:
    bob = make_user(name="bob")
    handle = await discord_api.interact(discord_api.slash("hug", {"user": bob}))
    message = await handle.wait_message()
    assert handle.response_time < WINDOW
    assert message["content"] == f"<@{bob['id']}>"
    assert_no_pings_except(message, {bob["id"]})
    embed = message["embeds"][0]
    assert "bob" in embed["description"] and "Tester" in embed["description"]
    assert embed["image"]["url"].startswith(nekos.base_url + "/hug/")
    asset = nekos.assets[embed["image"]["url"]]
    assert embed["footer"]["text"].endswith(asset.anime_name)

    alone = await discord_api.interact(discord_api.slash("hug"))
    message = await alone.wait_message()
    assert not message.get("content")
    assert message["mentions"] == []
    assert "Tester" in message["embeds"][0]["description"]
    assert message["embeds"][0]["description"] != embed["description"]


async def test_action_note_is_escaped_and_cannot_ping(bot, discord_api) -> None:
    bob = make_user(name="bob")
    note = "@everyone <@&123456789012345678> **bold** <@999999999999999999>"
    handle = await discord_api.interact(discord_api.slash("pat", {"user": bob, "message": note}))
    message = await handle.wait_message()
    assert_no_pings_except(message, {bob["id"]})
    description = message["embeds"][0]["description"]
    assert "> " in description and "\\*\\*bold\\*\\*" in description


async def test_images_credit_artist_and_source(bot, discord_api, nekos) -> None:
    handle = await discord_api.interact(discord_api.slash("neko", {"amount": 3}))
    message = await handle.wait_message()
    assert len(message["embeds"]) == 3
    links = [b for b in buttons(message) if b.get("url")]
    assert len(links) == 3
    for embed, link in zip(message["embeds"], links, strict=True):
        asset = nekos.assets[embed["image"]["url"]]
        assert asset.artist_name in embed["author"]["name"]
        assert embed["author"].get("url") == asset.artist_href
        assert link["url"] == asset.source_url
    assert message["mentions"] == []


async def test_search_with_and_without_results(bot, discord_api, nekos) -> None:
    anime = next(a.anime_name for a in nekos.assets.values() if a.anime_name)
    query = anime.split()[0][:20]
    if len(query) < 3:
        query = anime[:10]
    handle = await discord_api.interact(
        discord_api.slash("search", {"query": query, "type": 2, "amount": 2})
    )
    message = await handle.wait_message()
    assert not is_ephemeral(message)
    assert message["embeds"] and query.lower() in text_of(message).lower()

    handle = await discord_api.interact(
        discord_api.slash("search", {"query": "zzzz no such anime", "type": 1})
    )
    message = await handle.wait_message()
    assert is_ephemeral(message)
    assert "zzzz no such anime" in text_of(message)


@pytest.mark.parametrize(
    "options",
    [
        [{"name": "query", "type": 3, "value": ""}],
        [{"name": "query", "type": 3, "value": "  a "}],
        [{"name": "query", "type": 3, "value": "x" * 151}],
        [{"name": "query", "type": 3, "value": "senko"}, {"name": "type", "type": 4, "value": 9}],
        [{"name": "query", "type": 3, "value": "senko"}, {"name": "amount", "type": 4, "value": 0}],
        [
            {"name": "query", "type": 3, "value": "senko"},
            {"name": "category", "type": 3, "value": "not-a-category"},
        ],
    ],
)
async def test_search_rejects_invalid_input_without_asking_nekos(
    bot, discord_api, nekos, options
) -> None:
    before = nekos.count("/search")
    handle = await discord_api.interact(discord_api.slash("search", options))
    message = await handle.wait_message()
    assert is_ephemeral(message)
    assert handle.response_time < WINDOW
    assert nekos.count("/search") == before


async def test_source_good_foreign_and_missing(bot, discord_api, nekos) -> None:
    first = await discord_api.interact(discord_api.slash("waifu"))
    url = (await first.wait_message())["embeds"][0]["image"]["url"]
    asset = nekos.assets[url]

    handle = await discord_api.interact(discord_api.slash("source", {"url": url}))
    message = await handle.wait_message()
    assert asset.artist_name in text_of(message)
    assert nekos.count(f"/waifu/{asset.filename}") == 1

    before = len(nekos.requests)
    for foreign in (
        "https://evil.example/api/v2/neko/abc.png",
        url.replace("127.0.0.1", "localhost"),
        "file:///etc/passwd",
    ):
        handle = await discord_api.interact(discord_api.slash("source", {"url": foreign}))
        message = await handle.wait_message()
        assert is_ephemeral(message)
    assert len(nekos.requests) == before

    missing = f"{nekos.base_url}/neko/{uuid.uuid4()}.png"
    handle = await discord_api.interact(discord_api.slash("source", {"url": missing}))
    message = await handle.wait_message()
    assert is_ephemeral(message)
    assert wording.message("error_asset_missing") in text_of(message)


async def test_image_credit_message_menu(bot, discord_api, nekos) -> None:
    first = await discord_api.interact(discord_api.slash("hug"))
    posted = await first.wait_message()
    url = posted["embeds"][0]["image"]["url"]
    handle = await discord_api.interact(discord_api.message_command("Image credit", posted))
    message = await handle.wait_message()
    assert is_ephemeral(message)
    assert nekos.assets[url].anime_name in text_of(message)

    plain = discord_api.user_message("no links here, just https://example.com/cat.png")
    handle = await discord_api.interact(discord_api.message_command("Image credit", plain))
    assert is_ephemeral(await handle.wait_message())


async def test_help_lists_categories_and_invite(bot, discord_api, nekos) -> None:
    handle = await discord_api.interact(discord_api.slash("help"))
    message = await handle.wait_message()
    text = text_of(message)
    assert "/hug" in text and "/neko" in text and "/search" in text
    assert any("oauth2/authorize" in (b.get("url") or "") for b in buttons(message))


async def test_dm_commands_work_without_counters(bot, discord_api) -> None:
    bob = make_user(name="bob")
    handle = await discord_api.interact(discord_api.slash("hug", {"user": bob}, guild_id=None))
    message = await handle.wait_message()
    assert "received" not in message["embeds"][0]["description"]
    assert not any(b.get("label", "").endswith("back") for b in buttons(message))


@pytest.mark.parametrize("failure", ["500", "hang", "malformed", "missing_fields", "429"])
async def test_nekos_failing_gets_a_clear_ephemeral_answer(
    bot, discord_api, nekos: FakeNekos, failure: str
) -> None:
    if failure == "500":
        nekos.fail(500)
    elif failure == "hang":
        nekos.hang = True
    elif failure == "malformed":
        nekos.malformed = True
    elif failure == "missing_fields":
        nekos.missing_fields = True
    else:
        nekos.force_429(reset_in=30, bucket="category:wave")
    handle = await discord_api.interact(discord_api.slash("wave"))  # not pre-warmed
    message = await handle.wait_message(timeout=20)
    assert handle.response_time < WINDOW
    assert is_ephemeral(message), handle.describe()
    text = text_of(message)
    if failure == "429":
        assert "try again in" in text
        seconds = int("".join(ch for ch in text.split("try again in")[1][:6] if ch.isdigit()))
        assert 20 <= seconds <= 31
    assert not handle.rejected_callbacks
    nekos.hang = False


async def test_no_reregistration_on_restart(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir):
        pass
    assert discord_api.command_puts == 1
    async with running_bot(discord_api, nekos, data_dir):
        pass
    assert discord_api.command_puts == 1
    nekos.add_category("glomp")
    async with running_bot(discord_api, nekos, data_dir):
        pass
    assert discord_api.command_puts == 2


async def test_new_category_while_running_becomes_a_command(bot, discord_api, nekos) -> None:
    nekos.add_category("glomp")
    await bot.bot.catalog.refresh()
    await discord_api.wait_until(lambda: "glomp" in registered(discord_api), timeout=5)
    handle = await discord_api.interact(discord_api.slash("glomp", {"user": make_user()}))
    message = await handle.wait_message()
    assert "glomp" in text_of(message)


async def test_autocomplete_offers_categories_of_the_right_kind(bot, discord_api) -> None:
    handle = await discord_api.interact(
        discord_api.autocomplete(
            "search", "category", {"query": "senko", "type": 1, "category": "n"}
        )
    )
    await handle.wait_callback()
    names = [c["value"] for c in handle.choices]
    assert names[0] == "neko" and "hug" not in names and len(names) <= 25

    handle = await discord_api.interact(
        discord_api.autocomplete("action", "category", {"category": ""})
    )
    await handle.wait_callback()
    names = [c["value"] for c in handle.choices]
    assert len(names) == 25 and "neko" not in names
    assert handle.response_time < WINDOW


async def test_dev_guild_registers_commands_in_that_server(discord_api, nekos, data_dir) -> None:
    guild_id = discord_api.guild_ids[0]
    async with running_bot(discord_api, nekos, data_dir, DEV_GUILD_ID=str(guild_id)):
        guild_commands = {c["name"] for c in discord_api.commands.get(guild_id) or []}
        assert {"hug", "neko", "search", "Hug"} <= guild_commands
        assert not discord_api.commands.get(None)
        handle = await discord_api.interact(discord_api.slash("neko"))
        assert (await handle.wait_message())["embeds"]


async def test_image_credit_for_a_missing_asset_asks_once(bot, discord_api, nekos) -> None:
    missing = f"{nekos.base_url}/neko/{uuid.uuid4()}.png"
    posted = discord_api.user_message(f"look: {missing}")
    handle = await discord_api.interact(discord_api.message_command("Image credit", posted))
    message = await handle.wait_message()
    assert is_ephemeral(message)
    assert wording.message("error_asset_missing") in text_of(message)
    assert nekos.count(missing.removeprefix(nekos.base_url)) == 1

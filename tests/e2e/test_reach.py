"""Reach end to end: /config, several targets, consent both ways, user installs."""

from __future__ import annotations

from typing import Any

from bot import wording
from tests.fakes.discord import FakeDiscord, make_user, snowflake
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot, running_bot
from tests.helpers import buttons, image_url, is_ephemeral, text_of

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
CAROL = make_user(name="carol", global_name="Carol")
DAVE = make_user(name="dave", global_name="Dave")
MANAGE_GUILD = 1 << 5


async def send(discord_api: FakeDiscord, interaction: dict[str, Any]) -> dict[str, Any]:
    handle = await discord_api.interact(interaction)
    return await handle.wait_message()


async def config(discord_api: FakeDiscord, sub: str, options: dict | None = None, **kw: Any):
    return await send(discord_api, discord_api.slash("config", options, subcommand=sub, **kw))


def fetched(nekos: FakeNekos, category: str) -> int:
    return len(nekos.requests_to(f"/{category}"))


async def test_config_needs_manage_server_even_when_forged(bot, discord_api) -> None:
    answer = await config(discord_api, "show", user=BOB, permissions=0)
    assert is_ephemeral(answer)
    assert "Manage Server" in text_of(answer)
    shown = await config(discord_api, "show", user=ALICE)
    assert is_ephemeral(shown) and "Settings in this server" in text_of(shown)
    registered = {c["name"]: c for c in discord_api.commands[None]}["config"]
    assert registered["contexts"] == [0]
    assert int(registered["default_member_permissions"]) == MANAGE_GUILD
    subcommands = {o["name"] for o in registered["options"]}
    assert subcommands == {
        "show",
        "disable",
        "enable",
        "channels",
        "cooldown",
        "pings",
        "leaderboard",
    }


async def test_a_disabled_category_costs_no_request_on_any_path(
    discord_api, nekos, data_dir
) -> None:
    async with running_bot(discord_api, nekos, data_dir) as bot:
        done = await config(discord_api, "disable", {"category": "bonk"})
        assert is_ephemeral(done) and "bonk" in text_of(done)
        for interaction in (
            discord_api.slash("bonk", {"user": BOB}, user=ALICE),
            discord_api.slash("action", {"category": "bonk", "user": BOB}, user=ALICE),
            discord_api.slash("action", {"category": " Bonk ", "user": BOB}, user=ALICE),
        ):
            answer = await send(discord_api, interaction)
            assert is_ephemeral(answer)
            assert text_of(answer) == "**bonk** is disabled in this server."
        assert fetched(nekos, "bonk") == 0  # a cold category: not even a refill
        shown = await config(discord_api, "show")
        assert "bonk" in text_of(shown)
    async with running_bot(discord_api, nekos, data_dir) as bot:  # survives a restart
        answer = await send(discord_api, discord_api.slash("bonk", user=ALICE))
        assert is_ephemeral(answer) and "disabled" in text_of(answer)
        assert fetched(nekos, "bonk") == 0
        await config(discord_api, "disable", {"category": "gif"})  # a whole kind
        for name in ("hug", "glomp"):
            answer = await send(discord_api, discord_api.slash("action", {"category": name}))
            assert is_ephemeral(answer) and "GIFs are disabled" in text_of(answer), name
        image = await send(discord_api, discord_api.slash("neko", user=ALICE))
        assert image_url(image)
        await config(discord_api, "enable", {"category": "gif"})
        await config(discord_api, "enable", {"category": "bonk"})
        answer = await send(discord_api, discord_api.slash("bonk", {"user": BOB}, user=ALICE))
        assert not is_ephemeral(answer) and image_url(answer)
        assert bot.bot.catalog.get("bonk") is not None


async def test_buttons_of_a_disabled_category_are_refused(bot, discord_api) -> None:
    message = await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
    await config(discord_api, "disable", {"category": "hug"})
    back = next(b for b in buttons(message) if b["label"] == "Hug back")
    press = await send(discord_api, discord_api.component(back["custom_id"], message, user=BOB))
    assert is_ephemeral(press) and "disabled" in text_of(press)


async def test_answers_only_in_the_chosen_channels(bot, discord_api) -> None:
    home = discord_api.channel_ids[discord_api.guild_ids[0]]
    other = home + 1000
    done = await config(discord_api, "channels", {"channel": str(other)})
    assert f"<#{other}>" in text_of(done)
    refused = await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
    assert is_ephemeral(refused) and text_of(refused) == f"I only answer in <#{other}> here."
    there = discord_api.slash("hug", {"user": BOB}, user=ALICE, channel_id=other)
    assert not is_ephemeral(await send(discord_api, there))
    thread = discord_api.slash(
        "hug", {"user": BOB}, user=ALICE, channel_id=other + 1, parent_id=other
    )
    assert not is_ephemeral(await send(discord_api, thread))  # a thread follows its parent
    assert is_ephemeral(await config(discord_api, "show"))  # /config works everywhere
    await config(discord_api, "channels")
    assert not is_ephemeral(await send(discord_api, discord_api.slash("hug", user=ALICE)))


async def test_a_server_cooldown_overrides_cooldown_0(bot, discord_api) -> None:
    await config(discord_api, "cooldown", {"count": 1, "seconds": 60})
    assert not is_ephemeral(await send(discord_api, discord_api.slash("hug", user=ALICE)))
    refused = await send(discord_api, discord_api.slash("hug", user=ALICE))
    assert is_ephemeral(refused) and text_of(refused).startswith("Slow down — try again in")
    await config(discord_api, "cooldown", {"count": 0, "seconds": 60})
    assert not is_ephemeral(await send(discord_api, discord_api.slash("hug", user=ALICE)))


async def test_pings_off_names_without_pinging(bot, discord_api) -> None:
    await config(discord_api, "pings", {"value": "off"})
    message = await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
    assert not message.get("content") and message["mentions"] == []
    assert "Bob" in text_of(message)


async def test_three_targets_are_pinged_and_counted_once_each(bot: RunningBot, discord_api) -> None:
    targets = {"user": BOB, "user2": CAROL, "user3": DAVE, "user4": BOB, "user5": ALICE}
    message = await send(discord_api, discord_api.slash("hug", targets, user=ALICE))
    mentioned = {m["id"] for m in message["mentions"]}
    assert mentioned == {BOB["id"], CAROL["id"], DAVE["id"]}  # the duplicate and the actor: no
    text = text_of(message)
    assert "Bob" in text and "Carol" in text and "Dave" in text
    guild = discord_api.guild_ids[0]
    for target in (BOB, CAROL, DAVE):
        counts = await bot.bot.store.counts(
            guild_id=guild, action="hug", actor_id=int(ALICE["id"]), target_id=int(target["id"])
        )
        assert counts.pair == 1, target["username"]
    backs = [b for b in buttons(message) if b["label"] == "Hug back"]
    assert len(backs) == 3
    press = await send(
        discord_api, discord_api.component(backs[1]["custom_id"], message, user=CAROL)
    )
    assert not is_ephemeral(press)


async def test_consent_holds_both_ways(bot, discord_api) -> None:
    await send(discord_api, discord_api.slash("optout", user=CAROL))
    refused = await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=CAROL))
    assert is_ephemeral(refused) and "/optin" in text_of(refused)
    refused = await send(
        discord_api, discord_api.slash("hug", {"user": BOB, "user2": CAROL}, user=ALICE)
    )
    assert is_ephemeral(refused) and text_of(refused) == "Carol has opted out of actions."
    robot = make_user(name="otherbot", global_name="Robo", bot=True)
    refused = await send(discord_api, discord_api.slash("pat", {"user": robot}, user=ALICE))
    assert is_ephemeral(refused) and "Robo" in text_of(refused)
    me = make_user(id=int(discord_api.bot_user["id"]), name="nekocord", bot=True)
    assert not is_ephemeral(await send(discord_api, discord_api.slash("pat", {"user": me})))


async def test_a_user_install_is_answered_and_not_counted(bot: RunningBot, discord_api) -> None:
    elsewhere = int(discord_api.guild_ids[0]) + 12345  # a server the bot is not in
    hug = discord_api.slash("hug", {"user": BOB}, user=ALICE, guild_id=elsewhere, user_install=True)
    message = await send(discord_api, hug)
    assert not is_ephemeral(message) and image_url(message)
    assert "has received" not in text_of(message)
    stats = await bot.bot.store.user_stats(guild_id=elsewhere, user_id=int(BOB["id"]))
    assert stats.actions == []
    registered = {c["name"]: c for c in discord_api.commands[None]}
    assert registered["hug"]["integration_types"] == [0, 1]
    assert registered["hug"]["contexts"] == [0, 1, 2]
    assert registered["stats"]["contexts"] == [0]


LANGUAGES = ("de", "es-ES", "fr", "ja", "pt-BR")
ENGLISH = wording.tables.load_english()


def localized(entry: dict[str, Any], field: str = "name_localizations") -> set[str]:
    return set(entry.get(field) or {})


async def test_the_registered_payload_carries_every_localization(
    discord_api, nekos, data_dir
) -> None:
    nekos.add_category("glomp")  # a category only /endpoints knows
    async with running_bot(discord_api, nekos, data_dir):
        commands = {c["name"]: c for c in discord_api.commands[None]}
        for name in ("hug", "neko", "action", "search", "config", "help", "Hug", "Image credit"):
            assert localized(commands[name]) == set(LANGUAGES), name
        assert commands["hug"]["name_localizations"]["de"] == wording.category_name("hug", "de")
        for option in commands["hug"]["options"]:
            assert (
                localized(option)
                == localized(option, "description_localizations")
                == set(LANGUAGES)
            ), option["name"]
        search_type = next(o for o in commands["search"]["options"] if o["name"] == "type")
        assert all(localized(choice) == set(LANGUAGES) for choice in search_type["choices"])
        for sub in commands["config"]["options"]:
            assert localized(sub) == set(LANGUAGES), sub["name"]
        # A category only /endpoints knows: described in every language, named as nekos.best does.
        glomp = commands["glomp"]
        assert localized(glomp, "description_localizations") == set(LANGUAGES)
        assert not localized(glomp)
        assert "glomp" in glomp["description_localizations"]["ja"]


async def test_public_answers_follow_the_server_and_private_ones_the_member(
    bot, discord_api
) -> None:
    def sentences(locale: str) -> set[str]:
        table = ENGLISH if locale == "en" else wording.tables.load_translation(locale, ENGLISH)
        assert table is not None
        templates = table.gifs["hug"].sentences[wording.Case.OTHER]
        return {t.format_map({"a": "Alice", "b": "Bob"}) for t in templates}

    def first_line(message: dict[str, Any]) -> str:
        return message["embeds"][0]["description"].split("\n")[0]

    for guild_locale, locale, expected in (
        ("de", "en-US", "de"),
        ("ja", "fr", "ja"),
        ("en-US", "de", "en"),  # strictly the server's language when it has one
        ("pt-BR", "pt-BR", "pt-BR"),
        ("es-ES", "en-US", "es-ES"),
        ("fr", "ja", "fr"),
    ):
        hug = discord_api.slash(
            "hug", {"user": BOB}, user=ALICE, guild_locale=guild_locale, locale=locale
        )
        assert first_line(await send(discord_api, hug)) in sentences(expected), guild_locale
    dm = discord_api.slash("hug", {"user": BOB}, user=ALICE, guild_id=None, locale="fr")
    assert first_line(await send(discord_api, dm)) in sentences("fr")
    await send(discord_api, discord_api.slash("optout", user=CAROL))
    for locale, expected in (("fr", "fr"), ("es-419", "es-ES"), ("ko", "en")):
        refused = discord_api.slash(
            "hug", {"user": CAROL}, user=ALICE, guild_locale="de", locale=locale
        )
        answer = await send(discord_api, refused)
        assert is_ephemeral(answer)
        assert text_of(answer) == wording.message(
            "error_target_opted_out", expected, name="Carol"
        ), locale


async def test_a_changed_translation_registers_again(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir):
        pass
    async with running_bot(discord_api, nekos, data_dir):
        pass
    assert discord_api.command_puts == 1  # nothing changed: nothing registered
    german = wording._TABLES["de"].messages
    original = german["command_help"]
    german["command_help"] = original + " (neu)"
    try:
        async with running_bot(discord_api, nekos, data_dir):
            pass
    finally:
        german["command_help"] = original
    assert discord_api.command_puts == 2
    help_command = {c["name"]: c for c in discord_api.commands[None]}["help"]
    assert help_command["description_localizations"]["de"].endswith("(neu)")


async def test_without_user_install_commands_are_for_servers_only(
    discord_api, nekos, data_dir, caplog
) -> None:
    discord_api.application["integration_types_config"] = {"0": {}}
    async with running_bot(discord_api, nekos, data_dir):
        registered = {c["name"]: c for c in discord_api.commands[None]}
    assert {tuple(c["integration_types"]) for c in registered.values()} == {(0,)}
    assert "enable User Install in the developer portal" in caplog.text


async def test_more_paths_respect_a_disabled_category(bot, discord_api, nekos) -> None:
    await config(discord_api, "disable", {"category": "bonk"})
    search = discord_api.slash("search", {"query": "Senko", "type": 2, "category": "bonk"})
    assert "disabled" in text_of(await send(discord_api, search))
    await config(discord_api, "disable", {"category": "pat"})
    menu = await send(discord_api, discord_api.user_command("Pat", BOB, user=ALICE))
    assert is_ephemeral(menu) and "disabled" in text_of(menu)
    assert len(nekos.requests_to("/search")) == 0


async def test_several_targets_cost_one_cooldown_slot(discord_api, nekos, data_dir) -> None:
    async with running_bot(discord_api, nekos, data_dir, COOLDOWN="2/60"):
        three = {"user": BOB, "user2": CAROL, "user3": DAVE}
        for _ in range(2):
            message = await send(discord_api, discord_api.slash("hug", three, user=ALICE))
            assert not is_ephemeral(message)
        refused = await send(discord_api, discord_api.slash("hug", three, user=ALICE))
        assert text_of(refused).startswith("Slow down")


async def test_a_disabled_kind_covers_searches_of_that_kind(bot, discord_api, nekos) -> None:
    await config(discord_api, "disable", {"category": "gif"})
    search = discord_api.slash("search", {"query": "Senko"})  # GIFs when the type is left out
    answer = await send(discord_api, search)
    assert is_ephemeral(answer) and "GIFs are disabled" in text_of(answer)
    images = discord_api.slash("search", {"query": "Senko", "type": 1})
    assert "disabled" not in text_of(await send(discord_api, images))
    assert len(nekos.requests_to("/search")) == 1


# -- /config channels: only channels that can hold an answer -----------------------------------

ANSWER_CHANNEL_TYPES = {0, 2, 5, 10, 11, 12, 13, 15, 16}  # text, voice, news, threads, stage, …
REFUSED_CHANNEL_TYPES = [1, 3, 4, 14]  # DM, group DM, category, directory


def channel_option(discord_api: FakeDiscord, channel_type: int, **kw: Any) -> dict[str, Any]:
    """`/config channels` naming a resolved channel of `channel_type` (forged: Discord's client
    offers only the declared types)."""
    guild_id = discord_api.guild_ids[0]
    channel_id = snowflake()
    channel: dict[str, Any] = {
        "id": channel_id,
        "type": channel_type,
        "name": f"type-{channel_type}",
        "permissions": "0",
        "guild_id": str(guild_id),
    }
    if channel_type in (10, 11, 12):  # threads carry their parent and metadata
        channel.update(
            parent_id=str(discord_api.channel_ids[guild_id]),
            owner_id=discord_api.default_user["id"],
            member_count=1,
            message_count=0,
            thread_metadata={
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": "2026-01-01T00:00:00+00:00",
                "locked": False,
            },
        )
    options = [{"name": "channel", "type": 7, "value": channel_id}]
    payload = discord_api.slash("config", options, subcommand="channels", **kw)
    payload["data"]["resolved"] = {"channels": {channel_id: channel}}
    return payload


async def test_config_channels_offers_and_takes_only_channels_that_hold_answers(
    bot: RunningBot, discord_api: FakeDiscord
) -> None:
    registered = {c["name"]: c for c in discord_api.commands[None]}["config"]
    sub = next(o for o in registered["options"] if o["name"] == "channels")
    for option in sub["options"]:
        assert set(option.get("channel_types") or ()) == ANSWER_CHANNEL_TYPES, option
    for channel_type in sorted(ANSWER_CHANNEL_TYPES):
        done = await send(discord_api, channel_option(discord_api, channel_type))
        assert "<#" in text_of(done), (channel_type, text_of(done))
    await config(discord_api, "channels")  # answer everywhere again
    for channel_type in REFUSED_CHANNEL_TYPES:
        for locale in ("en-US", *wording.LOCALES):
            refused = await send(
                discord_api, channel_option(discord_api, channel_type, locale=locale)
            )
            assert is_ephemeral(refused)
            expected = wording.message("error_channel_type", wording.message_locale(locale))
            assert text_of(refused) == expected, (channel_type, locale)
    settings = await bot.bot.store.guild_settings(discord_api.guild_ids[0])
    assert settings.channels == ()  # nothing refused was kept

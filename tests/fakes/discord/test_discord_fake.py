"""The Discord stand-in against a real discord.py bot over loopback sockets.

Each test starts a :class:`FakeDiscord`, runs a minimal ``commands.Bot`` (defined here) against
it and checks what the fake recorded. Every wait is bounded; fixtures always close the bot and
the fake and restore discord.py's process-global URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import EPHEMERAL, LOADING, FakeDiscord, make_user
from tests.fakes.discord.guilds import GuildShape

TOKEN = "test-token"
pytestmark = pytest.mark.timeout(30)


# ----------------------------------------------------------------------------- the test bot
class Counter(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"counter:(?P<n>\d+)"):
    def __init__(self, n: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"+1 ({n})", style=discord.ButtonStyle.primary, custom_id=f"counter:{n}"
            )
        )
        self.n = n

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Button[Any],
        match: re.Match[str],
        /,
    ) -> Counter:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(Counter(self.n + 1))
        await interaction.response.edit_message(content=f"count {self.n + 1}", view=view)


def make_bot() -> commands.Bot:
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=discord.Intents.default(),
        guild_ready_timeout=0.1,
    )
    bot.ready_events = 0  # type: ignore[attr-defined]

    @bot.event
    async def on_ready() -> None:
        bot.ready_events += 1  # type: ignore[attr-defined]

    async def setup_hook() -> None:
        bot.add_dynamic_items(Counter)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    @bot.tree.command(description="Say hello")
    async def hello(interaction: discord.Interaction, user: discord.Member | None = None) -> None:
        target = user or interaction.user
        await interaction.response.send_message(
            f"hello {target.mention} @everyone",
            embed=discord.Embed(title="Hi", description=f"to {target.mention}"),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @bot.tree.command(description="Think first")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await asyncio.sleep(0.05)
        await interaction.edit_original_response(content="done thinking")

    @bot.tree.command(description="A secret")
    async def secret(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("psst", ephemeral=True)

    @bot.tree.command(description="Two messages")
    async def multi(interaction: discord.Interaction, count: int = 1) -> None:
        await interaction.response.send_message(f"first of {count + 1}")
        for i in range(count):
            await interaction.followup.send(f"follow-up {i + 1}")

    @bot.tree.command(description="Defer then follow up")
    async def deferred(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.followup.send("after defer", ephemeral=True)

    @bot.tree.command(description="Pick a category")
    async def pick(interaction: discord.Interaction, category: str) -> None:
        await interaction.response.send_message(f"picked {category}")

    @pick.autocomplete("category")
    async def pick_autocomplete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = ["hug", "happy", "highfive", "pat", "poke"]
        return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    @bot.tree.command(description="A counter button")
    async def counter(interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(Counter(0))
        await interaction.response.send_message("count 0", view=view)

    @bot.tree.context_menu(name="Inspect")
    async def inspect(interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.send_message(f"user {member.id} {member.name}", ephemeral=True)

    @bot.tree.context_menu(name="Quote")
    async def quote(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(f"> {message.content} by {message.author.name}")

    return bot


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def restore_discord_urls() -> Any:
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guild_count=1) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[commands.Bot]:
    client = make_bot()
    async with fake.run_bot(client, timeout=5):
        await asyncio.wait_for(client.tree.sync(), 5)
        yield client


# ------------------------------------------------------------------------------------ tests
async def test_login_ready_and_sync(fake: FakeDiscord, bot: commands.Bot) -> None:
    assert bot.user is not None and bot.user.id == fake.application_id
    assert bot.application_id == fake.application_id
    assert bot.ready_events == 1  # type: ignore[attr-defined]
    assert [g.id for g in bot.guilds] == fake.guild_ids
    guild = bot.guilds[0]
    assert guild.me is not None and guild.text_channels and guild.default_role.id == guild.id
    assert fake.sessions == 1
    assert len(fake.identifies) == 1 and fake.intents == discord.Intents.default().value
    assert fake.gateway_connects[0]["query"]["compress"] == "zlib-stream"
    assert fake.requests_to("GET", r"^/users/@me$")[0].headers["Authorization"] == f"Bot {TOKEN}"
    assert fake.requests_to("GET", r"^/oauth2/applications/@me$")
    assert fake.command_puts == 1
    names = {(c["name"], c["type"]) for c in fake.commands[None]}
    assert ("hello", 1) in names and ("Inspect", 2) in names and ("Quote", 3) in names
    assert all(c["application_id"] == str(fake.application_id) for c in fake.commands[None])
    # a second sync keeps ids (bulk overwrite) and is counted
    first_ids = {c["name"]: c["id"] for c in fake.commands[None]}
    synced = await asyncio.wait_for(bot.tree.sync(), 5)
    assert fake.command_puts == 2
    assert {c.name: str(c.id) for c in synced} == first_ids


async def test_slash_send_message(fake: FakeDiscord, bot: commands.Bot) -> None:
    alice = make_user(name="alice")
    handle = await fake.interact(fake.slash("hello", {"user": alice}))
    message = await handle.wait_message(timeout=5)
    assert handle.response_type == 4
    assert handle.response_time is not None and 0 <= handle.response_time < 3
    body = handle.callbacks[0].body
    assert body["data"]["allowed_mentions"] == {"parse": []}
    assert body["data"]["embeds"][0]["title"] == "Hi"
    assert message["content"] == f"hello <@{alice['id']}> @everyone"
    assert message["embeds"][0]["description"] == f"to <@{alice['id']}>"
    # allowed_mentions none: nobody is pinged
    assert message["mentions"] == [] and message["mention_everyone"] is False
    assert not message["flags"] & EPHEMERAL
    assert fake.messages[message["id"]] is message
    req = fake.requests_to("POST", r"^/interactions/")[0]
    assert req.query == {"with_response": "1"} and "Authorization" not in req.headers


async def test_defer_then_edit_original(fake: FakeDiscord, bot: commands.Bot) -> None:
    handle = await fake.interact(fake.slash("slow"))
    body = await handle.wait_callback(timeout=5)
    assert body["type"] == 5
    message = await handle.wait_message(timeout=5)
    assert message["content"] == "done thinking"
    assert not message["flags"] & LOADING
    assert handle.edits and handle.edits[0].original and handle.edits[0].body["content"]
    assert handle.original is message


async def test_ephemeral_followup_and_deferred_visibility(
    fake: FakeDiscord, bot: commands.Bot
) -> None:
    secret = await fake.interact(fake.slash("secret"))
    assert (await secret.wait_message(timeout=5))["flags"] & EPHEMERAL

    multi = await fake.interact(fake.slash("multi", {"count": 2}))
    await multi.wait_for(lambda r: len(r.followups) == 2, timeout=5)
    assert multi.original is not None and multi.original["content"] == "first of 3"
    assert [m["content"] for m in multi.followups] == ["follow-up 1", "follow-up 2"]
    posts = fake.requests_to("POST", rf"^/webhooks/{fake.application_id}/{multi.token}$")
    assert len(posts) == 2 and posts[0].query["wait"] == "1"

    # the first follow-up after a public defer replaces the placeholder and stays public
    deferred = await fake.interact(fake.slash("deferred"))
    message = await deferred.wait_message(timeout=5)
    assert message["content"] == "after defer"
    assert message is deferred.original
    assert not message["flags"] & (EPHEMERAL | LOADING)


async def test_autocomplete(fake: FakeDiscord, bot: commands.Bot) -> None:
    handle = await fake.interact(fake.autocomplete("pick", "category", {"category": "h"}))
    body = await handle.wait_callback(timeout=5)
    assert body["type"] == 8
    assert [c["value"] for c in body["data"]["choices"]] == ["hug", "happy", "highfive"]
    assert handle.choices == body["data"]["choices"]
    # an autocomplete cannot be answered twice: the record says so if the bot tried
    assert handle.rejected_callbacks == []


async def test_dynamic_item_button(fake: FakeDiscord, bot: commands.Bot) -> None:
    first = await fake.interact(fake.slash("counter"))
    message = await first.wait_message(timeout=5)
    button = message["components"][0]["components"][0]
    assert button["custom_id"] == "counter:0" and isinstance(button["id"], int)

    press = await fake.interact(fake.component("counter:0", message))
    body = await press.wait_callback(timeout=5)
    assert body["type"] == 7
    assert body["data"]["content"] == "count 1"
    updated = await press.wait_message(timeout=5)
    assert updated["id"] == message["id"]
    assert updated["components"][0]["components"][0]["custom_id"] == "counter:1"
    assert fake.messages[message["id"]]["content"] == "count 1"
    with pytest.raises(ValueError):
        fake.component("counter:99", message)


async def test_context_menus(fake: FakeDiscord, bot: commands.Bot) -> None:
    bob = make_user(name="bob")
    handle = await fake.interact(fake.user_command("Inspect", bob))
    message = await handle.wait_message(timeout=5)
    assert message["content"] == f"user {bob['id']} bob"
    assert message["flags"] & EPHEMERAL

    target = fake.user_message("nya~", author=bob)
    handle = await fake.interact(fake.message_command("Quote", target))
    message = await handle.wait_message(timeout=5)
    assert message["content"] == "> nya~ by bob"
    assert message["type"] == 23


async def test_double_acknowledge_is_rejected(fake: FakeDiscord, bot: commands.Bot) -> None:
    seen: asyncio.Future[discord.Interaction] = asyncio.get_running_loop().create_future()

    @bot.tree.command(description="Answer twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("one")
        adapter = discord.webhook.async_.async_context.get()
        params = discord.webhook.async_.interaction_response_params(4, {"content": "two"})
        try:
            await adapter.create_interaction_response(
                interaction.id, interaction.token, session=interaction._session, params=params
            )
        except discord.HTTPException as exc:
            seen.set_result(exc)  # type: ignore[arg-type]

    handle = await fake.interact(fake.slash("twice"))
    exc: Any = await asyncio.wait_for(seen, 5)
    assert exc.status == 400 and exc.code == 40060
    assert len(handle.callbacks) == 1 and handle.rejected_callbacks[0].code == 40060


async def test_wrong_token_is_login_failure(fake: FakeDiscord) -> None:
    client = make_bot()
    with pytest.raises(discord.LoginFailure):
        async with fake.run_bot(client, token="wrong", timeout=5):
            pass
    assert fake.requests_to("GET", r"^/users/@me$")[0].status == 401
    assert fake.identifies == []


async def test_followup_429_is_retried(fake: FakeDiscord, bot: commands.Bot) -> None:
    fault = fake.fail("POST", r"^/webhooks/\d+/[^/]+$", status=429, json={"retry_after": 0.2})
    handle = await fake.interact(fake.slash("multi", {"count": 1}))
    await handle.wait_for(lambda r: r.followups, timeout=5)
    posts = fake.requests_to("POST", rf"^/webhooks/\d+/{handle.token}$")
    assert [p.status for p in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.2
    assert fault.hits == 1 and len(handle.followups) == 1


async def test_cloudflare_429_without_via_is_not_retried(
    fake: FakeDiscord, bot: commands.Bot
) -> None:
    fake.fail("POST", r"^/webhooks/", status=429, headers={"Via": None})
    errors: list[BaseException] = []

    @bot.tree.error
    async def on_error(interaction: discord.Interaction, error: BaseException) -> None:
        errors.append(error)

    handle = await fake.interact(fake.slash("multi", {"count": 1}))
    await fake.wait_until(lambda: errors, timeout=5)
    assert handle.followups == []
    assert len(fake.requests_to("POST", r"^/webhooks/")) == 1


async def test_late_callback_is_unknown_interaction(fake: FakeDiscord, bot: commands.Bot) -> None:
    fake.callback_deadline = 0.1

    @bot.tree.command(description="Too slow")
    async def late(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("late")
        except discord.NotFound as exc:
            assert exc.code == 10062

    handle = await fake.interact(fake.slash("late"))
    await handle.wait_for(lambda r: r.rejected_callbacks, timeout=5)
    assert handle.callbacks == [] and handle.rejected_callbacks[0].code == 10062


async def test_invalid_message_is_rejected(fake: FakeDiscord, bot: commands.Bot) -> None:
    result: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    @bot.tree.command(description="Too long")
    async def long(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message(embed=discord.Embed(description="x" * 4097))
        except discord.HTTPException as exc:
            result.set_result(exc)

    handle = await fake.interact(fake.slash("long"))
    exc: Any = await asyncio.wait_for(result, 5)
    assert exc.status == 400 and exc.code == 50035 and "embeds.0.description" in exc.text
    assert handle.callbacks == [] and handle.rejected_callbacks[0].code == 50035


async def test_close_gateway_resumes(fake: FakeDiscord, bot: commands.Bot) -> None:
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    bot.add_listener(on_resumed)
    await fake.close_gateway(4000)
    assert fake.sessions == 0
    # dispatched while disconnected: buffered and replayed on RESUME
    handle = await fake.interact(fake.slash("secret"))
    await fake.wait_connected(timeout=5)
    await asyncio.wait_for(resumed.wait(), 5)
    assert len(fake.resumes) == 1 and len(fake.identifies) == 1
    assert fake.gateway_connects[-1]["path"] == "/resume"
    assert (await handle.wait_message(timeout=5))["content"] == "psst"
    after = await fake.interact(fake.slash("hello"))
    assert (await after.wait_message(timeout=5))["content"].startswith("hello")


async def test_drop_gateway_resumes(fake: FakeDiscord, bot: commands.Bot) -> None:
    fake.drop_gateway()
    await fake.wait_until(lambda: len(fake.resumes) == 1 and fake.sessions == 1, timeout=8)
    assert len(fake.identifies) == 1
    handle = await fake.interact(fake.slash("secret"))
    assert (await handle.wait_message(timeout=5))["content"] == "psst"


async def test_raw_gateway_protocol(fake: FakeDiscord) -> None:
    """HELLO, zlib-stream frames, heartbeat ACK, READY + GUILD_CREATE, and 4004."""
    async with aiohttp.ClientSession() as session:
        url = fake.gateway_url + "?v=10&encoding=json&compress=zlib-stream"
        async with session.ws_connect(url) as ws:
            inflate = zlib.decompressobj()

            async def receive() -> dict[str, Any]:
                msg = await asyncio.wait_for(ws.receive(), 5)
                assert msg.type is aiohttp.WSMsgType.BINARY
                import json

                return json.loads(inflate.decompress(msg.data))

            assert (await receive())["op"] == 10
            await ws.send_json({"op": 1, "d": None})
            assert (await receive())["op"] == 11
            await ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": 1}})
            ready = await receive()
            assert ready["t"] == "READY" and ready["s"] == 1
            assert ready["d"]["resume_gateway_url"] == fake.resume_gateway_url
            create = await receive()
            assert create["t"] == "GUILD_CREATE" and create["d"]["id"] == str(fake.guild_ids[0])
            await fake.dispatch("CUSTOM", {"x": 1})
            assert (await receive())["s"] == 3
        async with session.ws_connect(fake.gateway_url) as ws:
            assert (await asyncio.wait_for(ws.receive_json(), 5))["op"] == 10
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 1}})
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 4004


async def test_rest_details(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bot {TOKEN}"}
        async with session.get(fake.rest_url + "/users/@me", headers=auth) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["id"] == str(fake.application_id)
        async with session.get(fake.rest_url + "/users/@me") as resp:
            assert resp.status == 401 and (await resp.json())["code"] == 0
        async with session.get(fake.rest_url + "/nope", headers=auth) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
        assert fake.unknown_requests[0].path == "/nope"
        fake.fail("GET", r"^/gateway/bot$", status=500, times=2)
        for expected in (500, 500, 200):
            async with session.get(fake.rest_url + "/gateway/bot", headers=auth) as resp:
                assert resp.status == expected
                data = await resp.json()
        assert data["shards"] == 1 and data["url"] == fake.gateway_url
        bad = [{"name": "Bad Name", "description": "x"}]
        url = f"{fake.rest_url}/applications/{fake.application_id}/commands"
        async with session.put(url, json=bad, headers=auth) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == 50035
        assert fake.command_puts == 0


async def test_many_guilds_start_fast() -> None:
    async with FakeDiscord(token=TOKEN, guild_count=300) as server:
        client = make_bot()
        async with server.run_bot(client, timeout=10):
            assert len(client.guilds) == 300
            assert all(not g.unavailable for g in client.guilds)


async def test_invalid_localizations_fail_the_whole_registration(
    fake: FakeDiscord, bot: commands.Bot
) -> None:
    """As Discord: one bad localized name (or an unknown locale) refuses the bulk overwrite."""

    class Localizer(app_commands.Translator):
        def __init__(self, name: str, locale: discord.Locale) -> None:
            self.name, self.locale = name, locale

        async def translate(self, string, locale, context):  # type: ignore[no-untyped-def]
            if locale is self.locale and context.location.name == "command_name":
                return self.name
            return None

    before = len(fake.commands[None])
    for bad in ("Große Umarmung", "Umarmen", "x" * 33, "a.b"):
        await bot.tree.set_translator(Localizer(bad, discord.Locale.german))
        with pytest.raises(discord.HTTPException) as refused:
            await bot.tree.sync()
        assert refused.value.status == 400, bad
    assert len(fake.commands[None]) == before  # nothing was replaced
    await bot.tree.set_translator(Localizer("umarmen", discord.Locale.german))
    await bot.tree.sync()
    assert all(
        c["name_localizations"]["de"] == "umarmen" for c in fake.commands[None] if c["type"] == 1
    )


# ------------------------------------------------------------------------------------ shards
class RawGateway:
    """One raw gateway connection (zlib-stream), for what discord.py hides."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.inflate = zlib.decompressobj()

    async def receive(self) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.receive(), 5)
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return {"close": msg.data}
        assert msg.type is aiohttp.WSMsgType.BINARY, msg
        return json.loads(self.inflate.decompress(msg.data))

    async def identify(self, shard: Any, intents: int = 1) -> dict[str, Any]:
        assert (await self.receive())["op"] == 10
        payload: dict[str, Any] = {"token": TOKEN, "intents": intents}
        if shard is not None:
            payload["shard"] = shard
        await self.ws.send_json({"op": 2, "d": payload})
        return await self.receive()


@contextlib.asynccontextmanager
async def raw_gateway(fake: FakeDiscord) -> AsyncIterator[RawGateway]:
    async with aiohttp.ClientSession() as session:
        url = fake.gateway_url + "?v=10&encoding=json&compress=zlib-stream"
        async with session.ws_connect(url) as ws:
            yield RawGateway(ws)


async def test_shards_get_their_own_guilds_and_interactions() -> None:
    async with (
        FakeDiscord(token=TOKEN, guild_count=6, shard_count=2) as fake,
        raw_gateway(fake) as zero,
        raw_gateway(fake) as one,
    ):
        assert sorted(len(fake.guilds_of(s)) for s in (0, 1)) == [3, 3]
        for conn, shard in ((zero, 0), (one, 1)):
            ready = await conn.identify([shard, 2])
            assert ready["t"] == "READY" and ready["d"]["shard"] == [shard, 2]
            assert [int(g["id"]) for g in ready["d"]["guilds"]] == fake.guilds_of(shard)
            for gid in fake.guilds_of(shard):
                create = await conn.receive()
                assert create["t"] == "GUILD_CREATE" and int(create["d"]["id"]) == gid
        assert fake.ready_shards == {0, 1}
        assert [shard for shard, _ in fake.identify_times] == [0, 1]
        await fake.wait_connected()
        # An interaction goes to the connection of its guild's shard, and only there.
        record = await fake.interact(fake.slash("hello", guild_id=fake.guilds_of(1)[0]))
        assert record.shard == 1
        event = await one.receive()
        assert event["t"] == "INTERACTION_CREATE" and event["d"]["id"] == record.id
        # A guild's other events too; `shard=` delivers elsewhere (a replay on another process).
        assert await fake.dispatch("GUILD_DELETE", {"id": str(fake.guilds_of(0)[0])}) == 1
        assert (await zero.receive())["t"] == "GUILD_DELETE"
        await fake.dispatch("INTERACTION_CREATE", record.payload, shard=0)
        assert (await zero.receive())["d"]["id"] == record.id


@pytest.mark.parametrize(
    ("shard", "code"),
    [([2, 2], 4010), ([0, 3], 4010), ([-1, 2], 4010), (None, 4011)],
)
async def test_invalid_shards_are_closed_as_discord_does(shard: Any, code: int) -> None:
    async with FakeDiscord(token=TOKEN, shard_count=2) as fake, raw_gateway(fake) as conn:
        assert await conn.identify(shard) == {"close": code}
        assert fake.sessions == 0


async def test_gateway_bot_tells_shards_and_max_concurrency() -> None:
    async with FakeDiscord(token=TOKEN, shard_count=3, max_concurrency=2) as fake:
        async with aiohttp.ClientSession() as session:
            auth = {"Authorization": f"Bot {TOKEN}"}
            async with session.get(fake.rest_url + "/gateway/bot", headers=auth) as resp:
                data = await resp.json()
        assert data["shards"] == 3
        assert data["session_start_limit"]["max_concurrency"] == 2


async def test_auto_sharded_client_connects_every_shard() -> None:
    async with FakeDiscord(token=TOKEN, guild_count=4, shard_count=2) as fake:
        client = commands.AutoShardedBot(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            shard_count=2,
            guild_ready_timeout=0.1,
        )

        async def no_wait(shard_id: int | None, *, initial: bool = False) -> None:
            pass  # the fake does not enforce the 5 s window; don't wait for it here

        client.before_identify_hook = no_wait  # type: ignore[method-assign]

        @client.tree.command(description="Which shard")
        async def where(interaction: discord.Interaction) -> None:
            assert interaction.guild is not None
            await interaction.response.send_message(f"shard {interaction.guild.shard_id}")

        async with fake.run_bot(client, timeout=10):
            await fake.wait_connected()
            assert sorted(g.id for g in client.guilds) == sorted(fake.guild_ids)
            for shard in (0, 1):
                guild_id = fake.guilds_of(shard)[0]
                record = await fake.interact(fake.slash("where", guild_id=guild_id))
                assert (await record.wait_message())["content"] == f"shard {shard}"
                assert record.shard == shard


async def test_no_guild_events_without_the_guilds_intent() -> None:
    async with FakeDiscord(token=TOKEN, guild_count=2) as fake:
        async with raw_gateway(fake) as lean:
            ready = await lean.identify(None, intents=0)
            # READY still lists the guilds (unavailable), as Discord's does.
            assert [int(g["id"]) for g in ready["d"]["guilds"]] == fake.guild_ids
            guild_id = str(fake.guild_ids[0])
            assert await fake.dispatch("GUILD_DELETE", {"id": guild_id}) == 0
            assert await fake.dispatch("CHANNEL_CREATE", {"id": "1", "guild_id": guild_id}) == 0
            record = await fake.interact(fake.slash("hello"))
            # The first frame after READY is the interaction: no GUILD_CREATE came before it.
            event = await lean.receive()
            assert event["t"] == "INTERACTION_CREATE" and event["d"]["id"] == record.id
        async with raw_gateway(fake) as full:
            await full.identify(None, intents=1)
            assert [(await full.receive())["t"] for _ in fake.guild_ids] == ["GUILD_CREATE"] * 2
            assert await fake.dispatch("GUILD_DELETE", {"id": guild_id}) == 1


async def test_realistic_servers() -> None:
    shape = GuildShape(channels=40, overwrites=3, roles=25, emojis=15, stickers=3, threads=5)
    async with FakeDiscord(token=TOKEN, guild_count=3, guild_shape=shape) as fake:
        events = [fake.guild_create_event(g) for g in fake.guild_ids]
        assert events[0] == fake.guild_create_event(fake.guild_ids[0])  # reproducible
        ids: list[str] = []
        for event in events:
            channels = event["channels"]
            assert len(channels) == 40 and len(event["roles"]) == 25
            assert len(event["emojis"]) == 15 and len(event["stickers"]) == 3
            assert len(event["threads"]) == 5
            assert {c["type"] for c in channels} == {0, 2, 4, 5, 13, 15}
            assert all(len(c["permission_overwrites"]) == 3 for c in channels)
            by_id = {c["id"]: c for c in channels}
            assert all(by_id[t["parent_id"]]["type"] in (0, 15) for t in event["threads"])
            ids += [
                o["id"] for k in ("channels", "threads", "emojis", "stickers") for o in event[k]
            ]
            ids += [r["id"] for r in event["roles"][1:]]
        assert len(ids) == len(set(ids))  # unique across servers too
        # A real client takes them: the full cache (default intents) holds every object.
        client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.1)
        async with fake.run_bot(client, timeout=10):
            await fake.wait_until(lambda: len(client.guilds) == 3 and client.guilds[-1].channels)
            guild = client.get_guild(fake.guild_ids[0])
            assert guild is not None
            assert len(guild.channels) == 40 and len(guild.roles) == 25
            assert len(guild.threads) == 5 and len(guild.emojis) == 15
            assert len(guild.stickers) == 3
            joined = await fake.join_guild()
            await fake.wait_until(lambda: client.get_guild(joined) is not None)
            assert len(client.get_guild(joined).channels) == 40  # type: ignore[union-attr]

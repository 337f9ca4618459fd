"""Another role of the same PostgreSQL server, without any privilege on the bot's tables, can
still LISTEN and NOTIFY on any channel (PostgreSQL has no permissions on channels). Through the
bot's channel it must learn nothing (no user or guild id, no setting) and change nothing: a
forged notification that once lifted an opt-out in every process is now only a cue to read the
bot's own tables, which this role cannot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from bot.store import GuildSettings, SettingsChange, Store
from bot.store.postgres_cache import CHANNEL
from tests.store.conftest import PostgresBackend

GUILD, OTHER_GUILD = 4242, 4343
OPTED_OUT, LATER, CONTROL, NEVER = 1001, 1002, 1003, 1004
SETTINGS = GuildSettings(disabled=frozenset({"hug"}), cooldown=(2, 30), pings=False)
OUTSIDER = "outsider"


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(pg_url)
    try:
        yield backend
    finally:
        await backend.close_all()


@pytest.fixture
async def outsider(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of a role that may log in and nothing more."""
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f"DROP ROLE IF EXISTS {OUTSIDER}")
        await admin.execute(f"CREATE ROLE {OUTSIDER} LOGIN")
    finally:
        await admin.close()
    rest = pg_url.split("@", 1)[1]
    conn = await asyncpg.connect(f"postgresql://{OUTSIDER}@{rest}")
    try:
        yield conn
    finally:
        await conn.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.01)


async def answers(store: Store) -> tuple[set[int], GuildSettings, GuildSettings]:
    users = await store.opted_out_among([OPTED_OUT, LATER, NEVER])
    return users, await store.guild_settings(GUILD), await store.guild_settings(OTHER_GUILD)


@pytest.mark.timeout(90)
async def test_a_role_without_privileges_learns_nothing_and_changes_nothing(
    pg: PostgresBackend, outsider: asyncpg.Connection
) -> None:
    here, elsewhere = await pg.open(), await pg.open()
    heard: list[str] = []
    await outsider.add_listener(CHANNEL, lambda _c, _p, _ch, payload: heard.append(payload))
    # The bot's own writes, in both processes, while the outsider listens.
    await here.set_opt_out(user_id=OPTED_OUT, opted_out=True)
    await elsewhere.change_guild_settings(GUILD, SettingsChange(disable=frozenset({"hug"})))
    await here.change_guild_settings(GUILD, SettingsChange(cooldown=(2, 30), pings=False))
    await elsewhere.set_opt_out(user_id=NEVER, opted_out=True)
    await elsewhere.forget_user(user_id=NEVER, keep_opt_out=False)
    await here.save_guild_settings(OTHER_GUILD, GuildSettings(channels=(77,)))
    await here.forget_guild(guild_id=OTHER_GUILD)

    async def heard_all() -> bool:
        await outsider.execute("SELECT 1")  # notifications arrive between queries
        return len(heard) >= 7

    await eventually(heard_all)
    # Nothing but "something changed": no id, no setting.
    assert set(heard) == {""}, heard
    truth = ({OPTED_OUT}, SETTINGS, GuildSettings())
    for store in (here, elsewhere):

        async def current(store: Store = store) -> bool:
            return await answers(store) == truth

        await eventually(current)

    # The old payloads (which the processes once believed), and junk.
    forged = [
        f"o:{OPTED_OUT}:0",
        f"o:{NEVER}:1",
        f"s:{GUILD}",
        "s:not-a-guild",
        "o:",
        "x" * 7000,
        "",
    ]
    for payload in forged * 20:
        await outsider.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
    # A real change after the forged ones: once both processes have it, they have read past
    # every forged notification (delivered in order, read in turn).
    await here.set_opt_out(user_id=LATER, opted_out=True)
    truth = ({OPTED_OUT, LATER}, SETTINGS, GuildSettings())
    for store in (here, elsewhere):

        async def arrived(store: Store = store) -> bool:
            return LATER in await store.opted_out_among([LATER])

        await eventually(arrived)
        assert await answers(store) == truth  # the opt-out held, the settings too
        assert store._cache.live  # and from memory, not because the cache gave up
        assert await store.is_opted_out(OPTED_OUT)
    # What the processes read after a notification, the outsider cannot.
    for table in ("opt_outs", "guild_settings", "nekocord_changes"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await outsider.fetch(f"SELECT * FROM {table}")

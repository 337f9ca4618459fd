"""Server settings: stored per guild, cached in memory (bounded), kept across restarts, deleted
with the guild's data."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import pytest

from bot.store import MAX_CHANNELS, GuildSettings, SettingsChange, Store, StoreError
from bot.store.postgres import PostgresStore
from bot.store.settings_cache import SettingsCache
from bot.store.settings_codec import decode_settings, encode_settings, read_settings
from bot.store.sqlite import SqliteStore
from tests.store.conftest import Backend

G1, G2, G3 = 1, 2, 3
CUSTOM = GuildSettings(
    disabled=frozenset({"kiss", "gif"}), channels=(500, 400), cooldown=(3, 60), pings=False
)


async def stored_guilds(backend: Backend) -> list[int]:
    return [row[0] for row in await backend.rows("SELECT guild_id FROM guild_settings ORDER BY 1")]


@asynccontextmanager
async def statements_run(store: SqliteStore) -> AsyncIterator[list[str]]:
    """The SQL the store runs meanwhile (run_on_connection's own PRAGMAs left out)."""
    seen: list[str] = []
    await store.run_on_connection(lambda conn: conn.set_trace_callback(seen.append))
    try:
        yield seen
    finally:
        await store.run_on_connection(lambda conn: conn.set_trace_callback(None))
    seen[:] = [sql for sql in seen if not sql.startswith("PRAGMA")]


# ---------------------------------------------------------------- the value


def test_defaults() -> None:
    assert GuildSettings() == GuildSettings(frozenset(), (), None, True)


def test_settings_are_normalised_so_equal_settings_compare_equal() -> None:
    settings = GuildSettings(disabled={"pat", "gif"}, channels=[7, 8, 7])  # type: ignore[arg-type]
    assert settings.disabled == frozenset({"pat", "gif"})
    assert settings.channels == (7, 8)
    assert settings == GuildSettings(disabled=frozenset({"gif", "pat"}), channels=(7, 8))
    assert hash(settings) == hash(
        GuildSettings(disabled=frozenset({"gif", "pat"}), channels=(7, 8))
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"channels": tuple(range(1, MAX_CHANNELS + 2))},
        {"channels": (-1,)},
        {"channels": (True,)},
        {"disabled": frozenset({""})},
        {"cooldown": (-1, 60)},
        {"cooldown": (3,)},
        {"cooldown": (3, 2**31)},
        {"pings": "yes"},
        {"leaderboard": 1},
    ],
)
def test_unstorable_settings_are_value_errors(bad: dict) -> None:
    with pytest.raises(ValueError):
        GuildSettings(**bad)


def test_cooldown_off_is_count_zero() -> None:
    assert GuildSettings(cooldown=(0, 0)).cooldown == (0, 0)


def test_json_round_trip_and_strict_decoding() -> None:
    assert decode_settings(encode_settings(CUSTOM)) == CUSTOM
    assert decode_settings(encode_settings(GuildSettings())) == GuildSettings()
    # A key an older release did not write takes its default.
    assert decode_settings('{"pings": false}') == GuildSettings(pings=False)
    for garbage in (
        "[1]",
        "{",
        '{"channels": [1, 2, 3, 4]}',
        '{"cooldown": "x"}',
        '{"disabled": "hug"}',  # a string is not a list of names
        '{"channels": [1.5]}',
        '{"pings": 1}',
        '{"colour": "red"}',
        "[" * 100_000 + "]" * 100_000,  # deeper than the parser's recursion
        '{"disabled": ["' + "x" * 40_000 + '"]}',
    ):
        with pytest.raises(ValueError):
            decode_settings(garbage)


def test_tolerant_reading_logs_a_bad_row_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.store.settings_codec"):
        for _ in range(3):
            assert read_settings("[" * 100_000, guild_id=9001) == GuildSettings()
            assert read_settings("{", guild_id=9002) == GuildSettings()
    assert [r.getMessage()[:38] for r in caplog.records] == [
        "Unreadable settings of guild 9001, usi",
        "Unreadable settings of guild 9002, usi",
    ]


# ---------------------------------------------------------------- the store


async def test_nothing_stored_reads_as_the_defaults(store: Store, backend: Backend) -> None:
    assert await store.guild_settings(G1) == GuildSettings()
    assert await stored_guilds(backend) == []


async def test_saved_settings_are_per_guild_and_survive_a_restart(backend: Backend) -> None:
    async with await backend.open() as store:
        await store.save_guild_settings(G1, CUSTOM)
        await store.save_guild_settings(G2, GuildSettings(pings=False))
        assert await store.guild_settings(G1) == CUSTOM
    async with await backend.open() as store:
        assert await store.guild_settings(G1) == CUSTOM
        assert await store.guild_settings(G2) == GuildSettings(pings=False)
        assert await store.guild_settings(G3) == GuildSettings()


async def test_a_save_replaces_and_saving_the_defaults_deletes_the_row(
    store: Store, backend: Backend
) -> None:
    await store.save_guild_settings(G1, CUSTOM)
    await store.save_guild_settings(G1, GuildSettings(channels=(9,)))
    assert await store.guild_settings(G1) == GuildSettings(channels=(9,))
    assert await stored_guilds(backend) == [G1]
    await store.save_guild_settings(G1, GuildSettings())
    assert await stored_guilds(backend) == []
    assert await store.guild_settings(G1) == GuildSettings()


async def test_cached_reads_cost_no_database_trip(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    await store.save_guild_settings(G1, CUSTOM)
    async with statements_run(store) as seen:
        assert await store.guild_settings(G1) == CUSTOM  # cached by the save
        assert await store.guild_settings(G2) == GuildSettings()  # read once…
        assert await store.guild_settings(G2) == GuildSettings()  # …then cached, defaults too
    assert [sql for sql in seen if "guild_settings" in sql] == [
        f"SELECT settings FROM guild_settings WHERE guild_id = {G2}"
    ]


async def test_the_cache_is_bounded(db_path: Path) -> None:
    async with await SqliteStore.open(db_path, settings_cache=2) as store:
        for guild in (G1, G2, G3):
            await store.save_guild_settings(guild, GuildSettings(channels=(guild,)))
        async with statements_run(store) as seen:
            assert await store.guild_settings(G3) == GuildSettings(channels=(G3,))
            assert await store.guild_settings(G2) == GuildSettings(channels=(G2,))
            assert await store.guild_settings(G1) == GuildSettings(channels=(G1,))  # evicted
        assert len([sql for sql in seen if sql.startswith("SELECT")]) == 1


async def test_forget_guild_deletes_the_settings(store: Store, backend: Backend) -> None:
    await store.save_guild_settings(G1, CUSTOM)
    await store.save_guild_settings(G2, CUSTOM)
    await store.forget_guild(guild_id=G1)
    assert await store.guild_settings(G1) == GuildSettings()  # not from the cache
    assert await store.guild_settings(G2) == CUSTOM
    assert await stored_guilds(backend) == [G2]


async def test_a_failed_save_keeps_the_old_settings(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    await store.save_guild_settings(G1, CUSTOM)

    def refuse(conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TEMP TRIGGER refuse BEFORE UPDATE ON main.guild_settings"
            " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
        )

    await store.run_on_connection(refuse)
    with pytest.raises(StoreError):
        await store.save_guild_settings(G1, GuildSettings(pings=False))
    assert await store.guild_settings(G1) == CUSTOM


async def test_closed_store_refuses_even_cached_reads(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    await store.save_guild_settings(G1, CUSTOM)
    await store.close()
    with pytest.raises(StoreError):
        await store.guild_settings(G1)
    with pytest.raises(ValueError):
        await SqliteStore.guild_settings(store, -1)


# ---------------------------------------------------------------- the cache


@contextmanager
def cache_of(capacity: int) -> Iterator[SettingsCache]:
    cache = SettingsCache(capacity)
    yield cache
    assert len(cache) <= capacity


def test_cache_evicts_the_least_recently_used() -> None:
    with cache_of(2) as cache:
        cache.store(G1, CUSTOM)
        cache.store(G2, GuildSettings())
        assert cache.get(G1) == CUSTOM  # G1 is now the most recent
        cache.store(G3, GuildSettings())
        assert cache.get(G2) is None
        assert cache.get(G1) == CUSTOM


def test_a_read_older_than_a_write_does_not_overwrite_it() -> None:
    with cache_of(10) as cache:
        ticket = cache.ticket()  # a read of G1 starts…
        cache.store(G1, CUSTOM)  # …a save commits meanwhile…
        cache.fill(G1, GuildSettings(), ticket)  # …and the read's older answer arrives
        assert cache.get(G1) == CUSTOM
        ticket = cache.ticket()
        cache.fill(G2, GuildSettings(), ticket)
        assert cache.get(G2) == GuildSettings()
        cache.forget(G2)
        assert cache.get(G2) is None


def test_cache_needs_room() -> None:
    with pytest.raises(ValueError):
        SettingsCache(0)


# ---------------------------------------------------------------- changes


async def test_concurrent_changes_from_two_processes_all_hold(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    names = [f"name{i}" for i in range(12)]
    changes = [SettingsChange(disable=frozenset({name})) for name in names]
    changes += [
        SettingsChange(cooldown=(3, 60)),
        SettingsChange(pings=False),
        SettingsChange(leaderboard=False),
        SettingsChange(channels=(7, 8)),
    ]
    results = await asyncio.gather(
        *((first, second)[i % 2].change_guild_settings(G1, c) for i, c in enumerate(changes))
    )
    for change, result in zip(changes, results, strict=True):
        assert change.applied_to(result) == result  # each answers a state that includes it
    expected = GuildSettings(
        disabled=frozenset(names), channels=(7, 8), cooldown=(3, 60), pings=False, leaderboard=False
    )
    # Then, at once again, changes that undo some of those and make others.
    undo = [SettingsChange(enable=frozenset({name})) for name in names[:6]]
    undo += [
        SettingsChange(disable=frozenset({"gif"})),
        SettingsChange(default_cooldown=True),
        SettingsChange(pings=True),
        SettingsChange(leaderboard=True),
        SettingsChange(channels=()),
    ]
    async with await backend.open() as fresh:
        assert await fresh.guild_settings(G1) == expected
        await asyncio.gather(
            *(
                (first, second, fresh)[i % 3].change_guild_settings(G1, c)
                for i, c in enumerate(undo)
            )
        )
    async with await backend.open() as fresh:
        assert await fresh.guild_settings(G1) == GuildSettings(
            disabled=frozenset(names[6:]) | {"gif"}
        )
    assert await stored_guilds(backend) == [G1]
    assert await first.guild_settings(G2) == GuildSettings()  # other guilds untouched


async def test_a_change_answers_at_once_in_its_process(store: Store) -> None:
    assert await store.guild_settings(G1) == GuildSettings()  # cached
    changed = await store.change_guild_settings(G1, SettingsChange(disable=frozenset({"hug"})))
    assert changed == GuildSettings(disabled=frozenset({"hug"}))
    assert await store.guild_settings(G1) == changed
    await store.save_guild_settings(G1, CUSTOM)
    changed = await store.change_guild_settings(G1, SettingsChange(enable=frozenset({"kiss"})))
    assert changed == GuildSettings(
        disabled=frozenset({"gif"}), channels=(500, 400), cooldown=(3, 60), pings=False
    )
    assert await store.guild_settings(G1) == changed


@pytest.mark.parametrize(
    "bad",
    [
        {"disable": frozenset({"hug"}), "enable": frozenset({"hug"})},
        {"cooldown": (1, 2), "default_cooldown": True},
        {"channels": (-1,)},
        {"channels": (1, 2, 3, 4)},
        {"disable": frozenset({""})},
        {"pings": "off"},
    ],
)
def test_changes_no_backend_could_store_are_value_errors(bad: dict) -> None:
    with pytest.raises(ValueError):
        SettingsChange(**bad)


# ---------------------------------------------------------------- rows that do not decode


async def test_a_row_that_does_not_decode_reads_as_the_defaults_logged_once(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await SqliteStore.open(db_path, settings_cache=1) as store:
        await store.save_guild_settings(G2, CUSTOM)

        def corrupt(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO guild_settings VALUES (?, ?, 0)", (G1, "[" * 100_000 + "]" * 100_000)
            )

        await store.run_on_connection(corrupt)
        with caplog.at_level(logging.WARNING, logger="bot.store.settings_codec"):
            for _ in range(20):  # a cache of one guild: G1 is read from the database every time
                assert await store.guild_settings(G1) == GuildSettings()
                assert await store.guild_settings(G2) == CUSTOM
        assert [r.getMessage() for r in caplog.records] == [
            "Unreadable settings of guild 1, using the defaults: settings of 200,000 characters"
            " (at most 32,768)"
        ]
        # /config still works there: the change starts from the defaults and mends the row.
        changed = await store.change_guild_settings(G1, SettingsChange(pings=False))
        assert changed == GuildSettings(pings=False)
        assert await store.guild_settings(G1) == GuildSettings(pings=False)


async def test_postgres_refuses_a_row_the_bot_could_not_read(pg_url: str) -> None:
    async with await PostgresStore.open(pg_url):
        pass
    conn = await asyncpg.connect(pg_url)
    try:
        for columns, values in [
            ("disabled", "ARRAY['']"),
            ("disabled", "ARRAY[repeat('x', 65)]"),
            ("disabled", "ARRAY[['a'], ['b']]"),
            ("disabled", "array_fill('x'::text, ARRAY[300])"),
            ("channels", "ARRAY[-5]"),
            ("channels", "ARRAY[1, 2, 3, 4]"),
            ("cooldown_count, cooldown_seconds", "-1, 5"),
            ("cooldown_count", "3"),
        ]:
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(
                    f"INSERT INTO guild_settings (guild_id, {columns}, updated_at)"
                    f" VALUES (1, {values}, 0)"
                )
    finally:
        await conn.close()

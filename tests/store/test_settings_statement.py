"""SQLite's `/config` change is one SQL statement over the stored JSON (issue 20, item 2): never
read into Python and written back. Its text is exactly what `encode_settings` writes, a row the
codec refuses is changed as the defaults, and concurrent changes from two connections all hold."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from bot.store import GuildSettings, SettingsChange
from bot.store.settings_codec import decode_settings, encode_settings
from bot.store.sqlite import SqliteStore
from bot.store.sqlite_settings import BOOLEANS, change_parameters, change_statement
from tests.store.test_settings import statements_run

G1 = 1


def stored_text(db_path: Path, guild_id: int = G1) -> object:
    conn = sqlite3.connect(db_path)
    try:
        (row,) = conn.execute("SELECT settings FROM guild_settings WHERE guild_id = ?", (guild_id,))
        return row[0]
    finally:
        conn.close()


def put_row(db_path: Path, settings: object, guild_id: int = G1) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("INSERT OR REPLACE INTO guild_settings VALUES (?, ?, 0)", (guild_id, settings))
    finally:
        conn.close()


EVERY_KIND = [
    SettingsChange(disable=frozenset({"pat", "hug", "gif"})),
    SettingsChange(channels=(9, 3, 9, 5)),
    SettingsChange(cooldown=(2, 30)),
    SettingsChange(pings=False),
    SettingsChange(enable=frozenset({"hug", "never-disabled"}), disable=frozenset({"éclair"})),
    SettingsChange(disable=frozenset({"Zeta", "alpha", "pat"})),
    SettingsChange(default_cooldown=True),
    SettingsChange(channels=()),
    SettingsChange(pings=True, cooldown=(0, 5), channels=(7,)),
    SettingsChange(enable=frozenset({"gif", "Zeta", "alpha", "pat", "éclair"})),
]


async def test_a_change_is_one_statement(sqlite_store: SqliteStore) -> None:
    for change in EVERY_KIND:
        async with statements_run(sqlite_store) as seen:
            await sqlite_store.change_guild_settings(G1, change)
        assert [sql.split()[0] for sql in seen] == ["BEGIN", "INSERT", "COMMIT"], seen


async def test_changes_store_exactly_the_encoded_text(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    # Written by hand: spaces, keys and names out of order, a channel twice. The first change
    # rewrites it as encode_settings would.
    put_row(db_path, ' { "pings" : true, "disabled" : ["wave", "bonk"], "channels": [4, 4, 2] }')
    expected = GuildSettings(disabled=frozenset({"wave", "bonk"}), channels=(4, 2))
    for change in [SettingsChange(), *EVERY_KIND]:
        expected = change.applied_to(expected)
        assert await sqlite_store.change_guild_settings(G1, change) == expected
        assert stored_text(db_path) == encode_settings(expected)
    assert expected == GuildSettings(
        disabled=frozenset({"bonk", "wave"}), channels=(7,), cooldown=(0, 5)
    )


NESTED = "[" * 100_000 + "]" * 100_000
UNREADABLE = [
    NESTED,
    json.dumps({"disabled": ["a" * 40_000]}),  # over the size limit
    '{"disabled": [[[[["hug"]]]]]}',  # deeper than the codec reads
    "not json",
    "[]",
    '"text"',
    "null",
    '{"pings": NaN}',
    '{"unknown": 1}',
    '{"pings": "yes"}',
    '{"pings": 1}',
    '{"disabled": "hug"}',
    '{"disabled": [""]}',
    json.dumps({"disabled": ["x" * 65]}),
    '{"disabled": [1]}',
    json.dumps({"disabled": [f"n{i}" for i in range(257)]}),
    '{"channels": [-1]}',
    '{"channels": [9223372036854775808]}',
    '{"channels": [1, 2, 3, 4]}',
    '{"channels": [1.0]}',
    '{"channels": [true]}',
    '{"cooldown": 5}',
    '{"cooldown": [1]}',
    '{"cooldown": [1, 2, 3]}',
    '{"cooldown": [-1, 5]}',
    '{"cooldown": [1, 2147483648]}',
    '{"cooldown": [1, "2"]}',
    b'{"pings": false}',  # a blob, not text
]
READABLE = [
    "{}",
    ' {"pings" : false} ',
    '{"pings": true, "pings": false}',  # the last one counts, as for Python's parser
    '{"channels": [5, 5, 6, 6, 7]}',
    '{"cooldown": null, "channels": [9223372036854775807]}',
    '{"cooldown": [2147483647, 0]}',
    json.dumps({"disabled": [f"n{i}" for i in range(256)] * 2}),
    json.dumps({"disabled": ["x" * 64, "ü" * 64]}),
]


@pytest.mark.parametrize("row", UNREADABLE, ids=range(len(UNREADABLE)))
async def test_a_row_the_codec_refuses_is_changed_as_the_defaults(
    sqlite_store: SqliteStore, db_path: Path, row: str | bytes
) -> None:
    with pytest.raises(ValueError):
        decode_settings(row)  # type: ignore[arg-type]
    put_row(db_path, row)
    change = SettingsChange(disable=frozenset({"hug"}), pings=False)
    expected = change.applied_to(GuildSettings())
    assert await sqlite_store.change_guild_settings(G1, change) == expected
    assert stored_text(db_path) == encode_settings(expected)


@pytest.mark.parametrize("row", READABLE, ids=range(len(READABLE)))
async def test_a_row_the_codec_reads_is_changed_as_it_reads(
    sqlite_store: SqliteStore, db_path: Path, row: str
) -> None:
    put_row(db_path, row)
    for change in (SettingsChange(enable=frozenset({"n3"})), SettingsChange(cooldown=(1, 1))):
        put_row(db_path, row)
        expected = change.applied_to(decode_settings(row))
        assert await sqlite_store.change_guild_settings(G1, change) == expected
        assert stored_text(db_path) == encode_settings(expected)


async def test_a_change_past_the_limits_is_refused_and_the_row_kept(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    full = GuildSettings(disabled=frozenset(f"n{i}" for i in range(256)))
    await sqlite_store.save_guild_settings(G1, full)
    with pytest.raises(ValueError):
        await sqlite_store.change_guild_settings(
            G1, SettingsChange(disable=frozenset({"one more"}))
        )
    assert stored_text(db_path) == encode_settings(full)


@pytest.mark.timeout(120)
async def test_concurrent_changes_of_every_kind_from_two_connections_all_hold(
    db_path: Path,
) -> None:
    names = [f"name{i:02}" for i in range(60)]
    # Each wave's changes commute (different names, one change of each other kind), so the
    # end state is known whatever order they commit in.
    first_wave = [SettingsChange(disable=frozenset({name})) for name in names[:40]]
    first_wave += [
        SettingsChange(cooldown=(3, 60)),
        SettingsChange(pings=False),
        SettingsChange(channels=(8, 7)),
    ]
    second_wave = [SettingsChange(enable=frozenset({name})) for name in names[:20]]
    second_wave += [SettingsChange(disable=frozenset({name})) for name in names[40:]]
    second_wave += [
        SettingsChange(default_cooldown=True),
        SettingsChange(pings=True),
        SettingsChange(channels=()),
    ]
    expectations = [
        GuildSettings(
            disabled=frozenset(names[:40]), channels=(8, 7), cooldown=(3, 60), pings=False
        ),
        GuildSettings(disabled=frozenset(names[20:])),
    ]
    stores = [await SqliteStore.open(db_path), await SqliteStore.open(db_path)]
    try:
        for wave, expected in zip((first_wave, second_wave), expectations, strict=True):
            results = await asyncio.gather(
                *(stores[i % 2].change_guild_settings(G1, c) for i, c in enumerate(wave))
            )
            for change, result in zip(wave, results, strict=True):
                assert change.applied_to(result) == result  # each answers a state with it made
            assert stored_text(db_path) == encode_settings(expected)
            async with await SqliteStore.open(db_path) as fresh:
                assert await fresh.guild_settings(G1) == expected
    finally:
        for store in stores:
            await store.close()


def test_one_more_boolean_setting_is_one_more_entry() -> None:
    """A boolean left out of the text at its default (as a `leaderboard` setting would be,
    written only when false) comes and goes with one more entry in BOOLEANS."""
    booleans = BOOLEANS | {"leaderboard": (True, True)}
    statement = change_statement(booleans)
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE guild_settings"
        " (guild_id INTEGER PRIMARY KEY, settings TEXT NOT NULL, updated_at INTEGER NOT NULL)"
    )
    conn.execute("INSERT INTO guild_settings VALUES (1, ?, 0)", (encode_settings(GuildSettings()),))

    def change(leaderboard: bool | None, **kwargs: object) -> str:
        parameters = change_parameters(
            guild_id=1,
            change=SettingsChange(**kwargs),
            now=0,
            fresh="",  # type: ignore[arg-type]
        )
        ((text,),) = conn.execute(statement, parameters | {"leaderboard": leaderboard})
        return str(text)

    defaults = '{"channels":[],"cooldown":null,"disabled":[],"pings":true}'
    assert change(None) == defaults
    off = '{"channels":[],"cooldown":null,"disabled":[],"leaderboard":false,"pings":true}'
    assert change(False) == off
    assert change(None, pings=False) == off.replace('"pings":true', '"pings":false')
    assert change(True, pings=True) == defaults
    conn.execute("UPDATE guild_settings SET settings = '{\"leaderboard\": 3}'")  # refused: {}
    assert change(None) == defaults

"""Leaderboards: received / given / pairs over all time, the last 30 and the last 7 days, per
category or all together; pages up to rank 100, the asker's own line; opted-out members take no
rank, forgotten ones vanish from every period; per-day totals exact under replays, pruned after
31 days, started from the last day's markers on upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from bot.store import BoardEntry, GuildSettings, SettingsChange, Store
from bot.store.base import DAY
from bot.store.postgres import PostgresStore
from bot.store.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from bot.store.settings_codec import decode_settings, encode_settings
from bot.store.sqlite import SqliteStore
from bot.store.sqlite_schema import MIGRATIONS
from tests.store.conftest import Backend

G, OTHER = 1, 2
A, B, C, D = 10, 20, 30, 40
NOW = 1_800_000_000.0  # a fixed wall clock: days are counted from it

_ids = iter(range(1, 10**9))


async def act(store: Store, actor: int, *targets: int, action: str = "hug", guild: int = G):
    await store.record_action(
        action_id=next(_ids), guild_id=guild, action=action, actor_id=actor, target_ids=targets
    )


def lines(board) -> list[tuple[int, int, int]]:
    return [(e.rank, e.user_id, e.count) for e in board.entries]


@pytest.fixture
def clock() -> list[float]:
    return [NOW]


@pytest.fixture
async def clocked(backend: Backend, clock: list[float]) -> Store:
    return await backend.open(clock=lambda: clock[0])


async def test_the_three_boards(store: Store) -> None:
    # A hugs B 3 times, C hugs B once, B hugs C twice, D pats A once, elsewhere A hugs D.
    for _ in range(3):
        await act(store, A, B)
    await act(store, C, B)
    await act(store, B, C)
    await act(store, B, C)
    await act(store, D, A, action="pat")
    await act(store, A, D, guild=OTHER)
    received = await store.leaderboard(guild_id=G, user_id=A)
    assert lines(received) == [(1, B, 4), (2, C, 2), (3, A, 1)]
    assert received.ranked == 3
    assert received.own == BoardEntry(3, A, 1)
    given = await store.leaderboard(guild_id=G, user_id=D, board="given")
    assert lines(given) == [(1, A, 3), (2, B, 2), (3, C, 1), (4, D, 1)]  # ties: lower id first
    assert given.own == BoardEntry(4, D, 1)
    pairs = await store.leaderboard(guild_id=G, user_id=C, board="pairs")
    assert [(e.rank, e.user_id, e.partner_id, e.count) for e in pairs.entries] == [
        (1, A, B, 3),
        (2, B, C, 2),
        (3, C, B, 1),
        (4, D, A, 1),
    ]
    assert pairs.own == BoardEntry(2, B, 2, C)  # the asker's best pair, either side
    hugs = await store.leaderboard(guild_id=G, user_id=A, action="hug")
    assert lines(hugs) == [(1, B, 4), (2, C, 2)]
    assert hugs.own is None
    empty = await store.leaderboard(guild_id=G, user_id=A, action="kiss")
    assert (empty.entries, empty.ranked, empty.own) == ([], 0, None)


async def test_pages_stop_at_rank_100(store: Store) -> None:
    # Member 1000 + i is hugged i times by distinct actors' one action of several targets.
    for i in range(1, 121):
        await act(store, 1, *range(1000 + i, 1121))  # 1000+i receives i hugs
    first = await store.leaderboard(guild_id=G, user_id=1001)
    assert lines(first)[0] == (1, 1120, 120)
    assert len(first.entries) == 10
    assert first.ranked == 120
    assert first.own == BoardEntry(120, 1001, 1)  # their rank even far outside the page
    page = await store.leaderboard(guild_id=G, user_id=1, offset=90, limit=10)
    assert [e.rank for e in page.entries] == list(range(91, 101))
    beyond = await store.leaderboard(guild_id=G, user_id=1, offset=95, limit=10)
    assert [e.rank for e in beyond.entries] == list(range(96, 101))
    assert (await store.leaderboard(guild_id=G, user_id=1, offset=100)).entries == []


async def test_opted_out_members_take_no_rank(store: Store) -> None:
    for _ in range(3):
        await act(store, A, B)
    await act(store, A, C)
    await act(store, A, C)
    await act(store, B, D)
    await store.set_opt_out(user_id=B, opted_out=True)
    received = await store.leaderboard(guild_id=G, user_id=B)
    assert lines(received) == [(1, C, 2), (2, D, 1)]
    assert (received.ranked, received.own) == (2, None)
    pairs = await store.leaderboard(guild_id=G, user_id=A, board="pairs")
    assert [(e.user_id, e.partner_id) for e in pairs.entries] == [(A, C)]
    given = await store.leaderboard(guild_id=G, user_id=A, board="given", period="week")
    assert lines(given) == [(1, A, 5)]
    await store.set_opt_out(user_id=B, opted_out=False)
    assert lines(await store.leaderboard(guild_id=G, user_id=A))[0] == (1, B, 3)


async def test_periods_read_the_per_day_totals(clocked: Store, clock: list[float]) -> None:
    clock[0] = NOW - 40 * DAY  # counted all time only
    await act(clocked, A, B)
    clock[0] = NOW - 10 * DAY  # this month, not this week
    await act(clocked, A, C)
    await act(clocked, A, C)
    clock[0] = NOW - 6 * DAY  # still this week (today and the six days before)
    await act(clocked, D, B)
    clock[0] = NOW
    await act(clocked, D, A)
    for period, expected in (
        ("all", [(1, B, 2), (2, C, 2), (3, A, 1)]),
        ("month", [(1, C, 2), (2, A, 1), (3, B, 1)]),
        ("week", [(1, A, 1), (2, B, 1)]),
    ):
        board = await clocked.leaderboard(guild_id=G, user_id=A, period=period)
        assert lines(board) == expected, period
    week = await clocked.leaderboard(guild_id=G, user_id=A, period="week", board="pairs")
    assert [(e.user_id, e.partner_id, e.count) for e in week.entries] == [(D, A, 1), (D, B, 1)]


async def test_day_totals_count_once_under_replays(store: Store, backend: Backend) -> None:
    for _ in range(2):  # the second call is a replay naming one more target
        await store.record_action(
            action_id=77, guild_id=G, action="hug", actor_id=A, target_ids=[B, C][: 1 + _]
        )
    await store.record_action(action_id=77, guild_id=G, action="hug", actor_id=A, target_ids=[B])
    rows = await backend.rows("SELECT target_id, count FROM daily_counts ORDER BY 1")
    assert rows == [(B, 1), (C, 1)]
    week = await store.leaderboard(guild_id=G, user_id=A, period="week")
    assert lines(week) == [(1, B, 1), (2, C, 1)]


async def test_forgotten_members_vanish_from_every_period(store: Store, backend: Backend) -> None:
    await act(store, A, B)
    await act(store, B, C)
    await act(store, C, A, guild=OTHER)
    await store.forget_user(user_id=B, keep_opt_out=False)
    for period in ("all", "month", "week"):
        for board in ("received", "given", "pairs"):
            page = await store.leaderboard(guild_id=G, user_id=A, board=board, period=period)
            assert page.entries == [], (board, period)
    assert await backend.rows("SELECT actor_id, target_id FROM daily_counts") == [(C, A)]
    await store.forget_guild(guild_id=OTHER)
    assert await backend.rows("SELECT * FROM daily_counts") == []


async def test_day_totals_are_pruned_after_31_days(backend: Backend, clock: list[float]) -> None:
    store = await backend.open(clock=lambda: clock[0])
    clock[0] = NOW - 31 * DAY
    await act(store, A, B)
    clock[0] = NOW - 30 * DAY
    await act(store, A, C)
    await store.close()
    clock[0] = NOW
    await backend.open(clock=lambda: clock[0])  # prunes at open
    assert await backend.rows("SELECT target_id FROM daily_counts") == [(C,)]
    assert await backend.rows("SELECT target_id FROM received_totals ORDER BY 1") == [(B,), (C,)]


async def test_an_upgrade_starts_the_days_from_the_last_days_markers(
    backend: Backend, db_path: Path, clock: list[float]
) -> None:
    # The schema before per-day totals, with the last day's markers as record_action left them.
    markers = [(1, B, A, "hug", 1, 1), (2, B, C, "hug", 1, 2), (3, C, A, "pat", 1, 1)]
    insert = (
        "INSERT INTO processed_actions (action_id, target_id, guild_id, actor_id, action,"
        " pair_count, received_total, created_at) VALUES "
    )
    values = [(i, t, G, a, action, p, r, int(NOW) - 3600) for i, t, a, action, p, r in markers]
    if backend.name == "sqlite":
        async with await SqliteStore.open(
            db_path, migrations=MIGRATIONS[:4]
        ):  # before the per-day totals (v5)
            pass
        conn = sqlite3.connect(db_path)
        with conn:
            conn.executemany(insert + "(?, ?, ?, ?, ?, ?, ?, ?)", values)
        conn.close()
    else:
        url = backend.url  # type: ignore[attr-defined]
        async with await PostgresStore.open(url, migrations=PG_MIGRATIONS[:5]):  # before v6
            pass
        pg = await asyncpg.connect(url)
        await pg.executemany(insert + "($1, $2, $3, $4, $5, $6, $7, $8)", values)
        await pg.close()
    store = await backend.open(clock=lambda: clock[0])
    week = await store.leaderboard(guild_id=G, user_id=A, period="week")
    assert lines(week) == [(1, B, 2), (2, C, 1)]
    await act(store, A, C, action="pat")
    assert lines(await store.leaderboard(guild_id=G, user_id=A, period="week", action="pat")) == [
        (1, C, 2)
    ]


async def test_bad_arguments_are_value_errors(store: Store) -> None:
    for bad in ({"board": "top"}, {"period": "day"}, {"offset": -1}, {"limit": True}):
        with pytest.raises(ValueError):
            await store.leaderboard(guild_id=G, user_id=A, **bad)  # type: ignore[arg-type]


async def test_the_leaderboard_setting(store: Store) -> None:
    off = GuildSettings(leaderboard=False)
    assert decode_settings(encode_settings(off)) == off
    # Settings stored before the setting existed read as on.
    assert "leaderboard" not in encode_settings(GuildSettings(pings=False))
    assert decode_settings('{"pings": false}').leaderboard is True
    with pytest.raises(ValueError, match="leaderboard"):
        decode_settings('{"leaderboard": "off"}')
    await store.save_guild_settings(G, off)
    assert (await store.guild_settings(G)).leaderboard is False
    # /config leaderboard is one atomic change of the stored row, leaving the rest as it was.
    await store.change_guild_settings(G, SettingsChange(pings=False))
    changed = await store.change_guild_settings(G, SettingsChange(leaderboard=True))
    assert changed == GuildSettings(pings=False, leaderboard=True)
    assert await store.guild_settings(G) == changed
    assert (await store.change_guild_settings(OTHER, SettingsChange(leaderboard=False))) == off


async def test_user_data_is_everything_naming_the_member(
    clocked: Store, clock: list[float]
) -> None:
    clock[0] = NOW - 2 * DAY
    await act(clocked, A, B)
    clock[0] = NOW
    await act(clocked, A, B)
    await act(clocked, C, A, action="pat")
    await act(clocked, B, C, guild=OTHER)  # names no A
    await act(clocked, D, A)
    returned = next(_ids)
    await clocked.record_action(
        action_id=returned, guild_id=G, action="hug", actor_id=B, target_ids=[A]
    )
    assert await clocked.claim_return(action_id=returned, target_id=A)
    await clocked.set_opt_out(user_id=A, opted_out=True)
    data = await clocked.user_data(A)
    assert [(k.guild_id, k.action, k.given, k.received) for k in data.counts] == [
        (G, "hug", 2, 2),
        (G, "pat", 0, 1),
    ]
    today = int(NOW) // DAY
    assert [(k.day, k.action, k.given, k.received) for k in data.days] == [
        (today - 2, "hug", 1, 0),
        (today, "hug", 1, 2),
        (today, "pat", 0, 1),
    ]
    assert [(p.actor_id, p.action) for p in data.pending_returns] == [(C, "pat"), (D, "hug")]
    assert data.opted_out_at == int(NOW)
    assert (await clocked.user_data(D)).opted_out_at is None
    await clocked.forget_user(user_id=A, keep_opt_out=False)
    forgotten = await clocked.user_data(A)
    assert (forgotten.counts, forgotten.days, forgotten.pending_returns) == ([], [], [])
    assert forgotten.opted_out_at is None

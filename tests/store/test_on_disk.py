"""The store's files on disk: private modes, and forgetting that leaves no copy in any file
(the database, its freelist, the WAL, the shared-memory index), also past a blocking reader."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from pathlib import Path

import pytest

from bot.store import sqlite_runner
from bot.store.sqlite import SqliteStore
from tests.helpers import mode_of, traces, umask

GUILD = 400_000_000_000_000_001
OTHER_GUILD = 400_000_000_000_000_002
USERS = [500_000_000_000_000_000 + i for i in range(40)]


async def fill(store: SqliteStore, actions: int, *, seed: int = 7, first_id: int = 1) -> None:
    """`actions` actions between USERS in two guilds (counters, dedupe rows, return markers)."""
    rng = random.Random(seed)
    for action_id in range(first_id, first_id + actions):
        actor, target = rng.sample(USERS, 2)
        guild = rng.choice((GUILD, OTHER_GUILD))
        action = rng.choice(("hug", "pat", "kiss"))
        await store.record_action(
            action_id=action_id, guild_id=guild, action=action, actor_id=actor, target_ids=[target]
        )
        if action_id % 5 == 0:
            await store.claim_return(action_id=action_id, target_id=target)


async def test_secure_delete_is_on(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    # Zeroes freed cells and pages; some SQLite builds default to it, the store does not rely on it.
    assert await store.run_on_connection(
        lambda conn: conn.execute("PRAGMA secure_delete").fetchone()
    ) == (1,)


async def test_created_directories_and_files_are_private_under_umask_022(tmp_path: Path) -> None:
    path = tmp_path / "new" / "data" / "nekocord.db"
    with umask(0o022):
        async with await SqliteStore.open(path) as store:
            await fill(store, 3)
            files = {p.name: mode_of(p) for p in path.parent.iterdir()}
    assert set(files) == {"nekocord.db", "nekocord.db-wal", "nekocord.db-shm"}
    assert all(mode == 0o600 for mode in files.values()), files
    assert mode_of(path.parent) == 0o700 and mode_of(path.parent.parent) == 0o700
    assert mode_of(path) == 0o600  # after a clean close too


async def test_an_existing_shared_database_is_reported_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "nekocord.db"
    sqlite3.connect(path).close()
    path.chmod(0o640)
    tmp_path.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="bot.store"):
        async with await SqliteStore.open(path):
            pass
    warnings = [r.getMessage() for r in caplog.records if "readable by" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0]
    assert mode_of(path) == 0o640 and mode_of(tmp_path) == 0o755

    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="bot.store"):
        async with await SqliteStore.open(path):
            pass
    assert not [r for r in caplog.records if "readable by" in r.getMessage()]


@pytest.mark.parametrize("forget", ["user", "guild"])
async def test_forgetting_leaves_no_copy_in_any_file(tmp_path: Path, forget: str) -> None:
    path = tmp_path / "data" / "nekocord.db"
    # Frequent checkpoints: the ids are in the database file (and, once deleted, its freelist)
    # as well as in the WAL.
    async with await SqliteStore.open(path, checkpoint_every=20) as store:
        await fill(store, 3000)
        forgotten, kept = (USERS[3], USERS[4]) if forget == "user" else (GUILD, OTHER_GUILD)
        assert traces(path.parent, forgotten) and traces(path.parent, kept)

        if forget == "user":
            await store.forget_user(user_id=forgotten, keep_opt_out=False)
        else:
            await store.forget_guild(guild_id=forgotten)

        assert traces(path.parent, forgotten) == []
        assert traces(path.parent, kept)
        assert (path.parent / "nekocord.db-wal").stat().st_size == 0
        # Still a sound database that goes on working.
        await fill(store, 50, first_id=10_000)
        ((check,),) = await store.run_on_connection(
            lambda conn: conn.execute("PRAGMA integrity_check").fetchall()
        )
        assert check == "ok"


async def test_a_reader_blocking_the_scrub_delays_it_until_a_later_commit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_runner, "SCRUB_WAIT", 0.3)
    path = tmp_path / "nekocord.db"
    forgotten = USERS[3]
    async with await SqliteStore.open(path) as store:
        await fill(store, 300)
        # Another process's reader (an operator's sqlite3 shell) holding a snapshot.
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM action_counts").fetchall()
        try:
            with caplog.at_level(logging.INFO, logger="bot.store"):
                started = time.monotonic()
                await store.forget_user(user_id=forgotten, keep_opt_out=False)
                took = time.monotonic() - started
                # Deleted for every query at once; only old copies wait in the WAL.
                stats = await store.user_stats(guild_id=GUILD, user_id=forgotten)
                assert stats.actions == [] and stats.top_partners == []
                assert 0.3 <= took < 3, took
                assert any("Could not empty the WAL" in m for m in caplog.messages)
                assert traces(tmp_path, forgotten)  # what the reader can still see
        finally:
            reader.execute("ROLLBACK")
            reader.close()

        with caplog.at_level(logging.INFO, logger="bot.store"):
            # Later commits retry, in the background.
            for action_id in range(5000, 5100):
                await fill(store, 1, first_id=action_id)
                if any("Emptied the WAL" in m for m in caplog.messages):
                    break
                await asyncio.sleep(0.02)
        assert any("Emptied the WAL" in m for m in caplog.messages), caplog.messages
        assert traces(tmp_path, forgotten) == []

"""Opening: DATABASE_URL forms, clear StoreErrors, WAL, and migrations run once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bot.store import StoreError, default_database_url, open_store, url_scheme
from bot.store.sqlite import SqliteStore
from bot.store.sqlite_schema import MIGRATIONS, Migration, SqliteTarget, parse_sqlite_url
from tests.helpers import record_one

HUG = {"guild_id": 1, "action": "hug", "actor_id": 10, "target_id": 20}


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def worker_threads() -> set[threading.Thread]:
    """The stores' database threads: a failed open must not leak one."""
    return {t for t in threading.enumerate() if t.name.startswith("nekocord-store")}


async def assert_no_new_worker(before: set[threading.Thread]) -> None:
    """A failed open stops its database thread before it raises."""
    assert not worker_threads() - before, f"leaked {worker_threads() - before}"


# ---------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/nekocord.db", SqliteTarget("data/nekocord.db")),
        ("sqlite:////srv/nekocord.db", SqliteTarget("/srv/nekocord.db")),
        ("SQLite:////srv/n.db?mode=ro", SqliteTarget("/srv/n.db", "ro")),
        ("  /srv/nekocord.db  ", SqliteTarget("/srv/nekocord.db")),
        ("data/nekocord.db", SqliteTarget("data/nekocord.db")),
        ("sqlite:///:memory:", SqliteTarget(":memory:")),
    ],
)
def test_parse_sqlite_url(url: str, expected: SqliteTarget) -> None:
    assert parse_sqlite_url(url) == expected


@pytest.mark.parametrize(
    "url", ["", "sqlite://host/db.sqlite", "sqlite:///", "sqlite:///x.db?cache=shared"]
)
def test_malformed_sqlite_urls(url: str) -> None:
    with pytest.raises(StoreError):
        parse_sqlite_url(url)


def test_scheme_detection() -> None:
    assert url_scheme("postgresql://u:p@h/db") == "postgresql"
    assert url_scheme("sqlite:///x.db") == "sqlite"
    assert url_scheme("/srv/x.db") is None
    assert default_database_url(Path("/data")) == "/data/nekocord.db"


async def test_unsupported_scheme_is_a_clear_error() -> None:
    with pytest.raises(StoreError) as caught:
        await open_store("mysql://nekocord:s3cret@db/nekocord")
    assert str(caught.value) == (
        "DATABASE_URL scheme 'mysql' is not supported (supported: sqlite, postgresql, postgres)"
    )
    assert "s3cret" not in str(caught.value)


async def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await open_store("sqlite:///data/nekocord.db") as store:
        await record_one(store, action_id=1, **HUG)
    assert (tmp_path / "data" / "nekocord.db").is_file()  # the directory was created


async def test_absolute_url_and_plain_path_name_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "n.db"
    async with await open_store(f"sqlite:///{path}") as store:  # → sqlite:////tmp/…
        await record_one(store, action_id=1, **HUG)
    async with await open_store(str(path)) as store:
        assert (await store.counts(**HUG)).pair == 1


async def test_memory_database_works() -> None:
    async with await open_store("sqlite:///:memory:") as store:
        assert (await record_one(store, action_id=1, **HUG)).pair == 1


async def test_wal_and_synchronous_normal(sqlite_store: SqliteStore, db_path: Path) -> None:
    store = sqlite_store

    def pragmas(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
        # The store's own connection: synchronous and busy_timeout are per connection.
        names = ("journal_mode", "synchronous", "busy_timeout", "wal_autocheckpoint")
        return [conn.execute(f"PRAGMA {name}").fetchone() for name in names]

    # NORMAL; the database thread waits 5 s for another process; checkpoints are the store's.
    assert await store.run_on_connection(pragmas) == [("wal",), (1,), (5000,), (0,)]


async def test_busy_timeout_is_a_setting(db_path: Path) -> None:
    async with await SqliteStore.open(db_path, busy_timeout=0.25) as store:
        busy = await store.run_on_connection(
            lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()
        )
        assert busy == (250,)


# ---------------------------------------------------------------- unopenable


async def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    before = worker_threads()
    with pytest.raises(StoreError, match="Cannot open the database") as caught:
        await open_store(str(tmp_path))
    assert "\n" not in str(caught.value)
    await assert_no_new_worker(before)


async def test_a_garbage_file_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database, just some bytes\n" * 200)
    before = worker_threads()
    with pytest.raises(StoreError, match="file is not a database"):
        await open_store(f"sqlite:///{path}")
    await assert_no_new_worker(before)
    assert path.read_bytes().startswith(b"this is not")  # left untouched


async def test_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="Cannot create the directory"):
        await open_store(str(tmp_path / "file" / "n.db"))


async def test_mode_rw_does_not_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="Cannot open"):
        await open_store(f"sqlite:///{tmp_path}/missing.db?mode=rw")
    assert not (tmp_path / "missing.db").exists()


async def test_a_newer_schema_is_refused(db_path: Path) -> None:
    async with await SqliteStore.open(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {MIGRATIONS[-1].version + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this nekocord supports"):
        await SqliteStore.open(db_path)


# ---------------------------------------------------------------- migrations


async def test_fresh_database_is_at_the_latest_version_and_reopen_is_a_no_op(
    db_path: Path,
) -> None:
    async with await SqliteStore.open(db_path) as store:
        await record_one(store, action_id=1, **HUG)
    latest = MIGRATIONS[-1].version
    assert user_version(db_path) == latest == len(MIGRATIONS)
    # v1 has plain CREATE TABLEs: running it again would fail, so opening twice proves it
    # is skipped.
    async with await SqliteStore.open(db_path) as store:
        assert (await store.counts(**HUG)).pair == 1
    assert user_version(db_path) == latest


def _with_v2(statements: tuple[str, ...]) -> tuple[Migration, ...]:
    return (*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "test step", statements))


async def test_an_older_database_is_migrated_forward_once(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:  # today's schema, with data
        await record_one(store, action_id=1, **HUG)
    v1 = user_version(db_path)

    migrations = _with_v2(
        ("CREATE TABLE migration_log (step INTEGER)", "INSERT INTO migration_log VALUES (2)")
    )
    for _ in range(2):
        async with await SqliteStore.open(db_path, migrations=migrations) as store:
            assert (await store.counts(**HUG)).pair == 1  # data carried over
    assert user_version(db_path) == v1 + 1
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT step FROM migration_log").fetchall() == [(2,)]  # ran once
    finally:
        conn.close()


async def test_a_failing_migration_rolls_back_whole(db_path: Path) -> None:
    async with await SqliteStore.open(db_path):
        pass
    v1 = user_version(db_path)
    migrations = _with_v2(("CREATE TABLE half (x)", "THIS IS NOT SQL"))
    before = worker_threads()
    with pytest.raises(StoreError, match=f"Cannot migrate .* to schema version {v1 + 1}"):
        await SqliteStore.open(db_path, migrations=migrations)
    await assert_no_new_worker(before)
    assert user_version(db_path) == v1
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall() == []
    finally:
        conn.close()


async def test_read_only_database_needing_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(StoreError, match="read-only but needs migrating"):
        await open_store(f"sqlite:///{path}?mode=ro")


def test_migrations_are_numbered_1_to_n() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))

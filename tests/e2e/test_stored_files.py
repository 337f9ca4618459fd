"""What the bot leaves on disk: file modes under a umask of 022, and no trace of a forgotten
member (or a server it left) in any file of DATA_DIR while it keeps running."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, BotProcess, bot_process, running_bot
from tests.helpers import db_path, db_rows, is_ephemeral, mode_of, traces, umask

pytestmark = pytest.mark.timeout(90)

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
CAROL = make_user(name="carol", global_name="Carol")
MEMBERS = (ALICE, BOB, CAROL)


# -- file modes -------------------------------------------------------------------------------


def modes(directory: Path) -> dict[str, str]:
    return {p.name: oct(mode_of(p)) for p in sorted(directory.iterdir())}


async def hug_and_wait_for_files(discord_api: FakeDiscord, proc: BotProcess, data: Path) -> None:
    await proc.wait_for_output("Ready as", timeout=30)
    handle = await discord_api.interact(discord_api.slash("hug", {"user": BOB}, user=ALICE))
    await handle.wait_message(timeout=15)
    for name in ("nekocord.db", "nekocord.db-wal", "nekocord.db-shm", "heartbeat"):
        assert (data / name).exists(), modes(data)


async def test_files_and_directory_the_bot_creates_are_private_under_umask_022(
    tmp_path: Path,
) -> None:
    data = tmp_path / "run" / "fresh" / "data"  # neither it nor its parent exists yet
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        # The child process inherits the umask at its start.
        with umask(0o022):
            async with bot_process(
                discord_api, nekos, tmp_path / "run", DATA_DIR=str(data)
            ) as proc:
                await hug_and_wait_for_files(discord_api, proc, data)
                assert any(data.glob("commands-*.sha256")) and (data / "categories.json").exists()
                running = modes(data)
                code, _ = await proc.terminate()
                assert code == 0, proc.output
                stopped = modes(data)
                output = proc.output
    assert mode_of(data) == 0o700
    assert mode_of(data.parent) == 0o700  # created by the bot as well
    for name, mode in {**running, **stopped}.items():
        assert int(mode, 8) & 0o077 == 0, (name, running, stopped)
    assert "readable by" not in output


async def test_an_existing_directory_keeps_its_mode_and_a_shared_database_is_reported(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        with umask(0o022):
            async with bot_process(discord_api, nekos, data) as proc:
                await hug_and_wait_for_files(discord_api, proc, data)
                assert (await proc.terminate())[0] == 0, proc.output
                assert "readable by" not in proc.output
            assert mode_of(data) == 0o755
            assert mode_of(db_path(data)) == 0o600

            db_path(data).chmod(0o644)  # as an older nekocord (or a copy) left it
            async with bot_process(discord_api, nekos, data) as proc:
                await proc.wait_for_output("Ready as", timeout=30)
                assert (await proc.terminate())[0] == 0, proc.output
                output = proc.output
    assert mode_of(data) == 0o755  # left alone
    warnings = [line for line in output.splitlines() if "readable by" in line]
    assert len(warnings) == 1, output
    assert "WARNING" in warnings[0] and str(db_path(data)) in warnings[0]


# -- no trace of forgotten ids ----------------------------------------------------------------


async def hug_around(discord_api: FakeDiscord, rounds: int, guild_id: int) -> None:
    for _, (actor, target) in itertools.product(range(rounds), itertools.permutations(MEMBERS, 2)):
        payload = discord_api.slash("hug", {"user": target}, user=actor, guild_id=guild_id)
        handle = await discord_api.interact(payload)
        await handle.wait_message(timeout=15)


async def test_forgetme_leaves_the_id_in_no_file(bot, discord_api, data_dir: Path) -> None:
    await hug_around(discord_api, rounds=6, guild_id=discord_api.guild_ids[0])
    alice, bob = int(ALICE["id"]), int(BOB["id"])
    assert traces(data_dir, alice), "the scan must see a stored id"

    forget = await discord_api.interact(discord_api.slash("forgetme", user=ALICE))
    assert is_ephemeral(await forget.wait_message())

    assert traces(data_dir, alice) == []
    assert traces(data_dir, bob)  # the others' data is still there, and seen by the scan
    assert (data_dir / "nekocord.db-wal").stat().st_size == 0
    assert bot.task.done() is False  # read while the bot keeps running


async def test_a_server_purge_leaves_its_id_in_no_file(
    nekos: FakeNekos, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    data = tmp_path / "data"
    async with FakeDiscord(token=TOKEN, guild_count=2) as discord_api:
        async with running_bot(discord_api, nekos, data) as bot:
            left, kept = discord_api.guild_ids
            for guild_id in (left, kept):
                await hug_around(discord_api, rounds=3, guild_id=guild_id)
            assert traces(data, left) and traces(data, kept)

            await discord_api.dispatch("GUILD_DELETE", {"id": str(left)})
            purged = f"Removed from server {left}"
            await discord_api.wait_until(lambda: purged in caplog.text, timeout=10)

            assert traces(data, left) == []
            assert traces(data, kept)
            assert (data / "nekocord.db-wal").stat().st_size == 0
            assert not bot.task.done()
            rows = db_rows(data, "SELECT COUNT(*) FROM action_counts WHERE guild_id = ?", (kept,))
            assert rows == [(6,)]

"""The bot's own life, as `python -m bot`: SIGTERM and `kill -9` in the middle of a burst, the
next start, and secrets in a whole run's DEBUG log."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.discord import FakeDiscord, InteractionRecord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, BotProcess, bot_process
from tests.helpers import (
    WINDOW,
    assert_db_consistent,
    db_path,
    db_rows,
    image_url,
    says,
)

pytestmark = pytest.mark.timeout(60)


async def started(proc: BotProcess, discord_api: FakeDiscord, nekos: FakeNekos) -> None:
    await proc.wait_for_output("Ready as", timeout=30)
    await discord_api.wait_connected(timeout=10)
    # the warm-up refill of /hug has landed (its pool serves the burst)
    deadline = time.monotonic() + 10
    while not any(r.status == 200 for r in nekos.requests_to("/hug")):
        assert time.monotonic() < deadline, "no warm-up refill"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


async def burst(
    discord_api: FakeDiscord,
    targets: list[dict[str, Any]],
    count: int,
    *,
    midway: Any,
    at: int,
) -> list[InteractionRecord]:
    """`count` /hug at ~100/s; `midway()` is called after `at` of them."""
    records: list[InteractionRecord] = []
    for i in range(count):
        if i == at:
            midway()
        try:
            records.append(
                await discord_api.interact(
                    discord_api.slash("hug", {"user": targets[i % len(targets)]})
                )
            )
        except RuntimeError:  # no gateway session any more: the bot is gone
            break
        await asyncio.sleep(0.01)
    return records


def acknowledged_counts(records: list[InteractionRecord]) -> set[int]:
    """Interactions whose user saw the GIF with its counter line."""
    shown = set()
    for record in records:
        message = record.visible_message()
        if message is not None and image_url(message):
            shown.add(int(record.id))
    return shown


def counted_ids(data_dir: Path) -> set[int]:
    return {row[0] for row in db_rows(data_dir, "SELECT action_id FROM processed_actions")}


def assert_unlocked(data_dir: Path) -> None:
    """Another process can take the write lock at once: nothing was left holding it."""
    conn = sqlite3.connect(db_path(data_dir), timeout=0.1, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


@pytest.mark.timeout(90)
async def test_sigterm_mid_burst(tmp_path: Path) -> None:
    data = tmp_path / "data"
    targets = [make_user(name=f"t{i}") for i in range(5)]
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with bot_process(discord_api, nekos, data) as proc:
            await started(proc, discord_api, nekos)
            assert "Migrated" in proc.output
            assert proc.process is not None
            sent_at: list[float] = []

            def sigterm() -> None:
                assert proc.process is not None
                sent_at.append(time.monotonic())
                proc.process.send_signal(signal.SIGTERM)

            records = await burst(discord_api, targets, 80, midway=sigterm, at=40)
            code = await proc.wait(timeout=10)
            took = time.monotonic() - sent_at[0]
            output = proc.output
        assert code == 0, output
        assert took < 5, took
        assert "Stopped cleanly" in output
        assert "Traceback" not in output, output
        # Everything a user was shown as counted is in the database, and nothing twice.
        shown = acknowledged_counts(records)
        assert len(shown) >= 30, len(shown)
        counted = counted_ids(data)
        assert shown <= counted, f"{len(shown - counted)} acknowledged counts lost"
        assert_db_consistent(data)
        # Those that arrived while stopping were told so (or found the bot gone).
        for record in records:
            message = record.visible_message()
            if message is not None and not image_url(message):
                assert says(message, "error_restarting"), message
        # Clean: no lock, no WAL left behind, no heartbeat.
        assert_unlocked(data)
        wal = data / "nekocord.db-wal"
        assert not wal.exists() or wal.stat().st_size == 0
        assert not (data / "heartbeat").exists()

        # The next start: no migration re-run, serves at once, counts continue.
        async with bot_process(discord_api, nekos, data) as proc:
            await proc.wait_for_output("Ready as", timeout=30)
            await discord_api.wait_connected(timeout=10)
            assert "Migrated" not in proc.output, proc.output
            assert "Registered" not in proc.output  # commands unchanged: no re-sync
            record = await discord_api.interact(discord_api.slash("hug", {"user": targets[0]}))
            message = await record.wait_message(timeout=10)
            assert image_url(message)
            assert record.response_time is not None and record.response_time < WINDOW
            code, _ = await proc.terminate()
            assert code == 0
        assert int(record.id) in counted_ids(data)
        assert_db_consistent(data)


@pytest.mark.timeout(90)
async def test_kill_9_mid_burst(tmp_path: Path) -> None:
    data = tmp_path / "data"
    targets = [make_user(name=f"k{i}") for i in range(5)]
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with bot_process(discord_api, nekos, data) as proc:
            await started(proc, discord_api, nekos)
            assert proc.process is not None

            def kill() -> None:
                assert proc.process is not None
                proc.process.send_signal(signal.SIGKILL)

            records = await burst(discord_api, targets, 80, midway=kill, at=40)
            code = await proc.wait(timeout=10)
        assert code == -signal.SIGKILL
        # WAL recovery on the next open: consistent, nothing acknowledged is lost.
        assert_db_consistent(data)
        shown = acknowledged_counts(records)
        assert len(shown) >= 20, len(shown)
        counted = counted_ids(data)
        assert shown <= counted, f"{len(shown - counted)} acknowledged counts lost"
        before = db_rows(
            data,
            "SELECT count FROM received_totals WHERE target_id = ? AND action = 'hug'",
            (int(targets[0]["id"]),),
        )[0][0]

        async with bot_process(discord_api, nekos, data) as proc:
            await proc.wait_for_output("Ready as", timeout=30)
            await discord_api.wait_connected(timeout=10)
            assert "Migrated" not in proc.output
            record = await discord_api.interact(discord_api.slash("hug", {"user": targets[0]}))
            message = await record.wait_message(timeout=10)
            assert image_url(message)
            assert f"has received {before + 1} " in message["embeds"][0]["description"]
            code, _ = await proc.terminate()
            assert code == 0, proc.output
        assert_db_consistent(data)
        assert_unlocked(data)


@pytest.mark.timeout(90)
async def test_debug_log_of_a_whole_run_holds_no_secret(tmp_path: Path) -> None:
    """LOG_LEVEL=DEBUG through commands, deferrals, buttons, autocomplete, errors, REST 429
    and 5xx, and gateway reconnects: neither the bot token nor any interaction token shows."""
    data = tmp_path / "data"
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:

        async def slow_wave(request: web.Request) -> None:
            if request.path.endswith("/wave"):
                await asyncio.sleep(2.0)

        nekos.override = slow_wave
        async with bot_process(discord_api, nekos, data, LOG_LEVEL="DEBUG") as proc:
            await started(proc, discord_api, nekos)
            friend = make_user(name="friend")
            records: list[InteractionRecord] = []

            async def run(payload: dict[str, Any], wait: bool = True) -> InteractionRecord:
                record = await discord_api.interact(payload)
                records.append(record)
                if wait:
                    await record.wait_for(lambda r: r.callbacks or r.rejected_callbacks, 10)
                return record

            hug = await run(discord_api.slash("hug", {"user": friend}))
            message = await hug.wait_message(timeout=10)
            back = next(
                c["custom_id"]
                for row in message["components"]
                for c in row["components"]
                if c["custom_id"].startswith("nc:r:")
            )
            press = await run(discord_api.component(back, message, user=friend))
            await press.wait_for(lambda r: r.followups, timeout=10)
            wave = await run(discord_api.slash("wave"))  # deferred, then edited in
            await wave.wait_message(timeout=10)
            await run(discord_api.autocomplete("action", "category", {"category": "hu"}))
            await run(discord_api.slash("search", {"query": "Nichijou"}))
            await run(discord_api.slash("image", {"category": "nope", "amount": 2}))
            await run(discord_api.slash("source", {"url": "https://evil.example/x.png"}))
            # REST trouble: a 429 on a callback, a 5xx on an edit (discord.py logs both URLs)
            discord_api.fail(
                "POST", r"/interactions/\d+/[^/]+/callback", status=429, json={"retry_after": 0.2}
            )
            await run(discord_api.slash("pat", {"user": friend}))
            discord_api.fail("PATCH", r"/messages/@original", status=500)
            slow = await run(discord_api.slash("wave"))
            await slow.wait_message(timeout=10)
            # a late callback (10062), logged with its URL
            deadline, discord_api.callback_deadline = discord_api.callback_deadline, 0.0
            await run(discord_api.slash("kiss", {"user": friend}))
            discord_api.callback_deadline = deadline
            # gateway: a close and a drop (RESUME carries the token)
            await discord_api.close_gateway(4000)
            await discord_api.wait_until(lambda: len(discord_api.resumes) >= 1, timeout=10)
            await discord_api.wait_connected(timeout=10)
            discord_api.drop_gateway()
            await discord_api.wait_until(lambda: len(discord_api.resumes) >= 2, timeout=10)
            await discord_api.wait_connected(timeout=10)
            await run(discord_api.slash("hug", {"user": friend}))
            code, _ = await proc.terminate()
            output = proc.output
    assert code == 0, output[-3000:]
    assert "INTERACTION_CREATE" in output or "Interaction" in output  # DEBUG was on
    assert "[redacted]" in output
    secret_part = TOKEN.rsplit(".", 1)[1]
    assert TOKEN not in output
    assert secret_part not in output
    assert len(records) >= 10
    leaked = [r.id for r in records if r.token in output]
    assert not leaked, f"interaction tokens of {leaked} in the log"
    # even partial tokens (a URL cut at a boundary) do not show
    assert not [r.id for r in records if r.token[:32] in output]

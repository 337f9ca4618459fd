"""kill -9 in the middle of a burst of writes loses no acknowledged count and never leaves a
partial action behind (pair count, received total and dedupe row commit together)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from bot.store import open_store
from tests.helpers import assert_consistent, record_one

WRITER = Path(__file__).with_name("crash_writer.py")
REPO = Path(__file__).resolve().parents[2]


async def _run_and_kill(url: str, first_id: int, acks_before_kill: int) -> list[tuple[int, ...]]:
    """Start the writer, SIGKILL it after `acks_before_kill` acknowledgements, return them all
    (including any it flushed to the pipe before dying)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        url,
        str(first_id),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    acks: list[tuple[int, ...]] = []
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
        assert first == b"ready\n", first + (await proc.stderr.read() if proc.stderr else b"")
        while len(acks) < acks_before_kill:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
            assert line, "writer exited early"
            acks.append(tuple(map(int, line.split())))
        proc.send_signal(signal.SIGKILL)  # mid-burst: BURST calls are in flight
        rest, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
        acks.extend(tuple(map(int, ln.split())) for ln in rest.decode().splitlines())
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return acks


async def test_kill_9_mid_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    url = f"sqlite:///{path}"
    acks: list[tuple[int, ...]] = []
    for round_no, kill_after in enumerate((150, 233, 317)):
        acks += await _run_and_kill(url, 1_000_000 * (round_no + 1), kill_after)

        assert_consistent(path)  # integrity_check ok, totals == sums
        conn = sqlite3.connect(path)
        try:
            for actor, target in {(a[0], a[1]) for a in acks}:
                pair = conn.execute(
                    "SELECT count FROM action_counts WHERE actor_id = ? AND target_id = ?",
                    (actor, target),
                ).fetchone()[0]
                processed = conn.execute(
                    "SELECT COUNT(*) FROM processed_actions WHERE actor_id = ? AND target_id = ?",
                    (actor, target),
                ).fetchone()[0]
                last_ack = max(a[2] for a in acks if (a[0], a[1]) == (actor, target))
                assert pair >= last_ack
                assert pair == processed  # no count without its dedupe row, nor the reverse
            for target in {a[1] for a in acks}:
                total = conn.execute(
                    "SELECT count FROM received_totals WHERE target_id = ?", (target,)
                ).fetchone()[0]
                assert total >= max(a[3] for a in acks if a[1] == target)
        finally:
            conn.close()

    # The store opens normally afterwards and carries on counting from there.
    async with await open_store(url) as store:
        before = await store.counts(guild_id=7, action="hug", actor_id=1, target_id=10)
        after = await record_one(
            store, action_id=1, guild_id=7, action="hug", actor_id=1, target_id=10
        )
        assert after.pair == before.pair + 1

"""Subprocess for test_crash.py: writes bursts of actions forever (until SIGKILLed), printing
one line per *acknowledged* action: `actor target pair received_total`.

Usage: python crash_writer.py DATABASE_URL FIRST_ACTION_ID
"""

from __future__ import annotations

import asyncio
import sys
import time

from bot.store import Store, open_store

GUILD = 7
BURST = 25
TIME_LIMIT = 30.0  # a safety net if the test dies before it can kill us


async def one(store: Store, action_id: int) -> None:
    actor, target = 1 + action_id % 3, 10 + action_id % 2
    (counts,) = await store.record_action(
        action_id=action_id, guild_id=GUILD, action="hug", actor_id=actor, target_ids=[target]
    )
    # Printed only once record_action returned, i.e. once the action is committed.
    sys.stdout.write(f"{actor} {target} {counts.pair} {counts.received_total}\n")
    sys.stdout.flush()


async def main(url: str, first_id: int) -> None:
    store = await open_store(url)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    next_id = first_id
    deadline = time.monotonic() + TIME_LIMIT
    while time.monotonic() < deadline:
        await asyncio.gather(*(one(store, next_id + k) for k in range(BURST)))
        next_id += BURST
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

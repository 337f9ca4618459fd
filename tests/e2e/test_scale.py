"""Three `python -m bot` processes, one shard each of three, on one PostgreSQL, against one
sharded stand-in Discord (guilds by `(guild_id >> 22) % 3`, each interaction on its shard's
connection):

- all ready, IDENTIFYs of different processes at least Discord's 5 s apart (max_concurrency 1:
  one bucket), exactly one command registration;
- 1,000 concurrent actions across every shard's guilds, counted exactly;
- a gateway replay delivered to another process: neither answered nor counted;
- `kill -9` of one process mid-load, then a restart: every acknowledged action counted once,
  the other shards untouched, the restarted one answers again without registering again.

Rerun alone: `pytest tests/e2e/test_scale.py` (about 40 s).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.shards import IDENTIFY_WINDOW
from tests.fakes.discord import FakeDiscord, InteractionRecord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, BotProcess, bot_processes
from tests.helpers import image_url, text_of
from tests.pg import PostgresCluster

pytestmark = pytest.mark.timeout(300)

SHARDS = 3
READY_TIMEOUT = 90
Key = tuple[int, int, int]  # guild, actor, target


class Load:
    """Actions of a few members at each other in every guild; remembers what it sent and which
    answers came back (a visible public message: the action was acknowledged)."""

    def __init__(self, fake: FakeDiscord, seed: int) -> None:
        self.fake = fake
        self.rng = random.Random(seed)
        self.actors = [make_user(name=f"actor{i}") for i in range(8)]
        self.targets = [make_user(name=f"target{i}") for i in range(4)]
        self.sent: Counter[Key] = Counter()
        self.acknowledged: Counter[Key] = Counter()
        self.records: list[tuple[Key, InteractionRecord]] = []
        self.refusals: Counter[str] = Counter()  # answers without an image, by text

    async def send(self, guild_id: int) -> InteractionRecord | None:
        actor, target = self.rng.choice(self.actors), self.rng.choice(self.targets)
        key = (guild_id, int(actor["id"]), int(target["id"]))
        payload = self.fake.slash("hug", {"user": target}, user=actor, guild_id=guild_id)
        try:
            record = await self.fake.interact(payload)
        except RuntimeError:  # the shard's process is down: Discord would not deliver it
            return None
        self.sent[key] += 1
        self.records.append((key, record))
        return record

    async def settle(self, timeout: float) -> None:
        """Wait for every answer still to come; what has none by then was not acknowledged."""

        async def one(key: Key, record: InteractionRecord) -> None:
            try:
                message = await record.wait_message(timeout=timeout)
            except TimeoutError:
                self.refusals[f"no answer: {record.describe()}"[:300]] += 1
                return
            if image_url(message):
                self.acknowledged[key] += 1
            else:
                self.refusals[text_of(message)] += 1

        pending, self.records = self.records, []
        await asyncio.gather(*(one(key, record) for key, record in pending))


def stored_counts(cluster: PostgresCluster, url: str) -> Counter[Key]:
    rows = cluster.psql(
        "SELECT guild_id, actor_id, target_id, count FROM action_counts WHERE action = 'hug'",
        database=url.rsplit("/", 1)[1],
    )
    counts: Counter[Key] = Counter()
    for line in rows.split():
        guild, actor, target, count = (int(part) for part in line.split("|"))
        counts[(guild, actor, target)] = count
    return counts


async def wait_ready(process: BotProcess) -> None:
    await process.wait_for_output("Ready as", timeout=READY_TIMEOUT)


@pytest.fixture
async def sharded_api() -> Any:
    async with FakeDiscord(token=TOKEN, guild_count=3 * SHARDS, shard_count=SHARDS) as server:
        yield server


async def test_three_processes_share_one_database(
    pg_cluster: PostgresCluster,
    pg_url: str,
    sharded_api: FakeDiscord,
    nekos: FakeNekos,
    tmp_path: Path,
) -> None:
    fake = sharded_api
    shard_ids = [str(shard) for shard in range(SHARDS)]
    # The killed process, restarted, takes its shard back once its lease expired: keep it short.
    async with bot_processes(
        fake,
        nekos,
        tmp_path,
        shard_ids,
        SHARD_COUNT=str(SHARDS),
        DATABASE_URL=pg_url,
        SHARD_LEASE_SECONDS="3",
    ) as processes:
        await asyncio.gather(*(wait_ready(p) for p in processes))
        await fake.wait_connected(timeout=30)
        assert fake.ready_shards == set(range(SHARDS))

        # One IDENTIFY per shard, each process's at least Discord's window after the last.
        assert sorted(shard for shard, _ in fake.identify_times) == list(range(SHARDS))
        times = sorted(at for _, at in fake.identify_times)
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(gap >= IDENTIFY_WINDOW for gap in gaps), gaps
        # Only the owner of shard 0 registers, once.
        assert fake.command_puts == 1
        assert "Registered" in processes[0].output
        assert not any("Registered" in p.output for p in processes[1:])

        # 1,000 concurrent actions over every shard's guilds: exact counts.
        load = Load(fake, seed=3)
        guilds = list(fake.guild_ids)
        await asyncio.gather(*(load.send(guilds[i % len(guilds)]) for i in range(1000)))
        await load.settle(timeout=60)
        assert sum(load.sent.values()) == 1000
        assert not load.refusals
        assert load.acknowledged == load.sent
        assert stored_counts(pg_cluster, pg_url) == load.sent

        # A replay of an answered interaction delivered to another process's shard.
        key, original = next((k, r) for k, r in _answered(fake) if fake.shard_of(k[0]) == 0)
        before = len(original.callbacks)
        replay = await fake.interact(copy.deepcopy(original.payload), shard=1)
        await asyncio.sleep(2)
        assert replay.callbacks == [] and replay.visible_message() is None
        assert len(original.callbacks) == before
        assert stored_counts(pg_cluster, pg_url) == load.sent

        # kill -9 one process while actions arrive everywhere, then restart it.
        killed = processes[1]
        second = Load(fake, seed=4)
        second.sent, second.acknowledged = load.sent.copy(), load.acknowledged.copy()

        async def traffic() -> None:
            for i in range(300):
                await second.send(guilds[i % len(guilds)])
                await asyncio.sleep(0.005)

        sender = asyncio.create_task(traffic())
        await asyncio.sleep(0.5)
        assert await killed.kill() == -9
        await sender
        await second.settle(timeout=15)
        await killed.start()
        await wait_ready(killed)
        await fake.wait_connected(timeout=30)
        for guild_id in fake.guilds_of(1):
            record = await second.send(guild_id)
            assert record is not None
        await second.settle(timeout=30)

        stored = stored_counts(pg_cluster, pg_url)
        for key in second.sent:
            assert second.acknowledged[key] <= stored[key] <= second.sent[key], key
            if fake.shard_of(key[0]) != 1:  # untouched shards: everything answered and counted
                assert stored[key] == second.acknowledged[key] == second.sent[key], key
        assert set(stored) <= set(second.sent)
        assert fake.command_puts == 1  # the restart registered nothing
        for process in processes:
            code, _ = await process.terminate()
            assert code == 0, process.output[-2000:]


def _answered(fake: FakeDiscord) -> list[tuple[Key, InteractionRecord]]:
    out = []
    for record in fake.interactions:
        data = record.payload
        if record.visible_message() is None or "guild_id" not in data:
            continue
        target = next(iter(data["data"]["resolved"]["users"]))
        key = (int(data["guild_id"]), int(data["member"]["user"]["id"]), int(target))
        out.append((key, record))
    return out

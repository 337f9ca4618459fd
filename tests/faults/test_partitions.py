"""Faults between hosts: the cluster on five network namespaces (`tests/faults/netns.py`).

PostgreSQL on one host, the stand-ins (Discord REST and gateway, nekos.best) on another, and
two `python -m bot` processes on their own hosts, one shard each of two. Process 0 reaches
PostgreSQL directly, process 1 through a fault proxy on the database host. While actions
arrive on both shards:

(a) process 0 is cut off from PostgreSQL for 20 s (its packets dropped: connections hang,
    nothing is refused), then healed;
(b) process 1 is cut off from the Discord stand-in until Discord drops it as a zombie, then
    healed: it resumes its session by itself;
(c) the proxy adds latency and cuts connections at random under process 1's queries.

Then: every interaction Discord delivered got its first response within 3 s and a visible
answer; an answer shows a count only when it was stored (one it could not store shows the
action without figures); for every (server, actor, target) shown ≤ stored ≤ sent, no figure
shown twice, `received_totals` the sums of the pairs; both processes are ready again (/healthz
200) without help, and stop cleanly.

Needs root, `ip` and `iptables` (skipped with the reason otherwise, failed under CI=true).
Rerun alone: `pytest tests/faults/test_partitions.py` (about 70 s).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot import wording
from tests.fakes.discord import FakeDiscord, InteractionRecord, make_user
from tests.fakes.nekos import FakeNekos
from tests.faults.netns import SUBNET, FaultProxy, Host, Network, namespaces_unavailable
from tests.harness import TOKEN, BotProcess, bot_env
from tests.helpers import WINDOW, image_url, text_of
from tests.pg import PostgresCluster, require_postgres

pytestmark = pytest.mark.timeout(300)

SHARDS = 2
METRICS_PORT = 9100
READY_TIMEOUT = 90
DB_CUT = 20.0  # seconds process 0 is cut off from PostgreSQL
RATE = 8.0  # actions sent per second during each fault
Key = tuple[int, int, int]  # guild, actor, target


def _counter_pattern() -> re.Pattern[str]:
    """The counter line under an action, with its two figures as groups (total, pair)."""
    fields = {"target": ".+?", "noun": r"\S+", "actor": ".+?"}
    template = re.escape(wording.message("counter_line", **{k: f"\x00{k}\x00" for k in
                         ("target", "total", "noun", "pair", "actor")}))  # fmt: skip
    for name, pattern in fields.items():
        template = template.replace(f"\x00{name}\x00", pattern)
    for name in ("total", "pair"):
        template = template.replace(f"\x00{name}\x00", r"(\d+)")
    return re.compile(template)


COUNTER = _counter_pattern()
UNSAVED = wording.message("counter_unsaved")  # said instead of a count it could not store


# -- the hosts -----------------------------------------------------------------------------------


@pytest.fixture
def network() -> Iterator[Network]:
    reason = namespaces_unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI runs this as root with iproute2 and iptables: {reason}")
        pytest.skip(reason)
    net = Network()
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def hosts(network: Network) -> dict[str, Host]:
    return {role: network.add(role) for role in ("db", "services", "bot0", "bot1")}


@pytest.fixture
def database(hosts: dict[str, Host]) -> Iterator[PostgresCluster]:
    db = hosts["db"]
    cluster = PostgresCluster(
        require_postgres(),
        exec_prefix=db.exec_prefix(),
        listen=("127.0.0.1", db.address),
        trusted_networks=(f"{SUBNET}.0/24",),
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def stand_ins(hosts: dict[str, Host]) -> AsyncIterator[tuple[FakeDiscord, FakeNekos]]:
    services = hosts["services"]
    fake = FakeDiscord(token=TOKEN, guild_count=2 * SHARDS, shard_count=SHARDS)
    # Heartbeats every second, and a client silent for 3 s dropped as Discord drops a zombie:
    # a cut-off process then finds its connection gone when the link heals, and resumes.
    fake.heartbeat_interval_ms = 1000
    fake.zombie_after = 3.0
    nekos = FakeNekos()
    try:
        await fake.start(services.socket_in(listen_port=0))
        await nekos.start(services.socket_in(listen_port=0))
        yield fake, nekos
    finally:
        await nekos.stop()
        await fake.stop()


@pytest.fixture
async def proxy(hosts: dict[str, Host], database: PostgresCluster) -> AsyncIterator[FaultProxy]:
    relay = FaultProxy(hosts["db"], ("127.0.0.1", database.port), seed=11)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


# -- traffic -------------------------------------------------------------------------------------


class Load:
    """Actions of a few members at each other, with what was sent and what each answer showed:
    `shown[key]` lists the pair figures of the answers that showed a count."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.actors = [make_user(name=f"actor{i}") for i in range(4)]
        self.targets = [make_user(name=f"target{i}") for i in range(3)]
        self.sent: Counter[Key] = Counter()
        self.shown: dict[Key, list[int]] = {}
        self.records: list[tuple[Key, InteractionRecord]] = []
        self.problems: list[str] = []
        self.uncounted = 0
        self._turn = 0

    async def send(self, guild_id: int) -> tuple[Key, InteractionRecord]:
        self._turn += 1
        actor = self.actors[self._turn % len(self.actors)]
        target = self.targets[(self._turn // len(self.actors)) % len(self.targets)]
        key = (guild_id, int(actor["id"]), int(target["id"]))
        payload = self.fake.slash("hug", {"user": target}, user=actor, guild_id=guild_id)
        record = await self.fake.interact(payload)
        self.sent[key] += 1
        self.records.append((key, record))
        return key, record

    async def stream(self, guilds: list[int], seconds: float) -> None:
        """`RATE` actions a second over `guilds` for `seconds`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        index = 0
        while loop.time() < end:
            await self.send(guilds[index % len(guilds)])
            index += 1
            await asyncio.sleep(1 / RATE)

    async def settle(self, timeout: float = 30) -> None:
        """Every answer still to come, read: the first response within Discord's window, a
        visible answer with the GIF, its figures if any."""

        async def one(key: Key, record: InteractionRecord) -> None:
            try:
                message = await record.wait_message(timeout=timeout)
            except TimeoutError:
                self.problems.append(f"no answer: {record.describe()}"[:400])
                return
            if record.response_time is None or record.response_time >= WINDOW:
                self.problems.append(f"first response after {record.response_time}: {key}")
            if not image_url(message):
                self.problems.append(f"answered without the action: {text_of(message)!r}")
                return
            text = text_of(message)
            figures = COUNTER.search(text)
            if (figures is None) == (UNSAVED not in text):
                self.problems.append(f"a count neither shown nor said unsaved: {text!r}")
            elif figures is None:
                self.uncounted += 1
            else:
                self.shown.setdefault(key, []).append(int(figures.group(2)))

        pending, self.records = self.records, []
        await asyncio.gather(*(one(key, record) for key, record in pending))

    async def counted_on(self, guild_id: int, timeout: float) -> None:
        """Until an action in `guild_id` is answered with its count (the store is back)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            _, record = await self.send(guild_id)
            await self.settle()
            if COUNTER.search(text_of(record.visible_message())):
                return
            if loop.time() > deadline:
                raise AssertionError(f"no count shown in {guild_id} within {timeout} s")
            await asyncio.sleep(0.5)


def stored(cluster: PostgresCluster, database: str) -> tuple[Counter[Key], list[str]]:
    """The stored pair counts, and every target whose received total is not their sum."""
    rows = cluster.psql(
        "SELECT guild_id, actor_id, target_id, count FROM action_counts WHERE action = 'hug'",
        database=database,
    )
    counts: Counter[Key] = Counter()
    for line in rows.split():
        guild, actor, target, count = (int(part) for part in line.split("|"))
        counts[(guild, actor, target)] = count
    mismatched = cluster.psql(
        """SELECT r.guild_id, r.target_id, r.count, s.n FROM received_totals AS r
           FULL JOIN (SELECT guild_id, target_id, action, SUM(count) AS n FROM action_counts
                      GROUP BY guild_id, target_id, action) AS s USING (guild_id, target_id, action)
           WHERE r.count IS DISTINCT FROM s.n""",
        database=database,
    )
    return counts, mismatched.split()


async def wait_healthy(host: Host, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (status := await host.http_get("/healthz", host.address, METRICS_PORT)) != 200:
        if loop.time() > deadline:
            raise AssertionError(f"{host.name}: /healthz {status} after {timeout} s")
        await asyncio.sleep(0.25)


# -- the test ------------------------------------------------------------------------------------


async def test_partitions_between_hosts(
    hosts: dict[str, Host],
    database: PostgresCluster,
    stand_ins: tuple[FakeDiscord, FakeNekos],
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    fake, nekos = stand_ins
    db = hosts["db"]
    url = database.create_database("partitions")
    name = url.rsplit("/", 1)[1]
    urls = [
        database.url(name, host=db.address),
        database.url(name, host=db.address, port=proxy.port),  # process 1: through the proxy
    ]
    processes: list[BotProcess] = []
    for shard, host in enumerate((hosts["bot0"], hosts["bot1"])):
        own_dir = tmp_path / f"process-{shard}"
        own_dir.mkdir()
        env = bot_env(
            fake, nekos, own_dir,
            SHARD_COUNT=str(SHARDS), SHARD_IDS=str(shard), DATABASE_URL=urls[shard],
            METRICS_PORT=str(METRICS_PORT), METRICS_HOST=host.address,
        )  # fmt: skip
        processes.append(
            BotProcess(
                env=env,
                log_path=tmp_path / f"process-{shard}-bot.log",
                cwd=own_dir,
                exec_prefix=host.exec_prefix(),
            )
        )
    try:
        for process in processes:
            await process.start()
        await asyncio.gather(
            *(p.wait_for_output("Ready as", timeout=READY_TIMEOUT) for p in processes)
        )
        await fake.wait_connected(timeout=30)
        for host in (hosts["bot0"], hosts["bot1"]):
            await wait_healthy(host)
        await _faults(fake, hosts, proxy, database, name)
        for process in processes:
            code, _ = await process.terminate(timeout=30)
            assert code == 0, process.output[-3000:]
    except BaseException:
        for process in processes:
            print(f"--- {process.log_path.name}\n{process.output[-6000:]}")
        raise
    finally:
        await asyncio.gather(*(process.stop() for process in processes))


async def _faults(
    fake: FakeDiscord,
    hosts: dict[str, Host],
    proxy: FaultProxy,
    database: PostgresCluster,
    name: str,
) -> None:
    bot0, bot1 = hosts["bot0"], hosts["bot1"]
    shard0, shard1 = fake.guilds_of(0), fake.guilds_of(1)
    everywhere = shard0 + shard1
    load = Load(fake)

    # Warm: every pair counted on both shards.
    await load.stream(everywhere, 2)
    await load.settle()
    assert not load.problems, load.problems
    assert load.uncounted == 0

    # (a) Process 0 cut off from PostgreSQL for 20 s while actions arrive on both shards.
    bot0.cut_from(hosts["db"])
    try:
        await load.stream(everywhere, DB_CUT)
    finally:
        bot0.heal_from(hosts["db"])
    await load.settle()
    assert not load.problems, load.problems[:10]
    await load.counted_on(shard0[0], timeout=60)  # its pool reconnected by itself
    await wait_healthy(bot0)

    # (b) Process 1 cut off from Discord until Discord drops it; it resumes by itself.
    resumes, identifies = len(fake.resumes), len(fake.identifies)
    bot1.cut_from(hosts["services"])
    try:
        sender = asyncio.create_task(load.stream(shard0, 60))
        await fake.wait_until(lambda: 1 not in fake.ready_shards, timeout=30)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    finally:
        bot1.heal_from(hosts["services"])
    await fake.wait_until(lambda: fake.ready_shards == {0, 1}, timeout=90)
    assert len(fake.resumes) > resumes and len(fake.identifies) == identifies
    await wait_healthy(bot1)
    await load.stream(everywhere, 2)
    await load.settle()
    assert not load.problems, load.problems[:10]

    # (c) Latency and dropped connections between process 1 and PostgreSQL.
    proxy.latency, proxy.drop = 0.1, 0.03
    try:
        await load.stream(everywhere, 15)
    finally:
        proxy.latency, proxy.drop = 0.0, 0.0
    await load.settle()
    assert not load.problems, load.problems[:10]
    assert proxy.dropped > 0
    await load.counted_on(shard1[0], timeout=60)

    counts, mismatched = stored(database, name)
    assert not mismatched, mismatched
    assert set(counts) <= set(load.sent)
    for key, sent in load.sent.items():
        shown = load.shown.get(key, [])
        assert len(shown) == len(set(shown)), f"a figure shown twice for {key}: {shown}"
        assert len(shown) <= counts[key] <= sent, (key, shown, counts[key], sent)
        assert max(shown, default=0) <= counts[key], (key, shown, counts[key])
    print(
        f"sent {sum(load.sent.values())}, uncounted answers {load.uncounted}, "
        f"stored {sum(counts.values())}, proxy connections {proxy.connections}, "
        f"cut {proxy.dropped}, resumes {len(fake.resumes) - resumes}"
    )
    for host in (bot0, bot1):
        await wait_healthy(host)

"""docker-compose.scale.yml, as far as a machine without Docker and without a registry runs it:
the two bot services' environment is read from the file itself (a drift of the file breaks
this test), checked for coherence, then both services run as podman containers of the image
(conftest.py's, built once) on the host network, against one real PostgreSQL and a stand-in
Discord with four shards.

Only what must differ here is replaced: DATABASE_URL's host and port (the `postgres` service →
the throwaway cluster, with the file's user, database and a password it enforces), the Discord
and nekos.best addresses (→ the stand-ins) and METRICS_PORT (→ free ports: both share the host
network). The coherence tests run in the plain suite; the run is marked `container`:

    pytest -m container tests/container/test_scale.py     # about 15 s once the image is built
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yarl

from bot.config import SETTINGS, load_config
from bot.shards import IDENTIFY_WINDOW
from tests.container import compose
from tests.container.podman import Image, Podman, unique, wait_for_log
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, bot_env
from tests.pg import PostgresCluster

BOT_SERVICES = ("nekocord-a", "nekocord-b")
DATABASE_SERVICE = "postgres"
# What `.env` gives compose for the file's `${...}` (the bots read the rest of .env themselves).
ENV_FILE_VARIABLES = {"POSTGRES_PASSWORD"}
# The official postgres image's variables the file may set.
POSTGRES_IMAGE_VARIABLES = {
    "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "POSTGRES_INITDB_ARGS", "PGDATA",
}  # fmt: skip
SETTING_NAMES = {setting.name for setting in SETTINGS}
# Two IDENTIFY buckets (shard % 2): each holds a shard of both services, so the pacing is
# across containers, and the four shards connect in one window instead of three.
MAX_CONCURRENCY = 2


def service_environments(password: str = "pw") -> dict[str, dict[str, str]]:
    loaded = compose.load()
    variables = {"POSTGRES_PASSWORD": password}
    return {
        name: compose.environment(loaded, name, variables)
        for name in (*BOT_SERVICES, DATABASE_SERVICE)
    }


# -- the file (plain suite) -----------------------------------------------------------------


def test_the_services_set_only_known_variables() -> None:
    loaded = compose.load()
    assert set(loaded["services"]) == {*BOT_SERVICES, DATABASE_SERVICE}
    envs = service_environments()
    for name in BOT_SERVICES:
        assert set(envs[name]) <= SETTING_NAMES, set(envs[name]) - SETTING_NAMES
        assert DATABASE_SERVICE in loaded["services"][name]["depends_on"]
    assert set(envs[DATABASE_SERVICE]) <= POSTGRES_IMAGE_VARIABLES
    # Every `${...}` is one `.env` is documented to hold: unknown ones would be silently empty.
    used = compose.variables_used(compose.SCALE_FILE.read_text())
    assert used <= ENV_FILE_VARIABLES, used


def test_the_bot_services_split_the_shards_and_share_the_database(tmp_path: Path) -> None:
    envs = service_environments(password="s3cret")
    configs = [
        load_config(
            {**envs[name], "DISCORD_TOKEN": TOKEN, "DATA_DIR": str(tmp_path)}, dotenv_path=None
        )
        for name in BOT_SERVICES
    ]
    (shard_count,) = {config.shard_count for config in configs}
    assert shard_count is not None
    owned = sorted(shard for config in configs for shard in config.shard_ids or ())
    assert owned == list(range(shard_count))  # every shard, exactly once
    (url,) = {envs[name]["DATABASE_URL"] for name in BOT_SERVICES}
    database = envs[DATABASE_SERVICE]
    parsed = yarl.URL(url)
    assert parsed.host == DATABASE_SERVICE and parsed.port == 5432
    assert parsed.user == database["POSTGRES_USER"]
    assert parsed.password == database["POSTGRES_PASSWORD"] == "s3cret"
    assert parsed.path == "/" + database["POSTGRES_DB"]


def test_interpolation_is_compose_s_and_strict() -> None:
    variables = {"SET": "x", "EMPTY": ""}
    assert (
        compose.interpolate("a$${SET}-${SET}-${EMPTY:-d}-${EMPTY-d}", variables) == "a${SET}-x-d-"
    )
    with pytest.raises(ValueError, match="MISSING is required: say so"):
        compose.interpolate("${MISSING:?say so}", variables)
    with pytest.raises(ValueError, match="unsupported"):
        compose.interpolate("$SET", variables)


# -- the run (container) --------------------------------------------------------------------


@dataclass
class Service:
    """One bot service as a running container."""

    name: str  # the compose service
    container: str
    env: dict[str, str]
    shards: list[int]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['METRICS_PORT']}/metrics"


def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


async def compose_database(cluster: PostgresCluster, user: str, name: str, password: str) -> str:
    """The file's database on the cluster: `user` with `password`, required from 127.0.0.1 for
    it (the cluster trusts every other connection); its URL."""
    cluster.psql(f"DO $$ BEGIN CREATE ROLE {user} LOGIN; EXCEPTION WHEN duplicate_object "
                 f"THEN NULL; END $$; ALTER ROLE {user} PASSWORD '{password}'")  # fmt: skip
    cluster.psql(f"CREATE DATABASE {name} OWNER {user}")
    hba = cluster.data / "pg_hba.conf"
    rule = f"host {name} {user} 127.0.0.1/32 scram-sha-256\n"
    hba.write_text(rule + hba.read_text())
    cluster.psql("SELECT pg_reload_conf()")
    url = yarl.URL.build(
        scheme="postgresql", user=user, password=password, host="127.0.0.1",
        port=cluster.port, path=f"/{name}",
    )  # fmt: skip
    # The reload is asynchronous: wait until a wrong password is refused.
    for _ in range(100):
        try:
            connection = await asyncpg.connect(str(url.with_password("wrong")))
        except asyncpg.InvalidPasswordError:
            break
        await connection.close()
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the cluster still accepts a wrong password")
    return str(url)


@contextlib.asynccontextmanager
async def running(podman: Podman, image: Image, services: list[Service]) -> AsyncIterator[None]:
    """The services' containers, detached on the host network; always removed."""
    try:
        for service in services:
            settings = [arg for item in service.env.items() for arg in ("-e", "=".join(item))]
            code, _, err = await podman.arun(
                "run", "--detach", "--name", service.container, "--network", "host",
                *settings, image.tag,
            )  # fmt: skip
            assert code == 0, err
        yield
    finally:
        for service in services:
            await podman.arun("rm", "--force", "--time", "0", service.container)


async def logs(podman: Podman, service: Service) -> str:
    _, out, err = await podman.arun("logs", service.container)
    return out + err


def hug_counts(metrics: str) -> dict[int, float]:
    counts = {}
    for line in metrics.splitlines():
        if line.startswith('nekocord_commands_total{command="hug",outcome="ok",shard="'):
            labels, value = line.rsplit(" ", 1)
            counts[int(labels.split('shard="')[1].split('"')[0])] = float(value)
    return counts


async def scrape_until_counted(service: Service, timeout: float = 10) -> str:
    """The service's /metrics once it counts one /hug on each of its shards and none on
    others. The counter moves as the command's task ends, just after the answer is sent."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(service.metrics_url) as response:
                assert response.status == 200
                metrics = await response.text()
            counts = hug_counts(metrics)
            if counts == {shard: 1.0 for shard in service.shards}:
                return metrics
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{service.name}: /hug per shard {counts}\n{metrics}")
            await asyncio.sleep(0.1)


@pytest.mark.container
@pytest.mark.timeout(150, func_only=True)  # the image is built (or reused) in the fixture
async def test_the_scaled_deployment_runs(
    podman: Podman, image: Image, pg_cluster: PostgresCluster
) -> None:
    password = secrets.token_hex(12)
    envs = service_environments(password)
    compose_url = yarl.URL(envs[BOT_SERVICES[0]]["DATABASE_URL"])
    database = envs[DATABASE_SERVICE]
    url = await compose_database(
        pg_cluster, database["POSTGRES_USER"], database["POSTGRES_DB"], password
    )
    assert yarl.URL(url).with_host(DATABASE_SERVICE).with_port(5432) == compose_url
    shard_count = int(envs[BOT_SERVICES[0]]["SHARD_COUNT"])

    async with (
        FakeDiscord(
            token=TOKEN, guild_count=2 * shard_count, shard_count=shard_count,
            max_concurrency=MAX_CONCURRENCY,
        ) as fake,
        FakeNekos() as nekos,
    ):  # fmt: skip
        services = []
        for name, port in zip(BOT_SERVICES, free_ports(len(BOT_SERVICES)), strict=True):
            stand_ins = bot_env(fake, nekos, Path("/data"))
            env = {**stand_ins, **envs[name], "DATABASE_URL": url, "METRICS_PORT": str(port)}
            # Only the database's address and the metrics port differ from the file.
            assert {k for k in envs[name] if env[k] != envs[name][k]} <= {
                "DATABASE_URL",
                "METRICS_PORT",
            }
            config = load_config({**env, "DATA_DIR": "/tmp"}, dotenv_path=None)
            services.append(Service(name, unique(name), env, list(config.shard_ids or ())))

        async with running(podman, image, services):
            await asyncio.gather(
                *(wait_for_log(podman, s.container, "Ready as", timeout=90) for s in services)
            )
            await fake.wait_connected(timeout=30)
            assert fake.ready_shards == set(range(shard_count))
            assert sorted(shard for shard, _ in fake.identify_times) == list(range(shard_count))
            for bucket in range(MAX_CONCURRENCY):
                times = sorted(at for s, at in fake.identify_times if s % MAX_CONCURRENCY == bucket)
                gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
                assert gaps and all(gap >= IDENTIFY_WINDOW for gap in gaps), (bucket, gaps)
            # The owner of shard 0 registers the commands, once; the other does not.
            assert fake.command_puts == 1
            registered = [s.name for s in services if "Registered" in await logs(podman, s)]
            assert registered == [next(s.name for s in services if 0 in s.shards)]

            # A /hug in a server of each shard, answered by the container owning the shard.
            bob = make_user(name="bob")
            guilds = {shard: fake.guilds_of(shard)[0] for shard in range(shard_count)}
            for shard, guild_id in guilds.items():
                record = await fake.interact(fake.slash("hug", {"user": bob}, guild_id=guild_id))
                message = await record.wait_message(timeout=20)
                assert message["embeds"][0]["image"]["url"].startswith(nekos.base_url + "/hug/")
                assert record.shard == shard
            for service in services:
                metrics = await scrape_until_counted(service)
                for shard in service.shards:
                    assert f'nekocord_guilds{{shard="{shard}"}} 2.0' in metrics

            # The counts are in PostgreSQL, read with the file's user and password.
            connection = await asyncpg.connect(url)
            try:
                rows = await connection.fetch(
                    "SELECT guild_id, target_id, count FROM action_counts WHERE action = 'hug'"
                )
            finally:
                await connection.close()
            assert sorted((r["guild_id"], r["target_id"], r["count"]) for r in rows) == sorted(
                (guild_id, int(bob["id"]), 1) for guild_id in guilds.values()
            )

            # `podman stop` (SIGTERM): both exit 0.
            stops = await asyncio.gather(
                *(podman.arun("stop", "--time", "10", s.container) for s in services)
            )
            assert all(code == 0 for code, _, _ in stops), stops
            for service in services:
                _, exit_code, _ = await podman.arun(
                    "inspect", "--format", "{{.State.ExitCode}}", service.container
                )
                output = await logs(podman, service)
                assert exit_code.strip() == "0", output[-3000:]
                assert_json_lines(output, service)


def assert_json_lines(output: str, service: Service) -> None:
    """Every line the container wrote is a JSON log entry; the shards' lines name them; no
    secret appears; it stopped cleanly."""
    entries: list[dict[str, Any]] = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{service.name}: not a JSON line: {line!r}") from None
        assert isinstance(entry, dict) and {"level", "message", "shard"} <= set(entry), line
        entries.append(entry)
    assert {e["shard"] for e in entries} - {None} == set(service.shards)
    assert any(e["message"] == "Stopped cleanly" for e in entries)
    password = yarl.URL(service.env["DATABASE_URL"]).password
    assert password and password not in output
    assert TOKEN not in output

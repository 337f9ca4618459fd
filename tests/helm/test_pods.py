"""The chart's own pods, run without a cluster: the 3-pod value set is rendered, the
StatefulSet's container env is taken exactly as rendered, and what Kubernetes would fill in
is filled in (POD_INDEX 0-2 from the pod-index label, each pod's IP, the host names
nekocord-0…2, the Secret's values, the emptyDir at DATA_DIR). Three real `python -m bot`
processes then run with it against a PostgreSQL and the sharded Discord stand-in: every shard
connected exactly once, one registration, /readyz 200 on each pod, a /hug in a server of each
pod's range answered by that pod, and SIGTERM exits 0 within the rendered grace period.

Rerun alone: `pytest tests/helm/test_pods.py` (about 40 s).
"""

from __future__ import annotations

import asyncio
import base64
import socket
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_probes import get
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, BotProcess
from tests.helm.chart import Manifest, container, one, render, value_set
from tests.helpers import image_url

pytestmark = pytest.mark.timeout(300)

PODS, SHARDS = 3, 12
PER_POD = SHARDS // PODS
READY_TIMEOUT = 150
POD_LABEL = "metadata.labels['apps.kubernetes.io/pod-index']"


def pod_ip(index: int) -> str:
    return f"127.0.1.{index + 1}"  # on Linux all of 127/8 is loopback: one address per pod


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((pod_ip(0), 0))
        return int(probe.getsockname()[1])


def pod_env(manifests: list[Manifest], index: int, data_dir: Path) -> dict[str, str]:
    """The container's env as the kubelet would resolve it for pod `index`."""
    secrets = {
        m["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in m["data"].items()}
        for m in manifests
        if m["kind"] == "Secret"
    }
    bot = container(manifests)
    mounts = {m["mountPath"]: m["name"] for m in bot["volumeMounts"]}
    env: dict[str, str] = {"HOSTNAME": f"nekocord-{index}"}  # the pod's name
    for entry in bot["env"]:
        name, source = entry["name"], entry.get("valueFrom")
        if source is None:
            value = entry["value"]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secrets[ref["name"]][ref["key"]]
        else:
            field = source["fieldRef"]["fieldPath"]
            value = {POD_LABEL: str(index), "status.podIP": pod_ip(index)}[field]
        env[name] = value
    # DATA_DIR is an emptyDir mounted there: here, a fresh directory per pod.
    assert mounts[env["DATA_DIR"]] == "data"
    env["DATA_DIR"] = str(data_dir)
    return env


def hug_count(metrics_text: str, shard: int) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "nekocord_commands_total" and sample.labels == {
                "command": "hug",
                "outcome": "ok",
                "shard": str(shard),
            }:
                return sample.value
    return 0.0


def shards_served(metrics_text: str) -> set[int]:
    """The shards a pod reports servers for (`nekocord_guilds{shard}`)."""
    return {
        int(sample.labels["shard"])
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "nekocord_guilds"
    }


async def wait_hugs(url: str, shard: int, count: float) -> float:
    """The pod's /hug counter for `shard` (it moves as the command's task ends)."""
    for _ in range(100):
        _, text = await get(url)
        if hug_count(text, shard) >= count:
            break
        await asyncio.sleep(0.1)
    return hug_count(text, shard)


async def test_the_charts_three_pods_run_their_shards(
    pg_url: str, nekos: FakeNekos, tmp_path: Path
) -> None:
    port = free_port()
    async with FakeDiscord(
        token=TOKEN, guild_count=2 * SHARDS, shard_count=SHARDS, max_concurrency=4
    ) as fake:
        manifests = render(
            value_set("three-pods"),
            f"discord.token={TOKEN}",
            f"database.url={pg_url}",
            f"metrics.port={port}",
            f"env.DISCORD_API_BASE={fake.rest_url}",
            f"env.DISCORD_GATEWAY_URL={fake.gateway_url}",
            f"env.NEKOS_API_BASE={nekos.base_url}",
            "env.NEKOS_CONTACT=https://example.invalid/nekocord-tests",
        )
        statefulset = one(manifests, "StatefulSet")
        assert statefulset["spec"]["replicas"] == PODS
        grace = statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        pods = []
        for index in range(PODS):
            data_dir = tmp_path / f"nekocord-{index}"
            data_dir.mkdir()
            pods.append(
                BotProcess(
                    env=pod_env(manifests, index, data_dir),
                    log_path=tmp_path / f"nekocord-{index}.log",
                    cwd=data_dir,
                )
            )
        try:
            for pod in pods:
                await pod.start()
            await asyncio.gather(
                *(pod.wait_for_output("Ready as", timeout=READY_TIMEOUT) for pod in pods)
            )
            await fake.wait_connected(timeout=60)
            await check_running_pods(fake, pods, port)
            for pod in pods:
                code, took = await pod.terminate(timeout=grace)
                assert code == 0 and took < grace, pod.output[-2000:]
        finally:
            await asyncio.gather(*(pod.stop() for pod in pods))


async def check_running_pods(fake: FakeDiscord, pods: list[BotProcess], port: int) -> None:
    # Every shard identified exactly once, by the pod whose range it is in.
    assert sorted(shard for shard, _ in fake.identify_times) == list(range(SHARDS))
    assert fake.ready_shards == set(range(SHARDS))
    assert fake.command_puts == 1  # registered once, by pod 0 (it runs shard 0)
    assert "Registered" in pods[0].output
    assert not any("Registered" in pod.output for pod in pods[1:])

    actor, target = make_user(name="actor"), make_user(name="target")
    for index, pod in enumerate(pods):
        first, last = index * PER_POD, index * PER_POD + PER_POD - 1
        head = "\n".join(pod.output.splitlines()[:3])
        assert f"pod {index}, shards {first}-{last} of {SHARDS}" in head, head
        base = f"http://{pod_ip(index)}:{port}"
        assert await get(f"{base}/readyz") == (200, "ok")
        _, text = await get(f"{base}/metrics")
        assert shards_served(text) == set(range(first, last + 1))
        assert (await get(f"{base}/livez"))[0] == 200

        # A /hug in a server of this pod's range: answered, and counted by this pod alone.
        shard = first + 1
        guild = fake.guilds_of(shard)[0]
        record = await fake.interact(
            fake.slash("hug", {"user": target}, user=actor, guild_id=guild)
        )
        message = await record.wait_message(timeout=20)
        assert image_url(message)
        assert await wait_hugs(f"{base}/metrics", shard, 1) == 1
        for other in range(PODS):
            if other != index:
                _, text = await get(f"http://{pod_ip(other)}:{port}/metrics")
                assert hug_count(text, shard) == 0

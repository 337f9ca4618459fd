"""METRICS_PORT end to end: `/metrics` and `/healthz` scraped over HTTP from the running bot,
and a port that cannot be bound."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from tests.e2e.test_process import run_bot_sync
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, RunningBot, running_bot
from tests.helpers import buttons, is_ephemeral

ALICE = make_user(name="alice", global_name="Alice")
BOB = make_user(name="bob", global_name="Bob")
CAROL = make_user(name="carol", global_name="Carol")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape_until(
    running: RunningBot, ready: Callable[[Samples], bool], timeout: float = 10
) -> Samples:
    """Scrape /metrics until `ready` holds (a command is counted when its task has ended,
    just after its answer reached Discord)."""
    url = f"{base_url(running)}/metrics"
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, text = await get(url)
        assert status == 200
        samples = parse(text)
        if ready(samples) or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.05)


def base_url(running: RunningBot) -> str:
    metrics = running.bot.tree.on_finished.__self__  # type: ignore[union-attr]
    assert isinstance(metrics, Metrics) and metrics.port
    return f"http://127.0.0.1:{metrics.port}"


def commands(samples: Samples, command: str, outcome: str) -> float:
    labels = (("command", command), ("outcome", outcome), ("shard", "0"))
    return samples.get(("nekocord_commands_total", labels), 0.0)


async def send(discord_api: FakeDiscord, interaction: dict[str, Any]) -> dict[str, Any]:
    handle = await discord_api.interact(interaction)
    return await handle.wait_message(timeout=20)


async def test_metrics_and_health_over_http(
    discord_api: FakeDiscord, nekos: FakeNekos, data_dir: Path
) -> None:
    async with running_bot(
        discord_api, nekos, data_dir, METRICS_PORT="0", COOLDOWN="1/60"
    ) as running:
        status, body = await get(f"{base_url(running)}/healthz")
        assert (status, body.strip()) == (200, "ok")

        hugged = await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
        assert not is_ephemeral(hugged)
        refused = await send(discord_api, discord_api.slash("hug", {"user": BOB}, user=ALICE))
        assert is_ephemeral(refused)  # the cooldown
        back = next(b for b in buttons(hugged) if b["label"] == "Hug back")
        pressed = await send(
            discord_api, discord_api.component(back["custom_id"], hugged, user=BOB)
        )
        assert not is_ephemeral(pressed)
        nekos.fail(500)
        failed = await send(discord_api, discord_api.slash("wave", user=CAROL))  # not pre-warmed
        assert is_ephemeral(failed)
        nekos.heal()

        samples = await scrape_until(
            running,
            lambda s: commands(s, "wave", "upstream") and commands(s, "button:return", "ok"),
        )
        assert commands(samples, "hug", "ok") == 1
        assert commands(samples, "hug", "refused") == 1
        assert commands(samples, "button:return", "ok") == 1
        assert commands(samples, "wave", "upstream") == 1
        assert commands(samples, "wave", "ok") == 0
        assert samples[("nekocord_command_seconds_count", (("shard", "0"),))] == 4
        assert 0 < samples[("nekocord_command_seconds_sum", (("shard", "0"),))] < 30

        requests = {
            labels: value
            for (name, labels), value in samples.items()
            if name == "nekocord_nekos_requests_total"
        }
        wave_500 = (("endpoint", "category:wave"), ("status", "500"))
        assert requests[wave_500] == len(nekos.requests_to("/wave"))
        assert requests[(("endpoint", "category:hug"), ("status", "200"))] >= 1
        assert samples[("nekocord_pool_takes_total", (("result", "hit"),))] >= 1
        assert samples[("nekocord_pool_takes_total", (("result", "miss"),))] >= 1  # /wave
        assert samples[("nekocord_store_errors_total", ())] == 0
        assert samples[("nekocord_guilds", (("shard", "0"),))] == len(discord_api.guild_ids)
        samples = await scrape_until(
            running, lambda s: ("nekocord_gateway_latency_seconds", (("shard", "0"),)) in s
        )
        assert 0 <= samples[("nekocord_gateway_latency_seconds", (("shard", "0"),))] < 5


async def test_health_is_503_without_a_connected_gateway() -> None:
    metrics = Metrics()
    port = await metrics.start("127.0.0.1", 0)
    try:
        status, _ = await get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503  # no bot yet: not connected
        status, text = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        names = {name for name, _ in parse(text)}
        assert "nekocord_store_errors_total" not in names  # read from the bot, once there is one
        assert "nekocord_command_seconds_count" not in names  # per shard: none without a bot
    finally:
        await metrics.stop()


def test_a_busy_metrics_port_exits_2_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"DISCORD_TOKEN": TOKEN, "DATA_DIR": str(tmp_path), "METRICS_PORT": str(port)}
        result = run_bot_sync(env, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == f"nekocord: METRICS_PORT: cannot listen on 127.0.0.1:{port}: " + (
        os.strerror(errno.EADDRINUSE)
    )
    assert "Traceback" not in result.stderr + result.stdout

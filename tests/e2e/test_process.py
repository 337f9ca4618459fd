"""`python -m bot` as a process: start-up errors, SIGTERM, secrets in DEBUG logs, health."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.health import check
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import ROOT, TOKEN, bot_env, bot_process

pytestmark = pytest.mark.timeout(90)


def run_bot_sync(
    env: dict[str, str], cwd: Path, timeout: float = 30
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEKOS_"))}
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_missing_token_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_bot_sync({"DATA_DIR": str(tmp_path)}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_an_in_memory_database_is_refused(tmp_path: Path) -> None:
    """Opt-outs must survive a restart: an opted-out member must never be pinged again."""
    env = {"DISCORD_TOKEN": TOKEN, "DATABASE_URL": "sqlite:///:memory:", "DATA_DIR": str(tmp_path)}
    result = run_bot_sync(env, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_malformed_setting_exits_2_naming_it(tmp_path: Path) -> None:
    result = run_bot_sync({"DISCORD_TOKEN": TOKEN, "DEV_GUILD_ID": "nope"}, tmp_path)
    assert result.returncode == 2
    assert "DEV_GUILD_ID" in result.stderr and TOKEN not in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_log_format_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_bot_sync({"DISCORD_TOKEN": TOKEN, "LOG_FORMAT": "xml"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "LOG_FORMAT" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout and TOKEN not in result.stderr


async def test_json_logs_one_object_per_line_without_secrets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with bot_process(
            discord_api, nekos, data, LOG_LEVEL="DEBUG", LOG_FORMAT="json"
        ) as proc:
            await proc.wait_for_output("Ready as", timeout=30)
            handle = await discord_api.interact(discord_api.slash("hug", {"user": make_user()}))
            await handle.wait_message(timeout=15)
            code, _ = await proc.terminate(timeout=10)
            output = proc.output
    assert code == 0, output
    entries = []
    for line in output.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert set(entry) == {"time", "level", "logger", "message", "shard"}, line
        entries.append(entry)
    loggers = {entry["logger"] for entry in entries}
    assert any(name.startswith("discord.") for name in loggers), loggers
    assert any(entry["message"].startswith("Ready as") for entry in entries)
    assert any(entry["message"] == "Stopped cleanly" for entry in entries)
    assert all(entry["shard"] is None or isinstance(entry["shard"], int) for entry in entries)
    assert TOKEN not in output and handle.token not in output
    assert "[redacted]" in output  # DEBUG logging did include the redacted places


async def test_rejected_token_exits_2(tmp_path: Path) -> None:
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        env = bot_env(discord_api, nekos, tmp_path / "data")
        env["DISCORD_TOKEN"] = TOKEN[:-4] + "XXXX"
        async with bot_process(discord_api, nekos, tmp_path / "data", **env) as proc:
            code = await proc.wait(timeout=30)
            output = proc.output
    assert code == 2, output
    assert "Discord rejected DISCORD_TOKEN" in output
    assert "Traceback" not in output
    assert env["DISCORD_TOKEN"] not in output


async def test_sigterm_debug_logs_and_health(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with bot_process(discord_api, nekos, data, LOG_LEVEL="DEBUG") as proc:
            await proc.wait_for_output("Ready as", timeout=30)
            assert "Registered" in proc.output and "commands" in proc.output
            assert "oauth2/authorize" in proc.output  # the invite URL is logged
            tokens = []
            for name in ("hug", "pat", "neko", "wave"):
                handle = await discord_api.interact(
                    discord_api.slash(name, {"user": make_user()} if name != "neko" else None)
                )
                tokens.append(handle.token)
                await handle.wait_message(timeout=15)
            healthy, why = check(data)
            assert healthy, why
            # An interaction in flight when SIGTERM arrives still gets its answer.
            nekos.latency = 1.0
            slow = await discord_api.interact(discord_api.slash("search", {"query": "senko"}))
            tokens.append(slow.token)
            await asyncio.sleep(0.2)
            code, took = await proc.terminate(timeout=10)
            output = proc.output
            assert slow.acknowledged, slow.describe()
    assert code == 0, output
    assert took < 5, took
    assert "Stopped cleanly" in output
    assert TOKEN not in output
    for token in tokens:
        assert token not in output
    assert "[redacted]" in output  # DEBUG logging did include the redacted places
    healthy, why = check(data)
    assert not healthy


async def test_health_command_against_running_and_stopped_bot(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def health() -> subprocess.CompletedProcess:
        env = {**os.environ, "DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
        return subprocess.run(
            [sys.executable, "-m", "bot.health"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            cwd=tmp_path,
        )

    assert health().returncode == 1  # never started
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with bot_process(discord_api, nekos, data) as proc:
            await proc.wait_for_output("Ready as", timeout=30)
            result = await asyncio.to_thread(health)
            assert result.returncode == 0, result.stdout
            code, _ = await proc.terminate()
            assert code == 0
    result = health()
    assert result.returncode == 1 and "not running" in result.stdout


@pytest.mark.timeout(300)
def test_dockerfile_install_step_without_dev_extras(tmp_path: Path) -> None:
    """What the Dockerfile does: install the package (no dev extras) into a fresh environment,
    then import every module and find the bundled data files."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^CMD \["python", "-m", "bot"\]$', dockerfile, re.M)
    # A numeric user (the image's nekocord, uid 10001): Kubernetes' runAsNonRoot checks it.
    assert "HEALTHCHECK" in dockerfile and re.search(r"^USER 10001:10001$", dockerfile, re.M)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, bot.__main__, bot.health, cogs.actions, cogs.images, "
            "cogs.search, cogs.credits, cogs.meta; "
            "from bot import wording; from bot.nekos.catalog import load_snapshot; "
            "assert len(load_snapshot()) >= 63; assert wording.message('help_title'); "
            "assert importlib.util.find_spec('pytest') is None; print('ok')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == "ok", probe.stderr[-2000:]


@pytest.mark.parametrize("problem", ["garbage", "scheme"])
async def test_unusable_database_exits_2_with_one_line(tmp_path: Path, problem: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if problem == "garbage":
        (data / "broken.db").write_bytes(b"this is not a database" * 100)
        url = f"sqlite:///{data / 'broken.db'}"
    else:
        url = "mysql://user:secret@db.invalid/nekocord"  # a scheme no backend serves
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        async with bot_process(discord_api, nekos, data, DATABASE_URL=url) as proc:
            code = await proc.wait(timeout=30)
            output = proc.output
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.startswith("nekocord:")]
    assert len(lines) == 1 and "DATABASE_URL" in lines[0], output
    assert "Traceback" not in output and "secret" not in output


NO_DISCORD = {"DISCORD_API_BASE": "http://127.0.0.1:9", "STARTUP_RETRY_SECONDS": "0"}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SHARD_IDS": "0"}, "SHARD_IDS"),  # without SHARD_COUNT
        ({"SHARD_COUNT": "2", "SHARD_IDS": "2"}, "SHARD_IDS"),  # out of range
        ({"SHARD_COUNT": "2", "SHARD_IDS": "1"}, "SHARD_IDS"),  # a subset on SQLite
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT"),
        # One pod of a StatefulSet (the PostgreSQL URL is never reached: refused before).
        ({"SHARD_COUNT": "4", "SHARDS_PER_POD": "2", "HOSTNAME": "nekocord"}, "POD_INDEX"),
        ({"SHARD_COUNT": "6", "SHARDS_PER_POD": "4", "POD_INDEX": "0"}, "SHARDS_PER_POD"),
        ({"SHARD_COUNT": "4", "SHARDS_PER_POD": "2", "POD_INDEX": "2"}, "POD_INDEX"),
        ({"SHARD_COUNT": "4", "SHARDS_PER_POD": "2", "HOSTNAME": "nekocord-2"}, "POD_INDEX"),
        (
            # every shard, so SQLite would do; a Discord that does not answer, at once
            {"SHARD_COUNT": "4", "SHARDS_PER_POD": "2", "SHARD_IDS": "0-3", **NO_DISCORD},
            "SHARD_IDS",
        ),
    ],
)
def test_bad_shard_settings_exit_2_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = run_bot_sync({"DISCORD_TOKEN": TOKEN, "DATA_DIR": str(tmp_path), **env}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nekocord: configuration error: {variable}: ")
    assert "Traceback" not in result.stderr + result.stdout and TOKEN not in result.stderr

"""The command line, as real processes: `python -m bot …` and the installed `nekocord` script
(`[project.scripts]`; `pip install -e .` puts it beside the interpreter).

`--help`, `--version` and mistakes never start the bot; `check-config` prints the settings
without secrets and says what answers (exit 0 / 1 / 2); `nekocord` runs the bot like
`python -m bot`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from bot import __version__
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import ROOT, TOKEN, BotProcess, bot_env
from tests.helpers import answered, image_url
from tests.pg import PostgresCluster

pytestmark = pytest.mark.timeout(90)

SCRIPT = Path(sys.executable).with_name("nekocord")
PYTHON_M_BOT = (sys.executable, "-m", "bot")
COMMANDS = pytest.mark.parametrize(
    "command", [PYTHON_M_BOT, (str(SCRIPT),)], ids=["python-m-bot", "nekocord"]
)
PASSWORD = "s3cret-Pa55word"


@pytest.fixture(autouse=True)
def installed_script() -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} is missing: run `pip install --no-deps -e .`"


async def cli(
    command: tuple[str, ...], *args: str, env: dict[str, str] | None = None, cwd: Path
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `command args…`, with only `env`'s settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEKOS_"))}
    base["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        *command,
        *args,
        env={**base, **(env or {})},
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@COMMANDS
async def test_help_and_version_print_and_exit_0(command: tuple[str, ...], tmp_path: Path) -> None:
    # A complete configuration: the bot would start if the arguments were ignored.
    env = {
        "DISCORD_TOKEN": TOKEN,
        "DATA_DIR": str(tmp_path),
        "DISCORD_API_BASE": "http://0.0.0.0:9",
    }
    for flag in ("--help", "-h"):
        code, out, err = await cli(command, flag, env=env, cwd=tmp_path)
        assert (code, err) == (0, ""), err
        assert out.startswith("usage: ")
        for name in ("run", "migrate-store", "check-config", "--version"):
            assert name in out
    code, out, err = await cli(command, "--version", env=env, cwd=tmp_path)
    assert (code, out, err) == (0, f"nekocord {__version__}\n", "")
    code, out, err = await cli(command, "check-config", "--help", env=env, cwd=tmp_path)
    assert code == 0 and out.startswith("usage: ") and "check-config" in out, out + err
    code, out, _ = await cli(command, "migrate-store", "--help", env=env, cwd=tmp_path)
    assert code == 0 and "--from" in out and "--to" in out, out
    assert not list(tmp_path.iterdir())  # nothing started: no data directory contents


@COMMANDS
@pytest.mark.parametrize(
    "args",
    [("migrate_store",), ("--bogus",), ("run", "--bogus"), ("check-config", "extra"), ("web2",)],
)
async def test_mistakes_exit_2_with_usage(
    command: tuple[str, ...], args: tuple[str, ...], tmp_path: Path
) -> None:
    env = {
        "DISCORD_TOKEN": TOKEN,
        "DATA_DIR": str(tmp_path),
        "DISCORD_API_BASE": "http://0.0.0.0:9",
    }
    code, out, err = await cli(command, *args, env=env, cwd=tmp_path)
    assert code == 2 and out == "", out
    assert err.startswith("usage: ") and "error:" in err, err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())


async def test_migrate_store_keeps_its_refusals(tmp_path: Path) -> None:
    code, out, err = await cli(
        PYTHON_M_BOT, "migrate-store", "--from", "x.db", "--to", "sqlite:///y.db", cwd=tmp_path
    )
    assert (code, out) == (2, "")
    assert err == "nekocord migrate-store: --to must be a PostgreSQL URL: " + (
        "postgresql://user:password@host/db\n"
    )
    code, _, err = await cli(
        PYTHON_M_BOT, "migrate-store", "--to", "postgresql://h/d", cwd=tmp_path
    )
    assert code == 2 and "--from" in err and err.startswith("usage: ")


def check_env(
    discord_api: FakeDiscord, nekos: FakeNekos, data_dir: Path, **extra: str
) -> dict[str, str]:
    return bot_env(discord_api, nekos, data_dir, **extra)


@COMMANDS
async def test_check_config_all_good_and_secrets_redacted(
    command: tuple[str, ...],
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    pg_cluster: PostgresCluster,
    tmp_path: Path,
) -> None:
    database = pg_cluster.create_database()
    url = database.replace("postgresql://nekocord@", f"postgresql://nekocord:{PASSWORD}@")
    assert PASSWORD in url, url
    env = check_env(discord_api, nekos, tmp_path / "data", DATABASE_URL=url, LOG_LEVEL="debug")
    code, out, err = await cli(command, "check-config", env=env, cwd=tmp_path)
    assert (code, err) == (0, ""), out + err
    assert TOKEN not in out and PASSWORD not in out
    lines = out.splitlines()
    assert lines[0] == f"nekocord {__version__}: settings as the bot reads them"
    setting = {line.split()[0]: " ".join(line.split()[1:]) for line in lines[1:] if "  " in line}
    assert setting["DISCORD_TOKEN"] == "[redacted]"
    assert setting["DATABASE_URL"].startswith("postgresql://[redacted]@127.0.0.1:")
    assert setting["LOG_LEVEL"] == "debug"  # as written
    assert setting["DEV_GUILD_ID"] == "(unset)"
    assert setting["CATEGORY_REFRESH_HOURS"] == "6 (default)"
    assert setting["DISCORD_API_BASE"] == discord_api.rest_url
    assert setting["database"].startswith("ok (PostgreSQL at 127.0.0.1:")
    assert setting["Discord"].startswith("ok (")
    assert setting["nekos.best"].startswith("ok (") and "categories" in setting["nekos.best"]
    assert lines[-1] == "all good"
    # It asked Discord with the token, and nekos.best with the bot's User-Agent.
    asked = discord_api.requests_to("GET", r"^/gateway/bot$")
    assert asked and asked[-1].headers["Authorization"] == f"Bot {TOKEN}"
    # Nothing was written: no data directory, no tables in the database.
    assert not (tmp_path / "data").exists()
    assert (
        pg_cluster.psql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database.rsplit("/", 1)[1]
        ).strip()
        == "0"
    )


async def test_check_config_exit_1_when_something_is_unreachable(
    discord_api: FakeDiscord, nekos: FakeNekos, tmp_path: Path
) -> None:
    env = check_env(discord_api, nekos, tmp_path / "data")
    await nekos.stop()
    code, out, err = await cli(PYTHON_M_BOT, "check-config", env=env, cwd=tmp_path)
    assert code == 1, out + err
    assert "  nekos.best  nekos.best did not answer" in out
    assert "  Discord     ok (" in out and "  database    ok (SQLite " in out
    assert out.splitlines()[-1] == "something is unreachable"

    closed = check_env(
        discord_api,
        nekos,
        tmp_path / "data",
        DATABASE_URL=(f"postgresql://nekocord:{PASSWORD}@127.0.0.1:9/nekocord"),
    )
    code, out, _ = await cli(PYTHON_M_BOT, "check-config", env=closed, cwd=tmp_path)
    assert code == 1 and "  database    PostgreSQL at 127.0.0.1:9/nekocord is not reachable" in out
    assert PASSWORD not in out


async def test_check_config_exit_2_for_invalid_settings(
    discord_api: FakeDiscord, nekos: FakeNekos, tmp_path: Path
) -> None:
    wrong_token = TOKEN[:-4] + "XXXX"
    env = check_env(discord_api, nekos, tmp_path / "data", DISCORD_TOKEN=wrong_token)
    code, out, err = await cli(PYTHON_M_BOT, "check-config", env=env, cwd=tmp_path)
    assert code == 2, out + err
    assert "  Discord     Discord rejected DISCORD_TOKEN (401)" in out
    assert wrong_token not in out + err
    assert out.splitlines()[-1] == "a setting is invalid"

    env = check_env(discord_api, nekos, tmp_path / "data", SHARD_IDS="0-1")
    code, out, err = await cli(PYTHON_M_BOT, "check-config", env=env, cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err.startswith("nekocord check-config: configuration error: SHARD_IDS:"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


class ScriptProcess(BotProcess):
    """The bot as the installed script runs it (`nekocord run`, the package as installed:
    no PYTHONPATH), instead of `python -m bot`."""

    async def start(self) -> BotProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEKOS_"))}
        env.pop("PYTHONPATH", None)
        env.update(self.env)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._offset = self._log_file.tell()
        self.started_at = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "run",
            cwd=self.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )
        return self


async def test_the_nekocord_script_runs_the_bot(
    discord_api: FakeDiscord, nekos: FakeNekos, data_dir: Path
) -> None:
    data_dir.mkdir(parents=True)
    proc = ScriptProcess(
        env=bot_env(discord_api, nekos, data_dir), log_path=data_dir / "bot.log", cwd=data_dir
    )
    try:
        await proc.start()
        await proc.wait_for_output("Ready as", timeout=30)
        record = await discord_api.interact(discord_api.slash("hug", {"user": make_user()}))
        assert image_url(await answered(record))
        code, _ = await proc.terminate(timeout=10)
    finally:
        await proc.stop()
    assert code == 0, proc.output
    assert "Stopped cleanly" in proc.output

"""Configuration: validation, defaults, and docs kept true to the code."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from bot.config import (
    SETTINGS,
    Config,
    ConfigError,
    data_dir_setting,
    load_config,
)
from bot.config_docs import env_example, readme_table
from bot.cooldown import Rate
from bot.urls import url_credentials, without_credentials

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "MTAxMDEwMTAxMDEwMTAxMDEw.GabcDE.abcdefghijklmnopqrstuvwxyz012345"


def load(**env: str):
    return load_config({"DISCORD_TOKEN": TOKEN, **env}, dotenv_path=None)


def test_defaults() -> None:
    config = load()
    assert config.nekos_api_base == "https://nekos.best/api/v2"
    assert config.discord_api_base == "https://discord.com/api/v10"
    assert config.data_dir == Path("data")
    assert config.database_url == f"sqlite:///{Path('data') / 'nekocord.db'}"
    assert config.context_menu_actions == ("hug", "pat", "cuddle", "kiss", "poke")
    assert config.dev_guild_id is None
    assert TOKEN not in repr(config)


URL = "must be a http or https URL"


RATE = "must be N/S (N uses per S seconds, e.g. 10/20) or 0 for no limit"
POOL_SIZE = "must be a number of connections from 1 to 100"
IN_MEMORY = (
    "an in-memory database would forget opt-outs at every restart: "
    "name a file (sqlite:///path/to/nekocord.db)"
)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DISCORD_TOKEN": ""}, "DISCORD_TOKEN: is not set (copy it from the developer portal)"),
        ({"DISCORD_TOKEN": "short"}, "DISCORD_TOKEN: does not look like a bot token"),
        (
            {"DEV_GUILD_ID": "abc"},
            "DEV_GUILD_ID: must be a server ID (a number of 15-21 digits)",
        ),
        ({"NEKOS_API_BASE": "ftp://x"}, f"NEKOS_API_BASE: {URL}"),
        ({"NEKOS_API_BASE": "http://x:port"}, "NEKOS_API_BASE: is not a valid URL"),
        ({"DISCORD_API_BASE": "not a url"}, f"DISCORD_API_BASE: {URL}"),
        ({"DISCORD_GATEWAY_URL": "https://x"}, "DISCORD_GATEWAY_URL: must be a ws or wss URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (
            {"CONTEXT_MENU_ACTIONS": "a,b,c,d,e,f"},
            "CONTEXT_MENU_ACTIONS: must be up to 5 category names separated by commas",
        ),
        (
            {"CONTEXT_MENU_ACTIONS": "hug,Not A Name"},
            "CONTEXT_MENU_ACTIONS: must be up to 5 category names separated by commas",
        ),
        (
            {"CATEGORY_REFRESH_HOURS": "soon"},
            "CATEGORY_REFRESH_HOURS: must be a number of hours between 0.01 and 168",
        ),
        (
            {"CATEGORY_REFRESH_HOURS": "nan"},
            "CATEGORY_REFRESH_HOURS: must be a number of hours between 0.01 and 168",
        ),
        (
            {"NEKOS_CONTACT": "me (you)"},
            "NEKOS_CONTACT: must be one line without parentheses, at most 200 characters",
        ),
        *(
            ({variable: value}, f"{variable}: {RATE}")
            for variable in ("COOLDOWN", "SEARCH_COOLDOWN")
            for value in ("10", "10/", "/20", "0/20", "10/0", "ten/20", "10/20s", "-1/5", "1.5/3")
        ),
        (
            {"DISCORD_API_BASE": "https://user:pass@proxy.example/api/v10"},
            "DISCORD_API_BASE: must not contain a user name or password",
        ),
        (
            {"STARTUP_RETRY_SECONDS": "forever"},
            "STARTUP_RETRY_SECONDS: must be a number of seconds between 0 and 3600",
        ),
        (
            {"DATABASE_URL": "postgresql://u:pw-secret@db:port/nekocord"},
            "DATABASE_URL: is not a valid PostgreSQL URL",
        ),
        (
            {"DATABASE_URL": "postgres://u:pw-secret@/nekocord"},
            "DATABASE_URL: must name a host: postgresql://user:password@host:5432/database",
        ),
        *(
            ({"DATABASE_POOL_SIZE": size}, f"DATABASE_POOL_SIZE: {POOL_SIZE}")
            for size in ("0", "101", "-1", "ten", "2.5")
        ),
        *(
            ({"DATABASE_URL": url}, f"DATABASE_URL: {IN_MEMORY}")
            for url in (
                ":memory:",
                "sqlite:///:memory:",
                "sqlite:///:MEMORY:?mode=rwc",
                "sqlite://",
            )
        ),
    ],
)
def test_bad_values_name_the_variable_and_never_the_token(env: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"DISCORD_TOKEN": TOKEN, **env}, dotenv_path=None)
    assert str(caught.value) == message
    assert caught.value.variable == message.split(":")[0]
    assert TOKEN not in str(caught.value)


def test_url_credentials_are_secrets_and_never_shown() -> None:
    config = load(
        NEKOS_API_BASE="http://neko:p%40ss-word@proxy.example:8080/api/v2",
        DATABASE_URL="sqlite:///data/nekocord.db",
    )
    secrets = config.secrets()
    assert TOKEN in secrets
    for secret in ("p%40ss-word", "p@ss-word", "neko:p@ss-word", "bmVrbzpwQHNzLXdvcmQ="):
        assert secret in secrets, secret
    assert without_credentials(config.nekos_api_base) == "http://proxy.example:8080/api/v2"
    assert url_credentials("https://nekos.best/api/v2") == []
    # A database user alone is no secret (else every "nekocord" in the logs were redacted);
    # over HTTP a bare userinfo may be a token.
    assert url_credentials("postgresql://nekocord@127.0.0.1:5432/db") == []
    assert "token123" in url_credentials("https://token123@proxy.example/api")


def test_postgres_urls_and_their_passwords() -> None:
    for url in (
        "postgresql://nekocord:p%40ss-word@db.example:5432/nekocord",
        "postgres://nekocord:p%40ss-word@db.example/nekocord",
        "postgresql:///nekocord?host=/run/postgresql&password=p%40ss-word",
    ):
        config = load(DATABASE_URL=url, DATABASE_POOL_SIZE="25")
        assert config.database_url == url
        assert config.database_pool_size == 25
        assert "p@ss-word" in config.secrets() and "p%40ss-word" in config.secrets(), url
    assert load().database_pool_size == 10


def test_cooldowns_and_retry_are_parsed() -> None:
    config = load()
    assert config.cooldown == Rate(10, 20.0)
    assert config.search_cooldown == Rate(3, 15.0)
    assert config.startup_retry_seconds == 60.0
    config = load(COOLDOWN="0", SEARCH_COOLDOWN=" 5/60 ", STARTUP_RETRY_SECONDS="0")
    assert config.cooldown is None
    assert config.search_cooldown == Rate(5, 60.0)
    assert config.startup_retry_seconds == 0.0


def test_values_are_parsed_into_their_fields() -> None:
    config = load(
        DEV_GUILD_ID=" 123456789012345678 ",
        NEKOS_API_BASE="http://127.0.0.1:8080/api/",
        DISCORD_GATEWAY_URL="ws://127.0.0.1:9000/",
        DATA_DIR="/srv/neko",
        LOG_LEVEL="debug",
        CONTEXT_MENU_ACTIONS=" Hug, pat,hug ,,poke",
        CATEGORY_REFRESH_HOURS="0.5",
        NEKOS_CONTACT="ops@example.org",
    )
    assert config.dev_guild_id == 123456789012345678
    assert config.nekos_api_base == "http://127.0.0.1:8080/api"
    assert config.discord_gateway_url == "ws://127.0.0.1:9000/"
    assert config.data_dir == Path("/srv/neko")
    assert config.database_url == f"sqlite:///{Path('/srv/neko') / 'nekocord.db'}"
    assert config.log_level == "DEBUG"
    assert config.context_menu_actions == ("hug", "pat", "poke")
    assert config.category_refresh_seconds == 1800.0
    assert config.nekos_contact == "ops@example.org"
    assert load(DATABASE_URL="sqlite:///elsewhere.db").database_url == "sqlite:///elsewhere.db"


def test_data_dir_alone_needs_no_token(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DATA_DIR=/from/dotenv\nDISCORD_TOKEN=short\n")
    assert data_dir_setting({}, dotenv_path=dotenv) == Path("/from/dotenv")
    assert data_dir_setting({"DATA_DIR": " "}, dotenv_path=None) == Path("data")


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"DISCORD_TOKEN={TOKEN}\nLOG_LEVEL=debug\nDEV_GUILD_ID=123456789012345678\n")
    config = load_config({"LOG_LEVEL": "WARNING"}, dotenv_path=dotenv)
    assert config.discord_token == TOKEN
    assert config.log_level == "WARNING"
    assert config.dev_guild_id == 123456789012345678


def test_readme_table_and_env_example_are_rendered_from_the_settings() -> None:
    """Both files say exactly what `Config` declares; regenerate them after changing a setting:
    `python -m bot.config_docs env-example > .env.example`, and paste `python -m bot.config_docs
    readme-table` over README's table."""
    readme = (ROOT / "README.md").read_text()
    assert readme_table() in readme
    assert (ROOT / ".env.example").read_text() == env_example()
    documented = re.findall(r"^\|\s*`([A-Z_]+)`", readme, flags=re.M)
    assert documented == [s.name for s in SETTINGS]


def test_env_example_loads_to_the_defaults(tmp_path: Path) -> None:
    """`.env.example` with only the token filled in is a valid configuration equal to the
    defaults, and each commented-out line shows the value used when it is left out."""
    example = env_example().replace("\nDISCORD_TOKEN=\n", f"\nDISCORD_TOKEN={TOKEN}\n")
    uncommented = re.sub(r"^# ([A-Z_]+=)", r"\1", example, flags=re.M)
    for text in (example, uncommented):
        dotenv = tmp_path / ".env"
        dotenv.write_text(text)
        assert load_config({}, dotenv_path=dotenv) == load()


def test_every_config_field_is_one_setting_with_its_own_variable() -> None:
    names = [s.name for s in SETTINGS]
    assert len(set(names)) == len(names) == len(fields(Config))
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", name) for name in names)


def test_readme_invite_link_asks_for_exactly_the_permissions_the_bot_uses() -> None:
    from bot.app import INVITE_PERMISSIONS

    readme = (ROOT / "README.md").read_text()
    assert f"permissions={INVITE_PERMISSIONS.value}" in readme


# -- shards ------------------------------------------------------------------------------------

PG_URL = "postgresql://nekocord@db.example/nekocord"


@pytest.mark.parametrize(
    ("env", "count", "ids"),
    [
        ({}, None, None),
        ({"SHARD_COUNT": "4"}, 4, None),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "1-2", "DATABASE_URL": PG_URL}, 4, (1, 2)),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "3, 0,3", "DATABASE_URL": PG_URL}, 4, (0, 3)),
        ({"SHARD_COUNT": "3", "SHARD_IDS": "1", "DATABASE_URL": PG_URL}, 3, (1,)),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0-1"}, 2, (0, 1)),  # all of them: SQLite is fine
        ({"SHARD_COUNT": "1", "SHARD_IDS": "0"}, 1, (0,)),
        (
            {"SHARD_COUNT": "2", "SHARD_IDS": "1", "DATABASE_URL": "postgres://h/nekocord"},
            2,
            (1,),
        ),
    ],
)
def test_shard_settings(env: dict[str, str], count: int | None, ids: tuple | None) -> None:
    config = load(**env)
    assert (config.shard_count, config.shard_ids) == (count, ids)


SHARD_SHAPE = "SHARD_IDS: must be shard ids as a-b, a,b,c or a single number (from 0)"
SUBSET_ON_SQLITE = (
    "SHARD_IDS: running some of the shards needs a PostgreSQL DATABASE_URL shared by every "
    "process (SQLite belongs to one process)"
)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT: must be a whole number of shards from 1"),
        ({"SHARD_COUNT": "two"}, "SHARD_COUNT: must be a whole number of shards from 1"),
        ({"SHARD_COUNT": "-1"}, "SHARD_COUNT: must be a whole number of shards from 1"),
        ({"SHARD_IDS": "0"}, "SHARD_IDS: needs SHARD_COUNT (the total number of shards)"),
        ({"SHARD_COUNT": "3", "SHARD_IDS": "x"}, SHARD_SHAPE),
        ({"SHARD_COUNT": "3", "SHARD_IDS": "-1"}, SHARD_SHAPE),
        ({"SHARD_COUNT": "3", "SHARD_IDS": "1-"}, SHARD_SHAPE),
        ({"SHARD_COUNT": "3", "SHARD_IDS": "0,,1"}, SHARD_SHAPE),
        (
            {"SHARD_COUNT": "3", "SHARD_IDS": "2-1"},
            f"{SHARD_SHAPE}; a range goes from the lower id to the higher",
        ),
        (
            {"SHARD_COUNT": "3", "SHARD_IDS": "1-3", "DATABASE_URL": PG_URL},
            "SHARD_IDS: shard ids go from 0 to 2 (SHARD_COUNT=3)",
        ),
        ({"SHARD_COUNT": "3", "SHARD_IDS": "1"}, SUBSET_ON_SQLITE),
        ({"SHARD_COUNT": "3", "SHARD_IDS": "0,1", "DATABASE_URL": "/srv/x.db"}, SUBSET_ON_SQLITE),
    ],
)
def test_bad_shard_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(**env)
    assert str(caught.value) == message


# -- one pod of a StatefulSet: SHARDS_PER_POD, POD_INDEX ----------------------------------------

POD = {"SHARD_COUNT": "12", "SHARDS_PER_POD": "4", "DATABASE_URL": PG_URL}


@pytest.mark.parametrize(
    ("env", "ids", "index"),
    [
        ({**POD, "POD_INDEX": "0"}, (0, 1, 2, 3), 0),
        ({**POD, "POD_INDEX": "2"}, (8, 9, 10, 11), 2),
        ({**POD, "HOSTNAME": "nekocord-1"}, (4, 5, 6, 7), 1),  # a StatefulSet pod's name
        ({**POD, "HOSTNAME": "my-bot-nekocord-2"}, (8, 9, 10, 11), 2),  # the last -N
        ({**POD, "HOSTNAME": "nekocord-7", "POD_INDEX": "1"}, (4, 5, 6, 7), 1),  # POD_INDEX wins
        # one pod with every shard: SQLite is fine
        ({"SHARD_COUNT": "3", "SHARDS_PER_POD": "3", "POD_INDEX": "0"}, (0, 1, 2), 0),
    ],
)
def test_a_pod_runs_its_range_of_shards(env: dict[str, str], ids: tuple, index: int) -> None:
    config = load(**env)
    assert (config.shard_count, config.shard_ids, config.pod_index) == (
        int(env["SHARD_COUNT"]),
        ids,
        index,
    )
    assert config.shards_per_pod == len(ids)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {**POD, "HOSTNAME": "nekocord"},
            "POD_INDEX: is not set and the host name 'nekocord' does not end in -N "
            "(a StatefulSet pod's index)",
        ),
        (
            {**POD, "SHARD_COUNT": "10", "POD_INDEX": "0"},
            "SHARDS_PER_POD: SHARD_COUNT=10 is not a multiple of SHARDS_PER_POD=4",
        ),
        (
            {**POD, "POD_INDEX": "3"},
            "POD_INDEX: pod 3 is past the last of 3 pods (SHARD_COUNT=12, SHARDS_PER_POD=4: "
            "indexes 0 to 2)",
        ),
        (
            {**POD, "HOSTNAME": "nekocord-3"},
            "POD_INDEX: pod 3 is past the last of 3 pods (SHARD_COUNT=12, SHARDS_PER_POD=4: "
            "indexes 0 to 2)",
        ),
        (
            {**POD, "POD_INDEX": "0", "SHARD_IDS": "0-3"},
            "SHARD_IDS: give SHARD_IDS or SHARDS_PER_POD, not both (a pod's index picks its "
            "shards)",
        ),
        (
            {"SHARDS_PER_POD": "4", "POD_INDEX": "0"},
            "SHARDS_PER_POD: needs SHARD_COUNT (the total number of shards)",
        ),
        (
            {"SHARD_COUNT": "4", "POD_INDEX": "1"},
            "POD_INDEX: needs SHARDS_PER_POD (shards per pod)",
        ),
        (
            {**POD, "POD_INDEX": "-1"},
            "POD_INDEX: must be a whole number from 0 (the pod's ordinal)",
        ),
        ({**POD, "SHARDS_PER_POD": "0"}, "SHARDS_PER_POD: must be a whole number of shards from 1"),
        (
            {"SHARD_COUNT": "4", "SHARDS_PER_POD": "2", "POD_INDEX": "1"},
            SUBSET_ON_SQLITE.replace("SHARD_IDS", "SHARDS_PER_POD"),
        ),
    ],
)
def test_bad_pod_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(**env)
    assert str(caught.value) == message

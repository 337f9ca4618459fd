"""Configuration: validation, defaults, and docs kept true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import SETTINGS, ConfigError, load_config

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


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DISCORD_TOKEN": ""}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": "short"}, "DISCORD_TOKEN"),
        ({"DEV_GUILD_ID": "abc"}, "DEV_GUILD_ID"),
        ({"NEKOS_API_BASE": "ftp://x"}, "NEKOS_API_BASE"),
        ({"DISCORD_API_BASE": "not a url"}, "DISCORD_API_BASE"),
        ({"DISCORD_GATEWAY_URL": "https://x"}, "DISCORD_GATEWAY_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"CONTEXT_MENU_ACTIONS": "a,b,c,d,e,f"}, "CONTEXT_MENU_ACTIONS"),
        ({"CATEGORY_REFRESH_HOURS": "soon"}, "CATEGORY_REFRESH_HOURS"),
        ({"NEKOS_CONTACT": "me (you)"}, "NEKOS_CONTACT"),
    ],
)
def test_bad_values_name_the_variable_and_never_the_token(env: dict, variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"DISCORD_TOKEN": TOKEN, **env}, dotenv_path=None)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)
    assert TOKEN not in str(caught.value)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"DISCORD_TOKEN={TOKEN}\nLOG_LEVEL=debug\nDEV_GUILD_ID=123456789012345678\n")
    config = load_config({"LOG_LEVEL": "WARNING"}, dotenv_path=dotenv)
    assert config.discord_token == TOKEN
    assert config.log_level == "WARNING"
    assert config.dev_guild_id == 123456789012345678


def test_readme_and_env_example_document_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^\|\s*`([A-Z_]+)`", readme, flags=re.M))
    in_example = set(re.findall(r"^#?\s*([A-Z_]{4,})=", example, flags=re.M))
    names = {s.name for s in SETTINGS}
    assert documented == names
    assert in_example == names
    read_by_code = set(re.findall(r'get\("([A-Z_]+)"\)', (ROOT / "bot/config.py").read_text()))
    assert read_by_code == names


def test_readme_invite_link_asks_for_exactly_the_permissions_the_bot_uses() -> None:
    from bot.app import INVITE_PERMISSIONS

    readme = (ROOT / "README.md").read_text()
    assert f"permissions={INVITE_PERMISSIONS.value}" in readme

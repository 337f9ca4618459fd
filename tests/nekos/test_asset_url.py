"""`asset_path` / `is_asset_url`: only URLs under the configured base URL pass."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.nekos import asset_path, is_asset_url

BASE = "https://nekos.best/api/v2"
UUID = "0a2d9ca6-9dc8-4b41-9a9e-c9c33f7a5a39"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://nekos.best/api/v2/hug/{UUID}.gif", ("hug", f"{UUID}.gif")),
        (f"https://NEKOS.BEST/api/v2/neko/{UUID}.png", ("neko", f"{UUID}.png")),
        (f"https://nekos.best:443/api/v2/hug/{UUID}.gif", ("hug", f"{UUID}.gif")),
        (f"HTTPS://nekos.best/api/v2/hug/{UUID}.gif", ("hug", f"{UUID}.gif")),
        (f"https://nekos.best/api/v2/hug/{UUID}.gif?ignored=1", ("hug", f"{UUID}.gif")),
        (f"https://nekos.best/api/v2/hug/{UUID}.gif#frag", ("hug", f"{UUID}.gif")),
        ("https://nekos.best/api/v2/new_cat-2/Abc_9.gif", ("new_cat-2", "Abc_9.gif")),
    ],
)
def test_accepted(url: str, expected: tuple[str, str]) -> None:
    assert asset_path(url, BASE) == expected
    assert is_asset_url(url, BASE)


@pytest.mark.parametrize(
    "url",
    [
        f"http://nekos.best/api/v2/hug/{UUID}.gif",  # scheme
        f"https://nekos.best:8443/api/v2/hug/{UUID}.gif",  # port
        f"https://nekos.best.evil.example/api/v2/hug/{UUID}.gif",
        f"https://evil.example/api/v2/hug/{UUID}.gif",
        f"https://nekos.best@evil.example/api/v2/hug/{UUID}.gif",  # userinfo
        f"https://user:pw@nekos.best/api/v2/hug/{UUID}.gif",
        f"https://nekos.best./api/v2/hug/{UUID}.gif",
        f"https://nekos.best/api/v1/hug/{UUID}.gif",  # base path
        f"https://nekos.best/hug/{UUID}.gif",
        f"https://nekos.best/api/v2/{UUID}.gif",  # no category
        f"https://nekos.best/api/v2/hug/x/{UUID}.gif",  # extra segment
        f"https://nekos.best/api/v2/Hug/{UUID}.gif",  # category case
        f"https://nekos.best/api/v2/hug/{UUID}.jpg",
        f"https://nekos.best/api/v2/hug/{UUID}.gif.png",
        f"https://nekos.best/api/v2/hug/{UUID}.GIF",
        "https://nekos.best/api/v2/hug/.gif",
        "https://nekos.best/api/v2/%2e%2e/endpoints.gif",
        f"https://nekos.best/api/v2/hug%2f{UUID}.gif",
        f"https://nekos.best/api/v2/hug/%41{UUID}.gif",
        f"https://nekos.best/api/v2/../v2/hug/{UUID}.gif",
        f"https://nekos.best/api/v2/hug/../hug/{UUID}.gif",
        f"https://nekos.best\\@evil.example/api/v2/hug/{UUID}.gif",
        f"https://nekos.best/api/v2/hug\\{UUID}.gif",
        f"https://nekos.best/api/v2/hug/{UUID} .gif",
        f" https://nekos.best/api/v2/hug/{UUID}.gif",
        f"https://nekos.best/api/v2/hug/{UUID}.gif\n",
        f"https://nekös.best/api/v2/hug/{UUID}.gif",
        f"https://nekos.best:abc/api/v2/hug/{UUID}.gif",
        f"//nekos.best/api/v2/hug/{UUID}.gif",
        f"/api/v2/hug/{UUID}.gif",
        "",
        "javascript:alert(1)",
        f"https://104.21.0.1/api/v2/hug/{UUID}.gif",  # an IP is not the host name
    ],
)
def test_rejected(url: str) -> None:
    assert asset_path(url, BASE) is None
    assert not is_asset_url(url, BASE)


def test_ip_literal_base() -> None:
    base = "http://127.0.0.1:8080/api/v2"
    assert asset_path(f"http://127.0.0.1:8080/api/v2/hug/{UUID}.gif", base) == (
        "hug",
        f"{UUID}.gif",
    )
    assert asset_path(f"http://127.1:8080/api/v2/hug/{UUID}.gif", base) is None
    assert asset_path(f"http://localhost:8080/api/v2/hug/{UUID}.gif", base) is None
    assert asset_path(f"http://127.0.0.1/api/v2/hug/{UUID}.gif", base) is None  # port 80
    assert asset_path(f"http://[::1]:8080/api/v2/hug/{UUID}.gif", base) is None


def test_default_port_matches_explicit_base_port() -> None:
    base = "https://nekos.best:443/api/v2/"
    assert is_asset_url(f"https://nekos.best/api/v2/hug/{UUID}.gif", base)


def test_non_strings() -> None:
    assert asset_path(None, BASE) is None  # type: ignore[arg-type]
    assert asset_path(b"https://nekos.best/api/v2/hug/a.gif", BASE) is None  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_never_crashes(text: str) -> None:
    result = asset_path(text, BASE)
    if result is not None:  # only a URL on the nekos.best host, naming that asset
        category, filename = result
        assert text.lower().startswith("https://nekos.best")
        assert f"/{category}/{filename}" in text


@given(
    st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
    st.sampled_from(["png", "gif"]),
)
def test_all_well_formed_assets_accepted(category: str, name: str, fmt: str) -> None:
    assert asset_path(f"{BASE}/{category}/{name}.{fmt}", BASE) == (category, f"{name}.{fmt}")


@given(st.text(alphabet="%./\\@:?#ab-_", min_size=1, max_size=30))
def test_tricky_paths_never_escape(tail: str) -> None:
    result = asset_path(f"{BASE}/{tail}", BASE)
    if result is not None:
        category, filename = result
        assert "%" not in category + filename and ".." not in category + filename
        assert "/" not in filename and "\\" not in filename

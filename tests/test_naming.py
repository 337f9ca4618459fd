"""Category → command names: valid, deterministic, never colliding, within the limit."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bot.naming import command_name, plan

FIXED = ("action", "image", "search", "source", "help", "stats", "optout", "optin", "forgetme")
VALID = re.compile(r"^[-_a-z0-9]{1,32}$")


def test_plain_names_are_kept() -> None:
    assert plan(["hug", "pat", "neko"], FIXED) == {"hug": "hug", "pat": "pat", "neko": "neko"}


def test_fixed_names_and_invalid_names_are_mapped() -> None:
    names = plan(["search", "Thumbs Up!", "help", "a" * 40], FIXED)
    assert names["search"] not in FIXED and names["help"] not in FIXED
    assert all(VALID.match(n) for n in names.values())
    assert len(set(names.values())) == len(names)
    assert plan(["search", "Thumbs Up!", "help", "a" * 40], FIXED) == names  # deterministic


def test_limit_keeps_endpoints_order() -> None:
    categories = [f"c{i}" for i in range(120)]
    names = plan(categories, FIXED, limit=100)
    assert list(names) == categories[:91]


@given(st.lists(st.text(min_size=1, max_size=50), unique=True, max_size=40))
def test_any_names_map_to_unique_valid_commands(categories: list[str]) -> None:
    names = plan(categories, FIXED)
    assert len(set(names.values())) == len(names)
    assert not set(names.values()) & set(FIXED)
    assert all(VALID.match(n) for n in names.values())


def test_command_name_avoids_taken() -> None:
    assert command_name("hug", {"hug"}) != "hug"

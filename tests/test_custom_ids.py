"""The base-36 writer of the buttons' custom_ids (pure logic): every id reads back as itself,
and the digits are those earlier releases wrote (a button posted then must still decode)."""

from __future__ import annotations

import random

from bot.custom_ids import RerollId, ReturnId, b36

MAX_ID = 2**63 - 1


def one_digit_at_a_time(number: int) -> str:
    """The writer of earlier releases."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def test_b36_writes_what_earlier_releases_wrote() -> None:
    rng = random.Random(36)
    edges = [36**k + d for k in range(1, 13) for d in (-1, 0, 1)]
    values = [*range(3000), *edges, MAX_ID, *(rng.randrange(MAX_ID) for _ in range(20000))]
    for value in values:
        assert b36(value) == one_digit_at_a_time(value), value
        assert int(b36(value), 36) == value


def test_custom_ids_of_an_earlier_release_are_unchanged() -> None:
    # As tests/e2e/test_buttons.py presses them (action 1100000000000000000 from Alice to Bob).
    alice, bob = 111111111111111111, 222222222222222222
    action = 1100000000000000000
    assert ReturnId("hug", action, alice, bob).custom_id == (
        "nc:r:hug:8cv1gfspn1fk:ue1lnrzoibr:1os37bjzd0ni"
    )
    assert RerollId("hug", action, alice).custom_id == "nc:a:hug:8cv1gfspn1fk:ue1lnrzoibr"

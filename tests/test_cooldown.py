"""The per-member limits (bot/cooldown.py), on an injected clock."""

from __future__ import annotations

import pytest

from bot.cooldown import Cooldown, MemberCooldowns, Rate, parse_rate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def use(limit: Cooldown, key: object) -> float:
    wait = limit.retry_after(key)
    if wait == 0.0:
        limit.use(key)
    return wait


def test_parse_rate() -> None:
    assert parse_rate("10/20") == Rate(10, 20.0)
    assert parse_rate(" 3/15 ") == Rate(3, 15.0)
    assert parse_rate("0") is None
    for bad in ("", "10", "0/5", "5/0", "a/b", "1/2/3", "10 / 20", "1e3/5"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_sliding_window_and_exact_wait() -> None:
    clock = Clock()
    limit = Cooldown(Rate(2, 10), clock=clock)
    assert use(limit, "a") == 0.0
    clock.now += 4
    assert use(limit, "a") == 0.0
    clock.now += 1
    assert use(limit, "a") == pytest.approx(5.0)  # the first use leaves the window at +10
    assert use(limit, "b") == 0.0  # another member is not affected
    clock.now += 5
    assert use(limit, "a") == 0.0
    assert use(limit, "a") == pytest.approx(4.0)  # now the second use (at +4) must leave


def test_a_refused_attempt_consumes_no_slot() -> None:
    clock = Clock()
    limit = Cooldown(Rate(1, 10), clock=clock)
    assert use(limit, "a") == 0.0
    for _ in range(50):
        clock.now += 0.1
        assert use(limit, "a") > 0
    clock.now = 1010.0  # exactly one window after the only recorded use
    assert use(limit, "a") == 0.0


def test_no_limit_records_nothing() -> None:
    limit = Cooldown(None)
    for _ in range(1000):
        assert use(limit, "a") == 0.0
    assert limit._uses == {}


def test_a_per_call_rate_overrides_the_default() -> None:
    clock = Clock()
    limit = Cooldown(None, clock=clock)
    strict = Rate(1, 30)
    assert limit.retry_after("a", strict) == 0.0
    limit.use("a", strict)
    assert limit.retry_after("a", strict) == pytest.approx(30.0)
    assert limit.retry_after("a") == 0.0  # the default (no limit) still applies elsewhere


def test_search_needs_both_limits_and_a_refusal_spends_neither() -> None:
    clock = Clock()
    limits = MemberCooldowns(Rate(3, 20), Rate(1, 15), clock=clock)
    assert limits.try_use(1, 7, search=True) == 0.0
    assert limits.try_use(1, 7, search=True) == pytest.approx(15.0)  # search limit
    assert limits.try_use(1, 7) == 0.0  # the refused search took no general slot
    assert limits.try_use(1, 7) == 0.0
    assert limits.try_use(1, 7) == pytest.approx(20.0)  # 3 general uses: the first search too
    assert limits.try_use(2, 7) == 0.0  # another server: its own window
    assert limits.try_use(None, 7) == 0.0  # DMs: per user


def test_idle_keys_are_forgotten() -> None:
    clock = Clock()
    limit = Cooldown(Rate(1, 5), clock=clock)
    for key in range(2000):
        use(limit, key)
    clock.now += 6
    for _ in range(1000):
        limit.retry_after("probe")
    assert len(limit._uses) < 10

"""What every backend refuses, in the same words: unstorable arguments (checked once, by `Store`,
before any backend runs anything) and any call on a closed store, also one answered from
memory or with nothing to do."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest

from bot.store import GuildSettings, Store, StoreError

Call = Callable[[Store], Awaitable[object]]

REFUSED: list[tuple[str, Call, str]] = [
    (
        "record_action target",
        lambda s: s.record_action(
            action_id=1, guild_id=1, action="hug", actor_id=10, target_ids=[20, -1]
        ),
        "target_id -1 is outside 0..2**63-1",
    ),
    (
        "record_action action",
        lambda s: s.record_action(action_id=1, guild_id=1, action="", actor_id=10, target_ids=[]),
        "action must be a non-empty str of at most 64 characters: ''",
    ),
    (
        "counts",
        lambda s: s.counts(guild_id=True, action="hug", actor_id=10, target_id=20),
        "guild_id must be an int, not bool",
    ),
    (
        "claim_return",
        lambda s: s.claim_return(action_id=2**63, target_id=20),
        f"action_id {2**63} is outside 0..2**63-1",
    ),
    (
        "is_returned",
        lambda s: s.is_returned(action_id=1, target_id="20"),
        "target_id must be an int, not str",
    ),
    (
        "user_stats top",
        lambda s: s.user_stats(guild_id=1, user_id=10, top=-1),
        "top must be a non-negative int, not -1",
    ),
    (
        "user_stats user",
        lambda s: s.user_stats(guild_id=1, user_id=-10),
        "user_id -10 is outside 0..2**63-1",
    ),
    (
        "set_opt_out",
        lambda s: s.set_opt_out(user_id=-1, opted_out=True),
        "user_id -1 is outside 0..2**63-1",
    ),
    ("is_opted_out", lambda s: s.is_opted_out(-1), "user_id -1 is outside 0..2**63-1"),
    (
        "opted_out_among",
        lambda s: s.opted_out_among([10, None]),
        "user_id must be an int, not NoneType",
    ),
    (
        "forget_user",
        lambda s: s.forget_user(user_id=-1, keep_opt_out=False),
        "user_id -1 is outside 0..2**63-1",
    ),
    (
        "set_block user",
        lambda s: s.set_block(user_id=-1, action="hug", blocked=True),
        "user_id -1 is outside 0..2**63-1",
    ),
    (
        "set_block action",
        lambda s: s.set_block(user_id=10, action="", blocked=True),
        "action must be a non-empty str of at most 64 characters: ''",
    ),
    ("blocks_of", lambda s: s.blocks_of(-1), "user_id -1 is outside 0..2**63-1"),
    (
        "opted_out_among refusing",
        lambda s: s.opted_out_among([10], refusing=["x" * 65]),
        f"action must be a non-empty str of at most 64 characters: {'x' * 65!r}",
    ),
    ("forget_guild", lambda s: s.forget_guild(guild_id=-1), "guild_id -1 is outside 0..2**63-1"),
    ("guild_settings", lambda s: s.guild_settings(-1), "guild_id -1 is outside 0..2**63-1"),
    (
        "save_guild_settings settings",
        lambda s: s.save_guild_settings(1, {"pings": False}),
        "settings must be GuildSettings, not dict",
    ),
    (
        "save_guild_settings guild",
        lambda s: s.save_guild_settings(-1, GuildSettings()),
        "guild_id -1 is outside 0..2**63-1",
    ),
    ("first_delivery", lambda s: s.first_delivery(-1), "interaction_id -1 is outside 0..2**63-1"),
]


@pytest.mark.parametrize(("call", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_unstorable_arguments_are_refused_in_the_same_words(
    store: Store, call: Call, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        await call(store)


CLOSED: list[tuple[str, Call]] = [
    (
        "record_action",
        lambda s: s.record_action(
            action_id=1, guild_id=1, action="hug", actor_id=10, target_ids=[20]
        ),
    ),
    (
        "record_action without targets",
        lambda s: s.record_action(
            action_id=1, guild_id=1, action="hug", actor_id=10, target_ids=[]
        ),
    ),
    ("counts", lambda s: s.counts(guild_id=1, action="hug", actor_id=10, target_id=20)),
    ("claim_return", lambda s: s.claim_return(action_id=1, target_id=20)),
    ("is_returned", lambda s: s.is_returned(action_id=1, target_id=20)),
    ("user_stats", lambda s: s.user_stats(guild_id=1, user_id=10)),
    ("set_opt_out", lambda s: s.set_opt_out(user_id=10, opted_out=True)),
    ("is_opted_out", lambda s: s.is_opted_out(10)),
    ("opted_out_among", lambda s: s.opted_out_among([10, 20])),
    ("opted_out_among nobody", lambda s: s.opted_out_among([])),
    ("opted_out_among refusing", lambda s: s.opted_out_among([10], refusing=["hug"])),
    ("set_block", lambda s: s.set_block(user_id=10, action="hug", blocked=True)),
    ("blocks_of", lambda s: s.blocks_of(10)),
    ("forget_user", lambda s: s.forget_user(user_id=10, keep_opt_out=False)),
    ("forget_guild", lambda s: s.forget_guild(guild_id=1)),
    ("guild_settings", lambda s: s.guild_settings(1)),
    ("save_guild_settings", lambda s: s.save_guild_settings(1, GuildSettings())),
    ("ping", lambda s: s.ping()),
]


@pytest.mark.parametrize("call", [c for _, c in CLOSED], ids=[name for name, _ in CLOSED])
async def test_a_closed_store_refuses_every_call(store: Store, call: Call) -> None:
    # Asked once before, so opt-outs and settings are answered from memory where a backend can.
    await store.guild_settings(1)
    await store.opted_out_among([10, 20])
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await call(store)

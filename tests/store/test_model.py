"""Property test: any sequence of records (of one or several targets, repeats included), replays
and forgets agrees with a plain-Python model, and received totals always equal the sums of pair
counts."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.store import ActionCounts, ActionStat, UserStats
from bot.store.sqlite import SqliteStore

USERS = st.integers(1, 3)
GUILDS = st.integers(1, 2)
ACTIONS = st.sampled_from(["hug", "hug", "pat"])  # mostly one action, so counters collide


@dataclass(frozen=True)
class Record:
    action_id: int
    guild: int
    action: str
    actor: int
    targets: tuple[int, ...]


@dataclass(frozen=True)
class ForgetUser:
    user: int


@dataclass(frozen=True)
class ForgetGuild:
    guild: int


TARGETS = st.lists(USERS, min_size=1, max_size=4).map(tuple)
RECORDS = st.builds(Record, st.integers(1, 40), GUILDS, ACTIONS, USERS, TARGETS)
# Mostly records (ids repeat, so replays happen), with an occasional forget.
OPS = st.lists(
    st.one_of(
        RECORDS,
        RECORDS,
        RECORDS,
        RECORDS,
        st.builds(ForgetUser, USERS),
        st.builds(ForgetGuild, GUILDS),
    ),
    min_size=5,
    max_size=50,
)


class Model:
    def __init__(self) -> None:
        self.pairs: Counter[tuple[int, str, int, int]] = Counter()
        # (action id, target) -> (the record that counted it, the counts it answered)
        self.processed: dict[tuple[int, int], tuple[Record, ActionCounts]] = {}

    def total(self, guild: int, action: str, target: int) -> int:
        return sum(
            n for (g, a, _, t), n in self.pairs.items() if (g, a, t) == (guild, action, target)
        )

    def record(self, op: Record) -> list[ActionCounts]:
        answers: dict[int, ActionCounts] = {}
        for target in op.targets:
            if target in answers:
                continue  # a repeated target counts once
            if (op.action_id, target) in self.processed:
                answers[target] = self.processed[(op.action_id, target)][1]
                continue
            self.pairs[(op.guild, op.action, op.actor, target)] += 1
            answers[target] = ActionCounts(
                self.pairs[(op.guild, op.action, op.actor, target)],
                self.total(op.guild, op.action, target),
            )
            self.processed[(op.action_id, target)] = (op, answers[target])
        return [answers[target] for target in op.targets]

    def forget_user(self, user: int) -> None:
        self.pairs = Counter({k: n for k, n in self.pairs.items() if user not in (k[2], k[3])})
        self.processed = {
            (i, t): (r, c) for (i, t), (r, c) in self.processed.items() if user not in (r.actor, t)
        }

    def forget_guild(self, guild: int) -> None:
        self.pairs = Counter({k: n for k, n in self.pairs.items() if k[0] != guild})
        self.processed = {i: (r, c) for i, (r, c) in self.processed.items() if r.guild != guild}

    def stats(self, guild: int, user: int) -> list[ActionStat]:
        given: Counter[str] = Counter()
        received: Counter[str] = Counter()
        for (g, a, actor, target), n in self.pairs.items():
            if g == guild and actor == user:
                given[a] += n
            if g == guild and target == user:
                received[a] += n
        stats = [ActionStat(a, given[a], received[a]) for a in set(given) | set(received)]
        return sorted(stats, key=lambda s: (-(s.given + s.received), s.action))


async def _totals_mismatching_sums(store: SqliteStore) -> list[tuple[int, ...]]:
    def mismatches(conn: sqlite3.Connection) -> list[tuple[int, ...]]:
        return conn.execute(
            """
            SELECT guild_id, target_id, action, SUM(count) FROM action_counts
            GROUP BY guild_id, target_id, action
            EXCEPT SELECT guild_id, target_id, action, count FROM received_totals
            UNION ALL
            SELECT guild_id, target_id, action, count FROM received_totals
            EXCEPT SELECT guild_id, target_id, action, SUM(count) FROM action_counts
            GROUP BY guild_id, target_id, action
            """
        ).fetchall()

    return await store.run_on_connection(mismatches)


async def _check(ops: list[Record | ForgetUser | ForgetGuild]) -> None:
    model = Model()
    async with await SqliteStore.open(":memory:") as store:
        for op in ops:
            if isinstance(op, Record):
                got = await store.record_action(
                    action_id=op.action_id,
                    guild_id=op.guild,
                    action=op.action,
                    actor_id=op.actor,
                    target_ids=op.targets,
                )
                assert got == model.record(op)
            elif isinstance(op, ForgetUser):
                await store.forget_user(user_id=op.user, keep_opt_out=True)
                model.forget_user(op.user)
            else:
                await store.forget_guild(guild_id=op.guild)
                model.forget_guild(op.guild)
            assert await _totals_mismatching_sums(store) == []
        for guild in (1, 2):
            for user in (1, 2, 3):
                stats = await store.user_stats(guild_id=guild, user_id=user)
                assert stats.actions == model.stats(guild, user)
                for action in ("hug", "pat"):
                    for target in (1, 2, 3):
                        expected = ActionCounts(
                            model.pairs[(guild, action, user, target)],
                            model.total(guild, action, target),
                        )
                        assert (
                            await store.counts(
                                guild_id=guild, action=action, actor_id=user, target_id=target
                            )
                            == expected
                        )
        assert await store.user_stats(guild_id=3, user_id=1) == UserStats([], [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_store_agrees_with_the_model(ops: list[Record | ForgetUser | ForgetGuild]) -> None:
    asyncio.run(_check(ops))

"""SHARD_COUNT, SHARD_IDS, SHARD_CLAIM and SHARD_LEASE_SECONDS: their parsing, and the checks
between the shards and DATABASE_URL.

Apart from `bot.shards` (which needs discord.py) because the configuration is also read by the
container health check. Each function raises ValueError with the problem, worded to follow
"<VARIABLE>: ".
"""

from __future__ import annotations

from bot.store import url_scheme

# DATABASE_URL schemes several processes can share (SQLite is one process's own file).
SHARED_DATABASE_SCHEMES = ("postgresql", "postgres")
_SHAPE = "must be shard ids as a-b, a,b,c or a single number (from 0)"
SHARD_CLAIMS = ("wait", "exit")  # what a process does when another one runs its shards


def parse_shard_count(text: str) -> int:
    count = int(text) if text.isdigit() else 0
    if not 1 <= count <= 65536:
        raise ValueError("must be a whole number of shards from 1")
    return count


def parse_shard_ids(text: str) -> tuple[int, ...]:
    """`a-b` (inclusive), `a,b,c` or one id; sorted, without repeats."""
    first, dash, last = text.partition("-")
    if dash:
        if not (first.strip().isdigit() and last.strip().isdigit()):
            raise ValueError(_SHAPE)
        low, high = int(first), int(last)
        if low > high:
            raise ValueError(f"{_SHAPE}; a range goes from the lower id to the higher")
        return tuple(range(low, high + 1))
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise ValueError(_SHAPE)
    return tuple(sorted({int(p) for p in parts}))


def check_shards(count: int | None, ids: tuple[int, ...] | None, database_url: str) -> None:
    """SHARD_IDS against SHARD_COUNT, and a subset of the shards only with a shared database:
    the other processes must see the same counters and opt-outs."""
    if ids is None:
        return
    if count is None:
        raise ValueError("needs SHARD_COUNT (the total number of shards)")
    if ids[-1] >= count:
        raise ValueError(f"shard ids go from 0 to {count - 1} (SHARD_COUNT={count})")
    if len(ids) < count and url_scheme(database_url) not in SHARED_DATABASE_SCHEMES:
        raise ValueError(
            "running some of the shards needs a PostgreSQL DATABASE_URL shared by every "
            "process (SQLite belongs to one process)"
        )


def parse_shard_claim(text: str) -> str:
    claim = text.lower()
    if claim not in SHARD_CLAIMS:
        raise ValueError(f"must be {' or '.join(SHARD_CLAIMS)}")
    return claim


def parse_lease_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 1 <= seconds <= 600:  # also refuses nan and inf
        raise ValueError("must be a number of seconds from 1 to 600")
    return seconds

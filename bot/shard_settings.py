"""SHARD_COUNT, SHARD_IDS, SHARDS_PER_POD, POD_INDEX, SHARD_CLAIM and SHARD_LEASE_SECONDS:
their parsing, and the checks between the shards and DATABASE_URL.

Apart from `bot.shards` (which needs discord.py) because the configuration is also read by the
container health check. Each function raises ValueError with the problem, worded to follow
"<VARIABLE>: ".
"""

from __future__ import annotations

import re

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


# -- one pod of a StatefulSet: POD_INDEX and SHARDS_PER_POD -----------------------------------

_POD_NAME = re.compile(r"-([0-9]+)$")


class ShardSettingError(ValueError):
    """A problem between the shard settings; `variable` is the one the line names."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(problem)
        self.variable = variable
        self.problem = problem


def parse_pod_index(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError("must be a whole number from 0 (the pod's ordinal)")
    return int(text)


def parse_shards_per_pod(text: str) -> int:
    count = int(text) if text.isdigit() else 0
    if not 1 <= count <= 65536:
        raise ValueError("must be a whole number of shards from 1")
    return count


def index_from_hostname(hostname: str) -> int | None:
    """A StatefulSet's pod `NAME-N` has the index N (None: no such suffix)."""
    found = _POD_NAME.search(hostname.strip())
    return int(found.group(1)) if found else None


def pod_shards(
    count: int | None,
    ids: tuple[int, ...] | None,
    per_pod: int | None,
    pod_index: int | None,
    hostname: str,
    database_url: str,
) -> tuple[tuple[int, ...] | None, int | None]:
    """The shards this process runs and its pod index: pod i of SHARD_COUNT / SHARDS_PER_POD
    runs shards i·k … i·k+k−1; without SHARDS_PER_POD, SHARD_IDS as given."""
    if per_pod is None:
        if pod_index is not None:
            raise ShardSettingError("POD_INDEX", "needs SHARDS_PER_POD (shards per pod)")
        try:
            check_shards(count, ids, database_url)
        except ValueError as exc:
            raise ShardSettingError("SHARD_IDS", str(exc)) from None
        return ids, None
    if ids is not None:
        raise ShardSettingError(
            "SHARD_IDS",
            "give SHARD_IDS or SHARDS_PER_POD, not both (a pod's index picks its shards)",
        )
    if count is None:
        raise ShardSettingError("SHARDS_PER_POD", "needs SHARD_COUNT (the total number of shards)")
    if count % per_pod:
        raise ShardSettingError(
            "SHARDS_PER_POD", f"SHARD_COUNT={count} is not a multiple of SHARDS_PER_POD={per_pod}"
        )
    if pod_index is None:
        pod_index = index_from_hostname(hostname)
        if pod_index is None:
            raise ShardSettingError(
                "POD_INDEX",
                f"is not set and the host name {hostname!r} does not end in -N (a StatefulSet "
                "pod's index)",
            )
    pods = count // per_pod
    if pod_index >= pods:
        raise ShardSettingError(
            "POD_INDEX",
            f"pod {pod_index} is past the last of {pods} pods (SHARD_COUNT={count}, "
            f"SHARDS_PER_POD={per_pod}: indexes 0 to {pods - 1})",
        )
    owned = tuple(range(pod_index * per_pod, (pod_index + 1) * per_pod))
    try:
        check_shards(count, owned, database_url)
    except ValueError as exc:
        raise ShardSettingError("SHARDS_PER_POD", str(exc)) from None
    return owned, pod_index

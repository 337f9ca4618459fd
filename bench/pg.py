"""The benchmark's PostgreSQL: one throwaway cluster for a whole run (tests/pg.py's, on a free
loopback port, fsync off), a fresh database per bot run, destroyed at the end whatever happens."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from tests.pg import PostgresCluster, find_bin_dir

__all__ = ["PostgresCluster", "available", "cluster"]


def available() -> bool:
    """Whether PostgreSQL's binaries (initdb, pg_ctl) are here (PG_BIN, Debian's layout, PATH)."""
    return find_bin_dir() is not None


@contextlib.contextmanager
def cluster() -> Iterator[PostgresCluster]:
    """A running cluster, destroyed (stopped, directory removed) on the way out."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql or set PG_BIN")
    running = PostgresCluster(bin_dir)
    try:
        running.start()
        yield running
    finally:
        running.destroy()

"""A throwaway PostgreSQL cluster for the tests: `initdb` in a temporary directory, `pg_ctl` on a
free loopback port, fsync off, stopped (and its directory removed) at the end.

Run as root, the server runs as the `postgres` user (PostgreSQL refuses root) through
`runuser`. Without PostgreSQL's binaries the tests that need it skip with a reason, except under
`CI=true`, where they fail: CI installs PostgreSQL (.ci/run), so a skip there would hide tests.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

__all__ = ["PostgresCluster", "find_bin_dir", "require_postgres"]

SUPERUSER = "nekocord"


def find_bin_dir() -> Path | None:
    """The directory of `initdb` and `pg_ctl`: `PG_BIN`, then Debian's layout (newest first),
    then PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def require_postgres() -> Path:
    """The binaries' directory, or skip (fail under CI=true) with the reason."""
    found = find_bin_dir()
    if found is None:
        reason = "PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql or set PG_BIN"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One running cluster. `url(db)` names a database on it; `create_database()` makes a fresh
    one (the tests of a module share a cluster, each test gets its own database)."""

    def __init__(
        self,
        bin_dir: Path,
        *,
        exec_prefix: Sequence[str] = (),
        listen: Sequence[str] = ("127.0.0.1",),
        trusted_networks: Sequence[str] = (),
    ) -> None:
        """`exec_prefix` runs every PostgreSQL program through it (`ip netns exec NS`: a
        cluster on another host); `listen`: its addresses there (the first one is where
        `psql` connects); `trusted_networks`: CIDRs allowed in besides loopback."""
        self.bin_dir = bin_dir
        self.exec_prefix = list(exec_prefix)
        self.listen = list(listen)
        self.trusted_networks = list(trusted_networks)
        self.root = Path(tempfile.mkdtemp(prefix="nekocord-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._run_as = "postgres" if os.geteuid() == 0 else None
        self._started = False

    # -- lifetime ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._run_as is not None:
            owner = pwd.getpwnam(self._run_as)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            os.chmod(self.root, 0o700)
        self._pg(
            "initdb", "--no-sync", "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
            "--locale=C", "-D", str(self.data),
        )  # fmt: skip
        with open(self.data / "pg_hba.conf", "a") as hba:
            for network in self.trusted_networks:
                hba.write(f"host all all {network} trust\n")
        self._start()

    def _start(self) -> None:
        options = (
            f"-p {self.port} -h {','.join(self.listen)} -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._pg("pg_ctl", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
                 "-o", options, "start")  # fmt: skip
        self._started = True

    def stop(self, mode: str = "fast") -> None:
        if self._started:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg("pg_ctl", "-w", "-t", "60", "-D", str(self.data), "-m", mode, "stop")
            self._started = False

    def restart(self) -> None:
        """`pg_ctl restart` (fast): every connection is dropped, the data kept."""
        self.stop()
        self._start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases --------------------------------------------------------------------------
    def url(
        self,
        database: str = "postgres",
        *,
        scheme: str = "postgresql",
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> str:
        return f"{scheme}://{SUPERUSER}@{host}:{port or self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql; returns its unaligned output (tests read rows with it)."""
        result = self._pg(
            "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.listen[0],
            "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql,
        )  # fmt: skip
        return result.stdout

    def _pg(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / program), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        command = [*self.exec_prefix, *command]
        try:
            return subprocess.run(
                command, check=True, capture_output=True, text=True, timeout=120, cwd=self.root
            )
        except subprocess.CalledProcessError as exc:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{program} failed ({exc.returncode}): {exc.stderr.strip()}\n{log}"
            ) from None


@contextlib.contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(require_postgres())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()

"""Hosts made of Linux network namespaces, for faults between hosts (`test_partitions.py`).

`Network` makes a switch namespace holding a bridge, and one namespace per host with a veth
pair to that bridge and an address in 10.200.0.0/24. Nothing is added to the namespace the
tests run in: every interface and address lives in namespaces made here, so no packet can
leave them. A partition is iptables rules in a host's namespace; `FaultProxy` adds latency and
drops in userspace (the kernel here has no netem).

The test process itself stays where it is: it binds the stand-ins' sockets, and opens its own
connections, inside a host's namespace with `setns(2)` on its thread for just the socket call
(`socket_in`): a socket keeps the namespace it was made in.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["FaultProxy", "Host", "Loopback", "Network", "namespaces_unavailable"]

SUBNET = "10.200.0"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def namespaces_unavailable() -> str | None:
    """Why this machine cannot make the hosts (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found: install iproute2 and iptables"
    probe = f"nc-probe-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    try:
        rules = _run_quiet("ip", "netns", "exec", probe, "iptables", "-L", "-n")
        if rules.returncode != 0:
            return f"iptables does not work in a namespace: {rules.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run_quiet(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def _run(*command: str) -> str:
    result = _run_quiet(*command)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def _inside(namespace: str) -> Iterator[None]:
    """This thread in `namespace` for the block (which must not await: other tasks would run
    there too)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


@dataclass
class Host:
    """One namespace with one address."""

    name: str  # the namespace
    address: str

    def exec_prefix(self) -> list[str]:
        """Run a command on this host: `[*prefix, program, ...]`."""
        return ["ip", "netns", "exec", self.name]

    def socket_in(self, *, listen_port: int | None = None) -> socket.socket:
        """A non-blocking TCP socket of this host; with `listen_port`, bound to its address
        there (0: any free port) and listening."""
        with _inside(self.name):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                if listen_port is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((self.address, listen_port))
                    sock.listen(128)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
        return sock

    def iptables(self, *args: str) -> None:
        _run(*self.exec_prefix(), "iptables", "-w", *args)

    def cut_from(self, other: Host) -> None:
        """Every packet between this host and `other` dropped here, both ways (a partition:
        connections hang, nothing is refused)."""
        self.iptables("-I", "OUTPUT", "-d", other.address, "-j", "DROP")
        self.iptables("-I", "INPUT", "-s", other.address, "-j", "DROP")

    def heal_from(self, other: Host) -> None:
        self.iptables("-D", "OUTPUT", "-d", other.address, "-j", "DROP")
        self.iptables("-D", "INPUT", "-s", other.address, "-j", "DROP")

    async def http_get(self, url_path: str, address: str, port: int, timeout: float = 5) -> int:
        """The status of `GET url_path` from this host to `address:port` (0: no answer)."""
        loop = asyncio.get_running_loop()
        sock = self.socket_in()
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (address, port))
                request = f"GET {url_path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
                await loop.sock_sendall(sock, request.encode())
                head = await loop.sock_recv(sock, 4096)
        except (OSError, TimeoutError):
            return 0
        finally:
            sock.close()
        parts = head.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


class Loopback(Host):
    """This host's own loopback, for a `FaultProxy` in a test that needs no namespaces."""

    def __init__(self) -> None:
        super().__init__(name="", address="127.0.0.1")

    def socket_in(self, *, listen_port: int | None = None) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if listen_port is not None:
            sock.bind((self.address, listen_port))
            sock.listen(128)
        sock.setblocking(False)
        return sock


@dataclass
class Network:
    """Hosts on one bridge. `add(role)` makes one; `close()` kills what still runs in them and
    deletes every namespace (safe to call twice, and after a failed `add`)."""

    prefix: str = field(default_factory=lambda: f"nc{uuid.uuid4().hex[:8]}")
    hosts: list[Host] = field(default_factory=list)
    _switch: str | None = None

    def _make_switch(self) -> str:
        switch = f"{self.prefix}-switch"
        _run("ip", "netns", "add", switch)
        self._switch = switch
        _run("ip", "-n", switch, "link", "set", "lo", "up")
        _run("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", switch, "link", "set", "br0", "up")
        return switch

    def add(self, role: str) -> Host:
        switch = self._switch or self._make_switch()
        index = len(self.hosts) + 1
        host = Host(name=f"{self.prefix}-{role}", address=f"{SUBNET}.{index}")
        _run("ip", "netns", "add", host.name)
        self.hosts.append(host)
        port = f"port{index}"
        # Both ends are made inside the namespaces: nothing appears where the tests run.
        _run("ip", "-n", switch, "link", "add", port, "type", "veth",
             "peer", "name", "eth0", "netns", host.name)  # fmt: skip
        _run("ip", "-n", switch, "link", "set", port, "master", "br0", "up")
        _run("ip", "-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _run("ip", "-n", host.name, "link", "set", "eth0", "up")
        _run("ip", "-n", host.name, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        names = [h.name for h in self.hosts] + ([self._switch] if self._switch else [])
        for name in names:
            # Only what this test started runs there (PostgreSQL, the bot processes).
            pids = _run_quiet("ip", "netns", "pids", name).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        deadline = time.monotonic() + 10
        for name in names:
            while _run_quiet("ip", "netns", "pids", name).stdout.split():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            _run_quiet("ip", "netns", "del", name)
        self.hosts.clear()
        self._switch = None


class FaultProxy:
    """A TCP relay on `host` to `upstream` (an address reachable from it), with faults switched
    on and off while it runs: `latency` seconds added to every chunk each way (order kept),
    each connection cut at random (both ends aborted) with probability `drop` per chunk
    relayed, and `black_hole()`: nothing delivered either way until `heal()` (a partition:
    connections hang, and what was sent arrives after it, as TCP retransmits it)."""

    def __init__(self, host: Host, upstream: tuple[str, int], *, seed: int = 0) -> None:
        self.host = host
        self.upstream = upstream
        self.latency = 0.0
        self.drop = 0.0
        self.port = 0
        self.connections = 0
        self.dropped = 0
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def black_hole(self) -> None:
        self._flowing.clear()

    def heal(self) -> None:
        self._flowing.set()

    async def start(self) -> FaultProxy:
        sock = self.host.socket_in(listen_port=0)
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._serve, sock=sock)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        loop = asyncio.get_running_loop()
        await self._flowing.wait()  # a connection attempt hangs too
        sock = self.host.socket_in()
        try:
            async with asyncio.timeout(5):
                await loop.sock_connect(sock, self.upstream)
            server_r, server_w = await asyncio.open_connection(sock=sock)
        except (OSError, TimeoutError):
            sock.close()
            client_w.transport.abort()
            return
        pair = (client_w, server_w)
        self._writers.update(pair)
        relays = [
            asyncio.create_task(self._relay(client_r, server_w, pair)),
            asyncio.create_task(self._relay(server_r, client_w, pair)),
        ]
        self._tasks.update(relays)
        try:
            await asyncio.gather(*relays, return_exceptions=True)
        finally:
            self._tasks.difference_update(relays)
            for writer in pair:
                self._writers.discard(writer)
                writer.transport.abort()

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        loop = asyncio.get_running_loop()
        # Chunks are delayed, not the relay: a queue keeps their order and their due times.
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()

        delivery = asyncio.create_task(deliver())
        try:
            while True:
                chunk = await reader.read(65536)
                if chunk and self.drop and self._rng.random() < self.drop:
                    self.dropped += 1
                    for end in pair:
                        end.transport.abort()
                    return
                queue.put_nowait((loop.time() + self.latency, chunk))
                if not chunk:
                    break
            await delivery
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            delivery.cancel()
            with contextlib.suppress(BaseException):
                await delivery

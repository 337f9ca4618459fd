"""Start-up when Discord cannot be reached yet: retried with capped backoff, one line per attempt,
then one line and exit 1; never a traceback. A Discord that comes up in time is simply used."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, bot_process
from tests.helpers import answered, image_url

ATTEMPT = re.compile(r"Discord is not reachable \(.+\): attempt (\d+), next in (\d+) s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def forwarder(port: int, target_port: int) -> AsyncIterator[None]:
    """From now on, 127.0.0.1:`port` forwards to 127.0.0.1:`target_port` (a proxy coming up)."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        writers.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def test_unreachable_discord_is_retried_then_exit_1_with_one_line(tmp_path: Path) -> None:
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        closed = f"http://127.0.0.1:{free_port()}/api/v10"
        env = {"DISCORD_API_BASE": closed, "STARTUP_RETRY_SECONDS": "5"}
        async with bot_process(discord_api, nekos, tmp_path / "data", **env) as proc:
            code = await proc.wait(timeout=30)
            output = proc.output
    assert code == 1, output
    assert "Traceback" not in output
    attempts = [(int(n), int(d)) for n, d in ATTEMPT.findall(output)]
    assert attempts == [(1, 1), (2, 2)], output  # 1 + 2 s waited; 4 more would pass 5 s
    last = output.strip().splitlines()[-1]
    assert last.startswith("nekocord: Discord could not be reached for 5 s (3 attempts)"), last


async def test_discord_coming_up_late_is_waited_for(tmp_path: Path) -> None:
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        port = free_port()
        env = {"DISCORD_API_BASE": f"http://127.0.0.1:{port}/api/v10"}
        async with bot_process(discord_api, nekos, tmp_path / "data", **env) as proc:
            await proc.wait_for_output("attempt 2, next in 2 s", timeout=15)
            async with forwarder(port, discord_api.port):
                await proc.wait_for_output("Ready as", timeout=20)
                hug = discord_api.slash("hug", {"user": make_user()})
                answer = await answered(await discord_api.interact(hug))
                assert image_url(answer), answer
    assert "Traceback" not in proc.output

"""`/source` and the "Image credit" menu with URLs aimed elsewhere: other hosts, other schemes,
redirects, IP literals, userinfo tricks and percent-encoded paths. No request leaves for any
of them: a canary server on loopback (the "evil" host) must see nothing, and nekos.best only
the one legitimate asset request of the redirect case."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fakes.discord import FakeDiscord
from tests.fakes.nekos import FakeNekos
from tests.harness import RunningBot
from tests.helpers import LogCapture, answered, is_ephemeral, text_of


class Canary:
    """An HTTP server that records every request (any method, any path)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def record(request: web.Request) -> web.Response:
            self.hits.append(f"{request.method} {request.path_qs}")
            return web.Response(
                status=200,
                body=b"GIF89a",
                headers={"anime_name": "pwned", "artist_name": "pwned"},
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    server = Canary()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def file_requests(nekos: FakeNekos) -> list[str]:
    """Requests to the file endpoint (`/<category>/<file>`); the pool's warm-up refills
    (`/<category>`) may still be landing when a test starts and are not ours to judge."""
    return [r.route for r in nekos.requests if r.route.count("/") >= 2]


def hostile_urls(nekos: FakeNekos, canary: Canary) -> list[str]:
    n = f"127.0.0.1:{nekos.port}"
    c = f"127.0.0.1:{canary.port}"
    asset = f"neko/{uuid.uuid4()}.png"
    return [
        # other hosts, same path
        f"http://{c}/api/v2/{asset}",
        f"http://localhost:{nekos.port}/api/v2/{asset}",
        f"https://nekos.best/api/v2/{asset}",
        f"http://evil.example/api/v2/{asset}",
        # other ports of the nekos host
        f"http://127.0.0.1:{canary.port}/api/v2/{asset}",
        f"http://127.0.0.1/api/v2/{asset}",
        # other schemes
        f"https://{n}/api/v2/{asset}",
        f"ftp://{n}/api/v2/{asset}",
        "file:///etc/passwd",
        f"file://{n}/api/v2/{asset}",
        "gopher://127.0.0.1:70/_x",
        "data:text/html,<script>alert(1)</script>",
        "javascript:alert(1)//.png",
        f"ws://{n}/api/v2/{asset}",
        # IP literals for the same machine
        f"http://2130706433:{nekos.port}/api/v2/{asset}",
        f"http://0x7f.0.0.1:{nekos.port}/api/v2/{asset}",
        f"http://0177.0.0.1:{nekos.port}/api/v2/{asset}",
        f"http://[::1]:{nekos.port}/api/v2/{asset}",
        f"http://[::ffff:127.0.0.1]:{canary.port}/api/v2/{asset}",
        f"http://127.1:{canary.port}/api/v2/{asset}",
        # userinfo tricks
        f"http://{n}@{c}/api/v2/{asset}",
        f"http://127.0.0.1@{c}/api/v2/{asset}",
        f"http://nekos.best@{c}/api/v2/{asset}",
        f"http://{n}:pw@{c}/api/v2/{asset}",
        f"http://{c}#@{n}/api/v2/{asset}",
        f"http://{c}?@{n}/api/v2/{asset}",
        f"http://{n}\\@{c}/api/v2/{asset}",
        f"http://{c}\\{n}/api/v2/{asset}",
        # percent-encoded and dot-segment paths on the right host
        f"http://{n}/api/v2/%6eeko/{uuid.uuid4()}.png",
        f"http://{n}/api/v2/neko/..%2f..%2fendpoints.png",
        f"http://{n}/api/v2/neko/%2e%2e/%2e%2e/search.png",
        f"http://{n}/api/v2/neko/../../v2/neko/{uuid.uuid4()}.png",
        f"http://{n}/api/v2/./neko/{uuid.uuid4()}.png",
        f"http://{n}/api/v2/neko/{uuid.uuid4()}.png%00.gif",
        f"http://{n}/api/v2//neko/{uuid.uuid4()}.png",
        f"http://{n}/api/v2/neko/{uuid.uuid4()}.png/..",
        f"http://{n}%2f@{c}/api/v2/{asset}",
        f"http://{n.replace('.', '%2e')}/api/v2/{asset}",
        # whitespace, control characters, unicode look-alikes
        f" http://{c}/api/v2/{asset}",
        f"http://{n}/api/v2/neko/\t{uuid.uuid4()}.png",
        f"http://{n}\r\nHost: evil/api/v2/{asset}",
        f"http://１２７.0.0.1:{nekos.port}/api/v2/{asset}",
        f"http://{n}/api/v2/ｎeko/{uuid.uuid4()}.png",
        # not an asset at all on the right host (would be a request on the user's behalf)
        f"http://{n}/api/v2/endpoints",
        f"http://{n}/api/v2/search?query=abc&type=1",
        f"http://{n}/api/v2/neko",
        f"http://{n}/",
        "",
        "   ",
        "<>",
        "x" * 3000,
    ]


async def test_source_refuses_every_foreign_url(
    bot: RunningBot,
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    canary: Canary,
    logs: LogCapture,
) -> None:
    nekos.clear_records()
    for url in hostile_urls(nekos, canary):
        record = await discord_api.interact(discord_api.slash("source", {"url": url}))
        message = await answered(record, timeout=5)
        assert is_ephemeral(message), (url, message)
        assert "pwned" not in text_of(message)
    assert canary.hits == []
    assert file_requests(nekos) == [], "a request was sent for a refused URL"
    logs.assert_clean()


async def test_image_credit_menu_refuses_foreign_links(
    bot: RunningBot,
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    canary: Canary,
    logs: LogCapture,
) -> None:
    urls = hostile_urls(nekos, canary)
    nekos.clear_records()
    for start in range(0, len(urls), 8):
        content = "\n".join(urls[start : start + 8])
        target = discord_api.user_message(content[:2000])
        # links may also hide in embeds
        target["embeds"] = [
            {"type": "rich", "url": u, "image": {"url": u}}
            for u in urls[start : start + 3]
            if u.strip()
        ]
        record = await discord_api.interact(discord_api.message_command("Image credit", target))
        message = await answered(record, timeout=5)
        assert is_ephemeral(message)
    assert canary.hits == []
    assert file_requests(nekos) == []
    logs.assert_clean()


async def test_redirect_is_not_followed(
    bot: RunningBot,
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    canary: Canary,
    logs: LogCapture,
) -> None:
    """A legitimate asset URL whose answer redirects elsewhere: the redirect is not followed."""
    asset = f"{nekos.base_url}/neko/{uuid.uuid4()}.png"

    async def redirect(request: web.Request) -> web.Response | None:
        if request.path.startswith("/api/v2/neko/"):
            location = f"http://127.0.0.1:{canary.port}/stolen"
            return web.Response(status=302, headers={"Location": location})
        return None

    nekos.override = redirect
    nekos.clear_records()
    record = await discord_api.interact(discord_api.slash("source", {"url": asset}))
    message = await answered(record, timeout=10)
    assert is_ephemeral(message)
    assert canary.hits == []
    # the one legitimate request, nothing after it
    assert file_requests(nekos) == [asset.removeprefix(nekos.base_url)]
    logs.assert_clean()


@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    parts=st.lists(
        st.tuples(
            st.sampled_from(["http", "https", "HTTP", "ftp", "", "http:", "//"]),
            st.sampled_from(
                [
                    "{n}",
                    "{c}",
                    "{n}@{c}",
                    "{c}@{n}",
                    "user:pw@{n}",
                    "{n}:{cp}",
                    "[::1]:{np}",
                    "localhost:{np}",
                    "{n}.",
                    "{n}%00",
                ]
            ),
            st.sampled_from(["/api/v2/", "/api/v2", "/API/V2/", "/api/v2/../", "/", ""]),
            st.sampled_from(["neko/", "%6eeko/", "neko%2f", "../", "hug/", "neko/../"]),
            st.text(alphabet="0123456789abcdef-%./\\@:?#", max_size=40),
            st.sampled_from([".png", ".gif", ".PNG", ".png?x=1", ".png#@{c}", ""]),
        ),
        min_size=25,
        max_size=25,
    )
)
async def test_fuzz_source_urls(
    bot: RunningBot,
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    canary: Canary,
    logs: LogCapture,
    parts: list[tuple[str, ...]],
) -> None:
    """Random assemblies of scheme, authority, path and file: whatever is accepted goes to
    nekos.best only, under its API path; the canary never hears anything."""
    fill: dict[str, Any] = {
        "n": f"127.0.0.1:{nekos.port}",
        "c": f"127.0.0.1:{canary.port}",
        "np": nekos.port,
        "cp": canary.port,
    }
    for scheme, authority, base, category, name, ext in parts:
        url = f"{scheme}://{authority}{base}{category}{name}{ext}".format(**fill)
        record = await discord_api.interact(discord_api.slash("source", {"url": url}))
        await answered(record, timeout=10)
    assert canary.hits == []
    # (the warm-up refills of the pool are `/<category>` requests: not ours to judge here)
    for request in [r for r in nekos.requests if r.route.count("/") >= 2]:  # file requests
        assert request.route.startswith(("/neko/", "/hug/")), request.path
        assert "%" not in request.path and ".." not in request.path
        assert request.query == {}
    logs.assert_clean()

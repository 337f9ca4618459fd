"""Credentials in NEKOS_API_BASE are sent to that host but shown to nobody: not in answers, not
in the registered commands, not in any log line (not even as the Basic auth header's base64)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, bot_process
from tests.helpers import answered, image_url, is_ephemeral, text_of

USER, PASSWORD = "nekocord", "s3cret-pass"


async def test_credentials_in_the_nekos_url_reach_only_that_host(tmp_path: Path) -> None:
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        public = nekos.base_url
        base = public.replace("http://", f"http://{USER}:{PASSWORD}@")
        env = {"NEKOS_API_BASE": base, "LOG_LEVEL": "DEBUG"}
        async with bot_process(discord_api, nekos, tmp_path / "data", **env) as proc:
            await proc.wait_for_output("Ready as", timeout=30)
            hug = await answered(
                await discord_api.interact(discord_api.slash("hug", {"user": make_user()}))
            )
            assert image_url(hug)
            bad = await answered(
                await discord_api.interact(
                    discord_api.slash("source", {"url": "https://evil.example/neko/x.png"})
                )
            )
            await proc.stop()
            output = proc.output
    # Sent to nekos.best's host (a proxy may need them), as Basic auth.
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert any(r.headers.get("Authorization") == f"Basic {basic}" for r in nekos.requests)
    # Shown to nobody.
    assert is_ephemeral(bad)
    assert f"{public}/neko/<id>.png" in text_of(bad)
    registered = json.dumps(discord_api.commands)
    for secret in (PASSWORD, f"{USER}:{PASSWORD}", basic):
        assert secret not in text_of(bad) and secret not in text_of(hug)
        assert secret not in registered
        assert secret not in output, secret

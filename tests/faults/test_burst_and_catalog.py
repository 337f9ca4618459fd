"""A burst of 250 `/hug`, and the category list (`/endpoints`) unreachable or changing."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import DEFAULT_CATEGORIES, FakeNekos
from tests.harness import RunningBot, running_bot
from tests.helpers import (
    BREAKER_COOLDOWN,
    LogCapture,
    answered,
    assert_db_consistent,
    assert_no_pings,
    db_rows,
    image_url,
    is_ephemeral,
    says,
)


@pytest.mark.timeout(60)
async def test_burst_of_250_hugs(
    bot: RunningBot,
    discord_api: FakeDiscord,
    nekos: FakeNekos,
    data_dir: Path,
    logs: LogCapture,
) -> None:
    targets = [make_user(name=f"friend{i}") for i in range(10)]
    nekos.clear_records()
    started = time.monotonic()
    records = []
    for i in range(250):
        records.append(
            await discord_api.interact(discord_api.slash("hug", {"user": targets[i % 10]}))
        )
        await asyncio.sleep(0.008)  # 250 in about 2-3 s
    sent_in = time.monotonic() - started
    finals = await asyncio.gather(*(answered(r, timeout=20) for r in records))
    assert sent_in < 6, sent_in
    slowest = max(r.response_time or 99 for r in records)
    assert slowest < 3, slowest
    gifs = [f for f in finals if image_url(f)]
    assert len(gifs) == 250, [f["embeds"] for f in finals if not image_url(f)][:3]
    assert len({image_url(f) for f in gifs}) == 250, "a result was handed out twice"
    upstream = nekos.requests_to("/hug")
    assert len(upstream) <= 36, f"{len(upstream)} upstream requests for 250 hugs"
    assert not [r for r in nekos.requests if r.status == 429], "nekos.best answered 429"
    # every answer that showed a count is counted exactly once
    ids = {int(r.id) for r in records}
    rows = db_rows(data_dir, "SELECT action_id FROM processed_actions WHERE action = 'hug'")
    assert {row[0] for row in rows} == ids
    per_target = dict(
        db_rows(
            data_dir,
            "SELECT target_id, count FROM received_totals WHERE action = 'hug'",
        )
    )
    assert per_target == {int(t["id"]): 25 for t in targets}
    assert_db_consistent(data_dir)
    assert_no_pings(discord_api, [t["id"] for t in targets])
    logs.assert_clean()


def _disk_copy(data_dir: Path, categories: dict[str, str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    body = {name: {"format": fmt} for name, fmt in categories.items()}
    (data_dir / "categories.json").write_text(json.dumps(body))


@pytest.mark.parametrize("outage", ["5xx", "refused"])
async def test_endpoints_unreachable_at_start_uses_disk_copy(
    outage: str, discord_api: FakeDiscord, data_dir: Path, loop_errors: LogCapture
) -> None:
    categories = {**DEFAULT_CATEGORIES, "glomp": "gif"}
    async with FakeNekos(categories=categories) as nekos:
        _disk_copy(data_dir, categories)
        if outage == "5xx":
            nekos.fail(503, path="/endpoints")
        else:
            await nekos.stop()
        async with running_bot(
            discord_api, nekos, data_dir, breaker_cooldown=BREAKER_COOLDOWN
        ) as running:
            assert running.bot.catalog.source == "disk"
            names = {c["name"] for c in discord_api.commands[None]}
            assert "glomp" in names, "a category known only from the disk copy is a command"
            if outage == "refused":
                await nekos.start()
            await asyncio.sleep(BREAKER_COOLDOWN + 0.1)
            record = await discord_api.interact(
                discord_api.slash("glomp", {"user": make_user(name="x")})
            )
            final = await answered(record)
            assert image_url(final) and "/glomp/" in image_url(final), final
            hug = await answered(await discord_api.interact(discord_api.slash("hug")))
            assert image_url(hug)
            assert not (outage == "5xx" and nekos.count("/endpoints") == 0)
    loop_errors.assert_clean()


async def test_endpoints_unreachable_first_start_uses_snapshot(
    discord_api: FakeDiscord, data_dir: Path, loop_errors: LogCapture
) -> None:
    async with FakeNekos() as nekos:
        nekos.fail(500, path="/endpoints")
        async with running_bot(discord_api, nekos, data_dir) as running:
            assert running.bot.catalog.source == "snapshot"
            assert len(running.bot.catalog.categories) >= 40
            final = await answered(await discord_api.interact(discord_api.slash("wave")))
            assert image_url(final)
    loop_errors.assert_clean()


async def test_endpoints_change_while_running(
    bot: RunningBot, discord_api: FakeDiscord, nekos: FakeNekos, logs: LogCapture
) -> None:
    puts = discord_api.command_puts
    # A new category appears: it becomes a command, synced at once.
    nekos.add_category("glomp", "gif")
    added, removed = await bot.bot.catalog.refresh()
    assert [c.name for c in added] == ["glomp"] and not removed
    assert discord_api.command_puts == puts + 1
    assert "glomp" in {c["name"] for c in discord_api.commands[None]}
    final = await answered(
        await discord_api.interact(discord_api.slash("glomp", {"user": make_user(name="y")}))
    )
    assert image_url(final) and "/glomp/" in image_url(final)

    # A category disappears (confirmed by two replies in a row), pooled or not.
    nekos.remove_category("wave")
    nekos.remove_category("pat")
    assert await bot.bot.catalog.refresh() == ([], [])
    assert bot.bot.pool.size("pat") > 0
    added, removed = await bot.bot.catalog.refresh()
    assert sorted(c.name for c in removed) == ["pat", "wave"]
    names = {c["name"] for c in discord_api.commands[None]}
    assert "wave" not in names and "pat" not in names
    sent = nekos.count()
    # Users whose client still shows the old commands: "no longer available", ephemeral.
    stale = [
        discord_api.slash("wave"),
        discord_api.slash("pat", {"user": make_user(name="z")}),
        discord_api.slash("action", {"category": "wave"}),
    ]
    for payload in stale:
        record = await discord_api.interact(payload)
        message = await answered(record)
        assert is_ephemeral(message) and says(message, "error_category_gone"), message
        assert "no longer available" in message["embeds"][0]["description"]
    assert nekos.count() == sent
    # autocomplete no longer offers them
    record = await discord_api.interact(
        discord_api.autocomplete("action", "category", {"category": "wa"})
    )
    await record.wait_callback()
    assert "wave" not in {c["value"] for c in record.choices or []}

    # It comes back: usable again.
    nekos.add_category("wave", "gif")
    added, _ = await bot.bot.catalog.refresh()
    assert [c.name for c in added] == ["wave"]
    final = await answered(await discord_api.interact(discord_api.slash("wave")))
    assert image_url(final)
    logs.assert_clean()


async def test_endpoints_bad_reply_while_running_changes_nothing(
    bot: RunningBot, discord_api: FakeDiscord, nekos: FakeNekos, logs: LogCapture
) -> None:
    puts = discord_api.command_puts
    before = set(bot.bot.catalog.categories)
    for knob in ("malformed", "missing_fields"):
        setattr(nekos, knob, True)
        assert await bot.bot.catalog.refresh() == ([], [])
        nekos.heal()
    nekos.set_categories({"hug": "gif"})  # drops almost everything: rejected
    assert await bot.bot.catalog.refresh() == ([], [])
    assert set(bot.bot.catalog.categories) == before
    assert discord_api.command_puts == puts
    nekos.set_categories(dict(DEFAULT_CATEGORIES))
    await asyncio.sleep(BREAKER_COOLDOWN + 0.1)
    assert image_url(await answered(await discord_api.interact(discord_api.slash("wave"))))
    logs.assert_clean()

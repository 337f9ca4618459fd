"""Category discovery: network → disk → bundled snapshot; guarded refreshes; subscribers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.nekos import (
    Catalog,
    Category,
    Kind,
    NekosClient,
    NoSuchCategory,
    UnknownCategory,
    WrongKind,
    load_snapshot,
)
from bot.nekos.catalog import FILENAME
from tests.fakes.nekos import DEFAULT_CATEGORIES, FakeNekos
from tests.nekos.helpers import ClientFactory


def test_snapshot_is_the_documented_list() -> None:
    snapshot = load_snapshot()
    assert len(snapshot) == 63
    assert {n for n, c in snapshot.items() if c.kind is Kind.IMAGE} == {
        "husbando",
        "kitsune",
        "neko",
        "waifu",
    }
    assert {n: c.format for n, c in snapshot.items()} == DEFAULT_CATEGORIES
    assert all(c.format == "png" for c in snapshot.values() if c.kind is Kind.IMAGE)


async def test_load_from_network_saves_to_disk(
    client: NekosClient, nekos: FakeNekos, tmp_path: Path
) -> None:
    nekos.add_category("glomp")
    catalog = Catalog(client, data_dir=tmp_path / "data")
    assert await catalog.load() == "network"
    assert catalog.source == "network"
    assert list(catalog.categories) == list(nekos.categories)
    assert catalog.categories["glomp"] == Category("glomp", "gif")
    saved = json.loads((tmp_path / "data" / FILENAME).read_text("utf-8"))
    assert list(saved) == list(nekos.categories)
    assert saved["neko"] == {"format": "png"}
    assert [p.name for p in (tmp_path / "data").iterdir()] == [FILENAME]  # no temp left over
    assert catalog.names(Kind.IMAGE) == ["husbando", "kitsune", "neko", "waifu"]
    assert "glomp" in catalog and catalog.get("nope") is not None and len(catalog) == 64


async def test_load_from_disk_when_endpoints_fails(
    make_client: ClientFactory, nekos: FakeNekos, tmp_path: Path
) -> None:
    nekos.add_category("glomp")
    client = make_client(max_attempts=2)
    assert await Catalog(client, data_dir=tmp_path).load() == "network"
    nekos.fail(500, path="/endpoints")
    catalog = Catalog(client, data_dir=tmp_path)
    assert await catalog.load() == "disk"
    assert "glomp" in catalog and len(catalog) == 64
    assert catalog.last_error is not None
    # Other endpoints still work meanwhile.
    assert len(await client.random("glomp")) == 1


async def test_load_from_disk_when_unreachable(
    make_client: ClientFactory, nekos: FakeNekos, tmp_path: Path
) -> None:
    client = make_client(max_attempts=1)
    await Catalog(client, data_dir=tmp_path).load()
    await nekos.stop()
    catalog = Catalog(client, data_dir=tmp_path, budget=0.5)
    assert await catalog.load() == "disk"
    assert len(catalog) == 63


async def test_first_start_without_network_uses_snapshot(
    make_client: ClientFactory, nekos: FakeNekos, tmp_path: Path
) -> None:
    await nekos.stop()
    catalog = Catalog(make_client(max_attempts=1), data_dir=tmp_path, budget=0.5)
    assert await catalog.load() == "snapshot"
    assert catalog.categories == load_snapshot()
    assert not (tmp_path / FILENAME).exists()


async def test_corrupt_disk_copy_falls_back_to_snapshot(
    make_client: ClientFactory, nekos: FakeNekos, tmp_path: Path
) -> None:
    (tmp_path / FILENAME).write_text('{"hug": {"form', "utf-8")
    nekos.malformed = True
    catalog = Catalog(make_client(), data_dir=tmp_path)
    assert await catalog.load() == "snapshot"


async def test_start_up_reply_dropping_half_of_disk_copy_ignored(
    client: NekosClient, nekos: FakeNekos, tmp_path: Path
) -> None:
    await Catalog(client, data_dir=tmp_path).load()
    nekos.set_categories({"hug": "gif", "neko": "png"})
    catalog = Catalog(client, data_dir=tmp_path)
    assert await catalog.load() == "disk"
    assert len(catalog) == 63


async def test_refresh_reports_additions_to_subscribers(
    client: NekosClient, nekos: FakeNekos
) -> None:
    catalog = Catalog(client)
    await catalog.load()
    seen_sync: list[tuple[list[str], list[str]]] = []
    seen_async: list[tuple[list[str], list[str]]] = []

    def on_change(added: list[Category], removed: list[Category]) -> None:
        seen_sync.append(([c.name for c in added], [c.name for c in removed]))

    async def on_change_async(added: list[Category], removed: list[Category]) -> None:
        await asyncio.sleep(0)
        seen_async.append(([c.name for c in added], [c.name for c in removed]))

    def broken(added: list[Category], removed: list[Category]) -> None:
        raise RuntimeError("a subscriber bug must not stop the others")

    catalog.subscribe(broken)
    catalog.subscribe(on_change)
    unsubscribe = catalog.subscribe(on_change_async)
    assert await catalog.refresh() == ([], [])  # nothing changed: nobody told
    assert seen_sync == []
    nekos.add_category("glomp")
    nekos.add_category("kemonomimi", "png")
    added, removed = await catalog.refresh()
    assert [c.name for c in added] == ["glomp", "kemonomimi"] and removed == []
    assert catalog.categories["kemonomimi"].kind is Kind.IMAGE
    assert list(catalog.categories)[-2:] == ["glomp", "kemonomimi"]  # /endpoints order
    assert seen_sync == seen_async == [(["glomp", "kemonomimi"], [])]
    unsubscribe()
    nekos.add_category("zzz")
    await catalog.refresh()
    assert len(seen_sync) == 2 and len(seen_async) == 1


async def test_removal_needs_two_good_replies_in_a_row(
    client: NekosClient, nekos: FakeNekos, tmp_path: Path
) -> None:
    catalog = Catalog(client, data_dir=tmp_path)
    await catalog.load()
    events: list[tuple[list[str], list[str]]] = []
    catalog.subscribe(
        lambda a, r: events.append(([c.name for c in a], [c.name for c in r]))  # type: ignore[func-returns-value]
    )
    nekos.remove_category("yeet")
    assert await catalog.refresh() == ([], [])
    assert "yeet" in catalog  # first miss: kept on probation
    # It comes back: the count starts over.
    nekos.add_category("yeet")
    await catalog.refresh()
    nekos.remove_category("yeet")
    await catalog.refresh()
    assert "yeet" in catalog and events == []
    # A failed refresh in between changes nothing.
    nekos.fail(500, path="/endpoints")
    await catalog.refresh()
    nekos.heal()
    _added, removed = await catalog.refresh()
    assert [c.name for c in removed] == ["yeet"]
    assert "yeet" not in catalog
    assert events == [([], ["yeet"])]
    assert "yeet" not in json.loads((tmp_path / FILENAME).read_text("utf-8"))


async def test_reply_dropping_more_than_half_is_ignored(
    client: NekosClient, nekos: FakeNekos
) -> None:
    catalog = Catalog(client)
    await catalog.load()
    events: list[object] = []
    catalog.subscribe(lambda a, r: events.append((a, r)))  # type: ignore[func-returns-value]
    keep = dict(list(nekos.categories.items())[:31])  # drops 32 of 63
    nekos.set_categories(keep)
    for _ in range(3):
        assert await catalog.refresh() == ([], [])
    assert len(catalog) == 63 and events == []
    assert catalog.rejected_replies == 3
    # Dropping exactly half or less is believed (after the second reply).
    nekos.set_categories(dict(list(DEFAULT_CATEGORIES.items())[:32]))
    await catalog.refresh()
    _added, removed = await catalog.refresh()
    assert len(removed) == 31 and len(catalog) == 32


async def test_refresh_after_fallback_switches_to_network(
    make_client: ClientFactory, nekos: FakeNekos, tmp_path: Path
) -> None:
    nekos.fail(500, path="/endpoints")
    catalog = Catalog(make_client(max_attempts=1), data_dir=tmp_path)
    assert await catalog.load() == "snapshot"
    nekos.heal()
    nekos.add_category("glomp")
    added, _removed = await catalog.refresh()
    assert [c.name for c in added] == ["glomp"]
    assert catalog.source == "network"
    assert (tmp_path / FILENAME).exists()


async def test_periodic_refresh_start_and_stop(client: NekosClient, nekos: FakeNekos) -> None:
    catalog = Catalog(client, refresh_interval=0.05)
    await catalog.load()
    changed = asyncio.Event()
    catalog.subscribe(lambda a, r: changed.set())
    catalog.start()
    catalog.start()  # idempotent
    nekos.add_category("glomp")
    await asyncio.wait_for(changed.wait(), 2.0)
    assert "glomp" in catalog
    await catalog.aclose()
    count = nekos.count("/endpoints")
    await asyncio.sleep(0.15)
    assert nekos.count("/endpoints") == count  # stopped


async def test_retry_sooner_while_on_fallback(make_client: ClientFactory, nekos: FakeNekos) -> None:
    nekos.fail(500, path="/endpoints", times=1)
    catalog = Catalog(make_client(max_attempts=1), refresh_interval=3600.0, retry_interval=0.05)
    assert await catalog.load() == "snapshot"
    catalog.start()
    try:
        for _ in range(100):
            if catalog.source == "network":
                break
            await asyncio.sleep(0.02)
        assert catalog.source == "network"
    finally:
        await catalog.aclose()


async def test_unwritable_data_dir_is_not_fatal(
    client: NekosClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    catalog = Catalog(client, data_dir=blocker / "sub")
    assert await catalog.load() == "network"
    assert "could not save" in caplog.text


# -- answering for a name ------------------------------------------------------------------


async def test_require_tells_gone_from_never_was_and_wrong_kind(
    client: NekosClient, nekos: FakeNekos
) -> None:
    catalog = Catalog(client)
    await catalog.load()
    assert catalog.require("neko") == Category("neko", "png")
    assert catalog.require("hug", Kind.GIF) == Category("hug", "gif")
    with pytest.raises(WrongKind) as wrong:
        catalog.require("hug", Kind.IMAGE)
    assert (wrong.value.category, wrong.value.expected, wrong.value.actual) == (
        "hug",
        Kind.IMAGE,
        Kind.GIF,
    )
    with pytest.raises(NoSuchCategory) as never:
        catalog.require("yeeet")
    assert never.value.category == "yeeet" and not catalog.is_gone("yeeet")

    nekos.remove_category("yeet")
    await catalog.refresh()
    assert catalog.require("yeet").name == "yeet"  # on probation: still served
    await catalog.refresh()
    with pytest.raises(UnknownCategory) as gone:
        catalog.require("yeet", Kind.GIF)
    assert gone.value.category == "yeet" and catalog.is_gone("yeet")
    assert not isinstance(gone.value, NoSuchCategory)

    nekos.add_category("yeet")  # nekos.best brings it back
    await catalog.refresh()
    assert catalog.require("yeet").name == "yeet" and not catalog.is_gone("yeet")


async def test_live_lists_by_kind_without_copying(client: NekosClient, nekos: FakeNekos) -> None:
    catalog = Catalog(client)
    assert list(catalog.live()) == [] and list(catalog.live(Kind.GIF)) == []  # before load()
    await catalog.load()
    gifs = catalog.live(Kind.GIF)
    assert catalog.live(Kind.GIF) is gifs  # the same sequence until the list changes
    assert [c.name for c in catalog.live(Kind.IMAGE)] == ["husbando", "kitsune", "neko", "waifu"]
    assert [c.name for c in gifs] == [n for n, f in nekos.categories.items() if f == "gif"]
    assert list(catalog.live()) == list(catalog.categories.values())

    nekos.add_category("glomp")
    nekos.remove_category("yeet")
    await catalog.refresh()
    assert catalog.live(Kind.GIF) is not gifs
    assert "glomp" in [c.name for c in catalog.live(Kind.GIF)]
    assert "yeet" in [c.name for c in catalog.live()]  # on probation
    await catalog.refresh()
    names = [c.name for c in catalog.live(Kind.GIF)]
    assert "yeet" not in names and "glomp" in names
    assert len(catalog.live()) == len(catalog) == 63


async def test_categories_is_a_read_only_view(client: NekosClient) -> None:
    catalog = Catalog(client)
    await catalog.load()
    view = catalog.categories
    with pytest.raises(TypeError):
        view["fake"] = Category("fake", "gif")  # type: ignore[index]
    assert "fake" not in catalog


async def test_removed_while_away_is_gone_at_start_up(
    client: NekosClient, nekos: FakeNekos, tmp_path: Path
) -> None:
    nekos.add_category("glomp")
    await Catalog(client, data_dir=tmp_path).load()
    nekos.remove_category("glomp")
    catalog = Catalog(client, data_dir=tmp_path)
    assert await catalog.load() == "network"
    with pytest.raises(UnknownCategory):
        catalog.require("glomp")
    # A catalog with no saved list cannot know: the name simply is not a category.
    fresh = Catalog(client)
    await fresh.load()
    with pytest.raises(NoSuchCategory):
        fresh.require("glomp")

"""The four endpoints, typed results and errors, validation, User-Agent, session ownership."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from aiohttp import web

from bot.nekos import (
    ATTEMPT_TIMEOUT,
    BadRequest,
    Category,
    Credit,
    Forbidden,
    Kind,
    NekosClient,
    NotFound,
    Result,
    Unavailable,
    UnknownCategory,
    make_session,
)
from tests.fakes.nekos import ARTISTS, FakeNekos
from tests.nekos.helpers import CONTACT, VERSION, ClientFactory

# -- endpoints -----------------------------------------------------------------------------


async def test_endpoints_lists_categories_in_order(client: NekosClient, nekos: FakeNekos) -> None:
    nekos.add_category("glomp", "gif")
    categories = await client.endpoints()
    assert list(categories) == list(nekos.categories)
    assert categories["hug"] == Category("hug", "gif")
    assert categories["neko"].kind is Kind.IMAGE
    assert categories["glomp"].kind is Kind.GIF
    assert len([c for c in categories.values() if c.kind is Kind.GIF]) == 60


async def test_endpoints_wrong_shape_is_unavailable(client: NekosClient, nekos: FakeNekos) -> None:
    nekos.missing_fields = True
    with pytest.raises(Unavailable):
        await client.endpoints()


# -- random --------------------------------------------------------------------------------


async def test_random_gif_results(client: NekosClient, nekos: FakeNekos) -> None:
    results = await client.random("hug", amount=20)
    assert len(results) == 20
    assert len({r.url for r in results}) == 20
    for r in results:
        assert isinstance(r, Result)
        assert r.category == "hug"
        assert r.url.startswith(f"{nekos.base_url}/hug/") and r.url.endswith(".gif")
        assert r.credit.anime_name
        assert r.credit.artist_name is None
        assert client.is_asset_url(r.url)
    assert any(r.width for r in results) and any(r.width is None for r in results)
    assert nekos.requests[-1].query == {"amount": "20"}


async def test_random_image_results(client: NekosClient) -> None:
    results = await client.random("neko", amount=5)
    for r in results:
        assert r.url.endswith(".png")
        assert r.credit.artist_name and r.credit.artist_href and r.credit.source_url
        assert r.credit.anime_name is None


async def test_results_are_frozen(client: NekosClient) -> None:
    [result] = await client.random("pat")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.url = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.credit.anime_name = "x"  # type: ignore[misc]


async def test_unknown_extra_fields_ignored_and_metadata_optional(
    client: NekosClient, nekos: FakeNekos
) -> None:
    def odd(request: web.Request) -> web.Response | None:
        if request.path.endswith("/hug"):
            return web.json_response(
                {
                    "results": [
                        {"url": f"{nekos.base_url}/hug/a.gif", "brand_new": {"x": 1}},
                        {
                            "url": f"{nekos.base_url}/hug/b.gif",
                            "anime_name": 42,
                            "dimensions": {"width": "wide"},
                        },
                        {"url": f"{nekos.base_url}/hug/c.gif", "dimensions": [1, 2]},
                    ],
                    "next": "ignored",
                }
            )
        return None

    nekos.override = odd
    results = await client.random("hug", amount=3)
    assert [r.credit for r in results] == [Credit()] * 3
    assert all(r.width is None and r.height is None for r in results)
    assert results[0].credit.is_empty


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"results": {"url": "x"}}',
        b'{"results": [null]}',
        b'{"results": [{"anime_name": "no url"}]}',
        b'{"results": [{"url": 5}]}',
        b'"results"',
        b"",
        b"<html>Bad gateway</html>",
    ],
)
async def test_bad_shapes_raise_unavailable(
    client: NekosClient, nekos: FakeNekos, body: bytes
) -> None:
    nekos.override = lambda request: web.Response(body=body, content_type="application/json")
    with pytest.raises(Unavailable):
        await client.random("hug")
    assert nekos.count("/hug") == 1  # garbage is not retried


async def test_malformed_and_missing_fields_knobs(client: NekosClient, nekos: FakeNekos) -> None:
    nekos.malformed = True
    with pytest.raises(Unavailable):
        await client.random("hug")
    with pytest.raises(Unavailable):
        await client.search("Nichijou", "gifs")
    nekos.malformed = False
    nekos.missing_fields = True
    with pytest.raises(Unavailable):
        await client.random("hug")
    with pytest.raises(Unavailable):
        await client.search("Nichijou", "gifs")


async def test_unknown_category_404(client: NekosClient, nekos: FakeNekos) -> None:
    with pytest.raises(UnknownCategory) as info:
        await client.random("glomp")
    assert info.value.category == "glomp"
    assert nekos.count("/glomp") == 1
    nekos.add_category("glomp")
    assert len(await client.random("glomp")) == 1


# -- validation before any request ---------------------------------------------------------


@pytest.mark.parametrize("amount", [0, 21, -1, True, 2.0, "3"])
async def test_amount_validated_locally(client: NekosClient, nekos: FakeNekos, amount) -> None:
    with pytest.raises(BadRequest):
        await client.random("hug", amount=amount)
    with pytest.raises(BadRequest):
        await client.search("Nichijou", "gifs", amount=amount)
    assert nekos.requests == []


@pytest.mark.parametrize("query", ["", "ab", "  ab  ", "x" * 151, "  " + "y" * 151 + " "])
async def test_query_length_validated_locally(
    client: NekosClient, nekos: FakeNekos, query: str
) -> None:
    with pytest.raises(BadRequest):
        await client.search(query, "gifs")
    assert nekos.requests == []


async def test_query_trimmed_and_bounds_accepted(client: NekosClient, nekos: FakeNekos) -> None:
    await client.search("  abc  ", "gifs")
    assert nekos.requests[-1].query["query"] == "abc"
    await client.search("z" * 150, "images")
    assert len(nekos.requests) == 2


@pytest.mark.parametrize("kind", ["videos", "", 3, None])
async def test_bad_kind_validated_locally(client: NekosClient, nekos: FakeNekos, kind) -> None:
    with pytest.raises(BadRequest):
        await client.search("Nichijou", kind)
    assert nekos.requests == []


@pytest.mark.parametrize("category", ["Hug", "../endpoints", "hug/x", "", "hug?amount=20", "ha g"])
async def test_bad_category_names_refused_locally(
    client: NekosClient, nekos: FakeNekos, category: str
) -> None:
    with pytest.raises(UnknownCategory):
        await client.random(category)
    with pytest.raises(UnknownCategory):
        await client.search("Nichijou", "gifs", category=category)
    assert nekos.requests == []


async def test_bad_budget_refused(client: NekosClient, nekos: FakeNekos) -> None:
    for budget in (0, -1, float("nan")):
        with pytest.raises(BadRequest):
            await client.random("hug", budget=budget)
    assert nekos.requests == []


# -- search --------------------------------------------------------------------------------


async def test_search_gifs_by_anime(client: NekosClient, nekos: FakeNekos) -> None:
    results = await client.search("bocchi", Kind.GIF, amount=4)
    assert len(results) == 4
    assert all(r.credit.anime_name == "Bocchi the Rock!" for r in results)
    assert all(r.url.endswith(".gif") and r.category in nekos.categories for r in results)
    assert nekos.requests[-1].query == {"query": "bocchi", "type": "2", "amount": "4"}


async def test_search_images_by_japanese_artist_with_category(
    client: NekosClient, nekos: FakeNekos
) -> None:
    results = await client.search("ぽてと", "images", category="waifu", amount=3)
    assert [r.category for r in results] == ["waifu"] * 3
    assert all(r.credit.artist_name == "ぽてと" for r in results)
    assert nekos.requests[-1].query["category"] == "waifu"
    assert nekos.requests[-1].query["type"] == "1"


async def test_search_no_match_is_empty(client: NekosClient) -> None:
    assert await client.search("zzzz-nothing", "gifs", amount=20) == []


async def test_search_unknown_category(client: NekosClient) -> None:
    with pytest.raises(UnknownCategory):
        await client.search("Nichijou", "gifs", category="glomp")


# -- credit --------------------------------------------------------------------------------


@pytest.mark.parametrize("artist", ARTISTS)
async def test_credit_headers_round_trip(
    client: NekosClient, nekos: FakeNekos, artist: str
) -> None:
    [result] = await client.search(artist, "images")
    credit = await client.credit(result.url)
    asset = nekos.assets[result.url]
    assert credit == Credit(
        artist_name=artist, artist_href=asset.artist_href, source_url=asset.source_url
    )
    assert credit == result.credit
    # The raw header really was URL-encoded (percent-encoded UTF-8, `+` for spaces).
    assert nekos.requests[-1].route == f"/{asset.category}/{asset.filename}"


async def test_credit_gif_anime(client: NekosClient) -> None:
    results = await client.search("Love + Chunibyo", "gifs")
    assert (await client.credit(results[0].url)).anime_name == "Love + Chunibyo"
    results = await client.search("ゆるキャン", "gifs")
    assert (await client.credit(results[0].url)).anime_name == "ゆるキャン△"


async def test_credit_decodes_plus_and_percent(client: NekosClient, nekos: FakeNekos) -> None:
    def headers(request: web.Request) -> web.Response | None:
        if request.path.endswith(".png"):
            return web.Response(
                body=b"\x89PNG",
                headers={
                    "artist_name": "%E3%81%BD%E3%81%A6%E3%81%A8+and+C%2B%2B",
                    "artist_href": "https%3A%2F%2Fexample.com%2Fa%3Fb%3Dc%2Bd",
                    "source_url": "",
                },
            )
        return None

    nekos.override = headers
    credit = await client.credit(f"{nekos.base_url}/neko/abc.png")
    assert credit.artist_name == "ぽてと and C++"
    assert credit.artist_href == "https://example.com/a?b=c+d"
    assert credit.source_url is None and credit.anime_name is None


async def test_credit_rejects_foreign_urls_without_request(
    client: NekosClient, nekos: FakeNekos
) -> None:
    [result] = await client.random("hug")
    before = len(nekos.requests)
    port = nekos.port
    for url in [
        "https://nekos.best/api/v2/hug/abc.gif",  # another base
        result.url.replace("127.0.0.1", "localhost"),
        result.url.replace(f":{port}", f":{port + 1}"),
        result.url.replace("http://", "http://nekos.best@"),
        result.url.replace("/hug/", "/hug/%2e%2e/"),
        result.url + "/../../endpoints",
        result.url.replace(".gif", ".svg"),
        "javascript:alert(1)",
    ]:
        with pytest.raises(BadRequest):
            await client.credit(url)
    assert len(nekos.requests) == before


async def test_credit_ignores_query_and_sends_canonical_url(
    client: NekosClient, nekos: FakeNekos
) -> None:
    [result] = await client.random("hug")
    credit = await client.credit(result.url + "?x=1&next=https://evil.example/#frag")
    assert credit.anime_name == result.credit.anime_name
    assert nekos.requests[-1].query == {}


async def test_credit_unknown_asset_not_found(client: NekosClient, nekos: FakeNekos) -> None:
    with pytest.raises(NotFound):
        await client.credit(f"{nekos.base_url}/hug/00000000-dead-beef-0000-000000000000.gif")
    assert nekos.count(prefix=True, route="/hug/") == 1


async def test_credit_does_not_follow_redirects(client: NekosClient, nekos: FakeNekos) -> None:
    [result] = await client.random("hug")

    def redirect(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith(".gif"):
            return web.Response(status=302, headers={"Location": "http://127.0.0.1:1/steal"})
        return None

    nekos.override = redirect
    with pytest.raises(Unavailable):
        await client.credit(result.url)
    assert nekos.count(prefix=True, route="/hug/") == 1


async def test_credit_does_not_read_large_bodies(client: NekosClient, nekos: FakeNekos) -> None:
    [result] = await client.random("hug")
    big = b"GIF89a" + b"\0" * (8 * 1024 * 1024)

    async def huge(request: web.Request) -> web.StreamResponse | None:
        if not request.path.endswith(".gif"):
            return None
        response = web.StreamResponse(headers={"anime_name": "Big+One"})
        response.content_length = len(big)
        await response.prepare(request)
        try:
            for i in range(0, len(big), 65536):
                await response.write(big[i : i + 65536])
        except (ConnectionError, RuntimeError):
            pass
        return response

    nekos.override = huge
    credit = await client.credit(result.url)
    assert credit.anime_name == "Big One"
    # The connection is released (closed) and the client keeps working.
    assert len(await client.random("hug")) == 1


# -- User-Agent ----------------------------------------------------------------------------


async def test_user_agent_on_every_request_and_contact_later(
    make_client: ClientFactory, nekos: FakeNekos
) -> None:
    client = make_client(contact=None)
    assert client.user_agent == f"nekocord/{VERSION} (+self-hosted; contact pending)"
    await client.endpoints()
    [result] = await client.random("hug")
    invite = "https://discord.com/oauth2/authorize?client_id=1234567890"
    client.set_contact(invite)
    await client.credit(result.url)
    await client.search("Nichijou", "gifs")
    agents = [r.headers.get("User-Agent") for r in nekos.requests]
    assert agents == [
        f"nekocord/{VERSION} (+self-hosted; contact pending)",
        f"nekocord/{VERSION} (+self-hosted; contact pending)",
        f"nekocord/{VERSION} ({invite})",
        f"nekocord/{VERSION} ({invite})",
    ]
    assert all(r.status == 200 for r in nekos.requests)


async def test_contact_is_sanitised(make_client: ClientFactory) -> None:
    client = make_client(contact="me@example.com\r\nX-Evil: 1 (yes)")
    assert "\r" not in client.user_agent and "\n" not in client.user_agent
    assert client.user_agent.count("(") == 1


async def test_fake_rejects_library_default_user_agents(
    session: aiohttp.ClientSession, nekos: FakeNekos
) -> None:
    for headers in [
        {},
        {"User-Agent": "Python/3.11 aiohttp/3.14"},
        {"User-Agent": "python-requests/2.32"},
        {"User-Agent": "bot"},
        {"User-Agent": "Discord Bot (x)"},
        {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"},
        {"User-Agent": "nekocord/1.0"},
    ]:
        async with session.get(f"{nekos.base_url}/endpoints", headers=headers) as resp:
            assert resp.status == 403, headers


async def test_forbidden_is_typed_and_not_retried(
    make_client: ClientFactory, nekos: FakeNekos
) -> None:
    client = make_client(app_name="bot")
    with pytest.raises(Forbidden):
        await client.random("hug")
    assert nekos.count("/hug") == 1


# -- session ownership ---------------------------------------------------------------------


async def test_borrowed_session_is_not_closed(nekos: FakeNekos) -> None:
    async with make_session() as session:
        async with NekosClient(session, base_url=nekos.base_url, contact=CONTACT) as client:
            await client.random("hug")
        assert not session.closed


async def test_own_session_is_closed(nekos: FakeNekos) -> None:
    client = NekosClient(base_url=nekos.base_url, contact=CONTACT)
    async with client:
        await client.random("hug")
        session = client.transport.session
    assert session.closed


async def test_make_session_settings() -> None:
    async with make_session() as session:
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert connector.limit == 100 and connector.limit_per_host == 32
        assert session.timeout.connect == 1.5
        # One attempt outlasts a slow (5 s) nekos.best; the session's read timeout allows it.
        assert session.timeout.sock_read == ATTEMPT_TIMEOUT > 5
        assert NekosClient(session).transport.attempt_timeout == ATTEMPT_TIMEOUT


async def test_stats_count_requests_per_bucket(client: NekosClient, nekos: FakeNekos) -> None:
    [result] = await client.random("hug")
    await client.random("hug")
    await client.random("pat")
    await client.search("Nichijou", "gifs")
    await client.credit(result.url)
    await client.endpoints()
    assert dict(client.stats.requests) == {
        "category:hug": 2,
        "category:pat": 1,
        "search": 1,
        "file": 1,
        "endpoints": 1,
    }
    assert client.stats.total_requests == len(nekos.requests) == 6
    assert client.stats.as_dict()["statuses"] == {200: 6}

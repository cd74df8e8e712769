"""The dashboard's pages over HTTP: headers, errors, the shared stylesheet, PostgreSQL down.

Against the real service on a crawled database (``api_server``), and a service whose
PostgreSQL is not there. The browser test covers what the pages show.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pycountry
import pytest

from advisories.render import stylesheet
from advisories.sources import source_ids
from api.dashboard import CSP
from tests.conftest import free_port
from tests.integration.api.conftest import start_api

pytestmark = pytest.mark.integration

PAGES = ["/", "/?source=strictest", "/changes", "/sources"]


@pytest.fixture
async def client(api_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server, timeout=20) as c:
        yield c


async def a_stored_country(client: httpx.AsyncClient) -> str:
    response = await client.get("/v1/advisories")
    return str(sorted(a["country"] for a in response.json()["advisories"])[0])


async def test_every_page_is_html_with_the_security_headers(client: httpx.AsyncClient) -> None:
    country = await a_stored_country(client)
    for path in [*PAGES, *(f"/?source={s}" for s in source_ids()), f"/countries/{country}"]:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:200])
        assert response.headers["content-type"].startswith("text/html"), path
        csp = response.headers["content-security-policy"]
        for directive in ("default-src 'none'", "style-src 'self'", "frame-ancestors 'none'"):
            assert directive in csp, (path, csp)
        assert "unsafe-inline" not in csp and "script-src" not in csp  # no script at all
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        # Nothing inline that the policy would have to allow.
        assert "<script" not in response.text and " style=" not in response.text, path


async def test_every_navigation_link_answers_and_api_is_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/")).text
    nav = re.search(r'<nav aria-label="pages">(.*?)</nav>', page, re.S)
    assert nav is not None
    links = dict(
        (html.unescape(text), html.unescape(href))
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav[1])
    )
    assert set(links) == {"Map", "Changes", "Sources", "API"}, links
    for href in links.values():
        assert (await client.get(href)).status_code == 200, href
    # The API link describes the API; it is not a multi-megabyte data dump for a browser.
    api = await client.get(links["API"])
    assert api.json()["openapi"].startswith("3."), links["API"]


async def test_country_codes_in_any_form_and_unknown_ones(client: httpx.AsyncClient) -> None:
    country = await a_stored_country(client)
    found = pycountry.countries.get(alpha_2=country)
    assert found is not None, country
    alpha3 = found.alpha_3
    for code in (country.lower(), alpha3, alpha3.lower()):
        response = await client.get(f"/countries/{code}")
        assert response.status_code == 200, code
        assert f'<span class="code">{country}</span>' in response.text
    for code, message in (("QQ", "unknown country code"), ("1234", "invalid country code")):
        response = await client.get(f"/countries/{code}")
        assert response.status_code == 404
        assert message in response.text
        assert response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/?source=atlantis", "unknown source &#39;atlantis&#39;"),
        ("/changes?source=atlantis", "unknown source &#39;atlantis&#39;"),
        ("/changes?kind=bogus", "unknown kind &#39;bogus&#39;"),
        ("/changes?since=yesterday", "is not a date or time"),
        ("/changes?country=QQ", "unknown country code"),
        ("/changes?before=x1", "is not a change id"),
    ],
)
async def test_bad_filters_are_a_400_page_with_one_clear_message(
    client: httpx.AsyncClient, path: str, message: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 400
    assert message in response.text
    assert "Traceback" not in response.text


async def test_changes_are_paged_newest_first_without_overlap_or_gap(
    client: httpx.AsyncClient,
) -> None:
    api = (await client.get("/v1/changes", params={"limit": 500})).json()["changes"]
    expected = [c["id"] for c in api]
    assert 50 < len(expected) < 500, "the crawl should give a few pages of changes"
    shown: list[int] = []
    path: str | None = "/changes"
    while path is not None:
        page = await client.get(path)
        assert page.status_code == 200, path
        shown += [int(i) for i in re.findall(r'data-change="(\d+)"', page.text)]
        older = re.search(r'<a href="([^"]+)">older →</a>', page.text)
        path = html.unescape(older.group(1)) if older else None
    assert shown == expected  # newest first, each once, none missing


async def test_shared_stylesheet_is_served_with_an_etag(client: httpx.AsyncClient) -> None:
    response = await client.get("/assets/base.css")
    assert response.status_code == 200
    assert response.text == str(stylesheet())
    assert response.headers["content-type"].startswith("text/css")
    again = await client.get(
        "/assets/base.css", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    static = await client.get("/static/dashboard.css")
    assert static.status_code == 200 and ".worldmap" in static.text


async def test_pages_answer_503_while_postgresql_is_unreachable(tmp_path: Path) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/advisories"
    with start_api(nowhere, log_dir=tmp_path, wait_healthy=False) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            for _ in range(200):  # the process starts; PostgreSQL never answers
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            for path in [*PAGES, "/countries/FR"]:
                response = await client.get(path)
                assert_unavailable_page(response, path)
            # The API and the health check keep their one-line JSON error.
            for path in ("/v1/advisories", "/healthz"):
                response = await client.get(path)
                assert response.status_code == 503, path
                assert response.headers["retry-after"]
                assert response.headers["content-type"] == "application/json"
                assert response.json() == {"error": "database unavailable; retry later"}


def assert_unavailable_page(response: httpx.Response, path: str) -> None:
    """A 503 for a browser: the dashboard's HTML error page, its headers and Retry-After."""
    assert response.status_code == 503, (path, response.text[:200])
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"].startswith("text/html"), path
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "<h1>Temporarily unavailable</h1>" in response.text, path
    assert '<a class="brand" href="/">' in response.text  # the shared layout, navigation and all
    assert "<script" not in response.text and " style=" not in response.text


async def test_map_page_is_sent_gzipped_to_who_accepts_it(client: httpx.AsyncClient) -> None:
    plain = await client.get("/", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    refused = await client.get("/", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers
    packed = await client.get("/", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["vary"]
    assert packed.text == plain.text  # httpx decoded it
    assert int(packed.headers["content-length"]) < len(plain.content) / 2


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    for path in [*PAGES, "/assets/base.css"]:
        got = await client.get(path, headers={"Accept-Encoding": "identity"})
        head = await client.head(path, headers={"Accept-Encoding": "identity"})
        assert head.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers.get("content-security-policy") == got.headers.get(
            "content-security-policy"
        )

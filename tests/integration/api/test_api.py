"""The advisory API over HTTP, on a database filled by a real crawl (nothing mocked).

Every expectation is computed from the stored rows, read here with plain SQL, never typed
in: the service must show what the scheduler stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
import httpx
import pycountry
import pytest

from advisories.sources import SOURCES, source_ids
from tests.integration.api.conftest import start_api
from tests.integration.api.helpers import store_new_version, wait_until

pytestmark = pytest.mark.integration

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
async def client(api_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the package's service."""
    async with httpx.AsyncClient(base_url=api_server, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
async def db(crawled_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the crawled database, for the expectations."""
    conn = await asyncpg.connect(crawled_database_url)
    try:
        yield conn
    finally:
        await conn.close()


def parse_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def cell(value: Any) -> str:
    """How a JSON value appears in the CSV."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def assert_one_line_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text and "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    return str(body["error"])


async def by_source(db: asyncpg.Connection, sql: str) -> dict[str, Any]:
    return {r[0]: r[1] for r in await db.fetch(sql)}


# --------------------------------------------------------------------------- sources


async def test_sources_report_each_registered_source(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    response = await client.get("/v1/sources")
    assert response.status_code == 200
    sources = response.json()["sources"]
    assert [s["id"] for s in sources] == source_ids()
    counts = await by_source(db, "SELECT source, count(*) FROM advisories GROUP BY source")
    open_letters = await by_source(
        db,
        "SELECT source, count(*) FROM dead_letter_jobs"
        " WHERE status IN ('open', 'requeued') GROUP BY source",
    )
    last_success = await by_source(
        db,
        "SELECT source, max(coalesce(finished_at, started_at)) FROM scrape_jobs"
        " WHERE kind = 'index' AND status = 'success' GROUP BY source",
    )
    for s in sources:
        spec = SOURCES[s["id"]]
        assert s["name"] == spec.name
        assert s["priority"] == spec.priority.value
        assert s["task_queue"] == spec.priority.task_queue
        assert s["schedule"]["every_seconds"] == spec.priority.interval.total_seconds()
        assert s["advisories"] == counts[s["id"]]
        assert s["dead_letters_open"] == open_letters.get(s["id"], 0)
        assert datetime.fromisoformat(s["last_success_at"]) == last_success[s["id"]]
        # Just crawled: fresh, and every fetch of the crawl succeeded.
        assert s["freshness"]["stale"] is False
        assert 0 <= s["freshness"]["age_seconds"] < s["freshness"]["limit_seconds"]
        assert s["success_rate_24h"] == 100.0 and s["fetches_finished_24h"] >= 1

    rows = parse_csv(await client.get("/v1/sources", params={"format": "csv"}))
    assert [r["id"] for r in rows] == source_ids()
    assert [int(r["advisories"]) for r in rows] == [s["advisories"] for s in sources]


# --------------------------------------------------------------------------- advisories


async def test_advisories_list_and_filters(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    stored = await db.fetch(
        "SELECT source, country, level, version_id FROM advisories ORDER BY source, country"
    )
    everything = (await client.get("/v1/advisories")).json()["advisories"]
    assert [(a["source"], a["country"], a["level"], a["version_id"]) for a in everything] == [
        tuple(r) for r in stored
    ]

    uk = (await client.get("/v1/advisories", params={"source": "uk_foreign_office"})).json()
    assert [a["country"] for a in uk["advisories"]] == [
        r["country"] for r in stored if r["source"] == "uk_foreign_office"
    ]
    high = (await client.get("/v1/advisories", params={"min_level": 3})).json()["advisories"]
    assert {(a["source"], a["country"]) for a in high} == {
        (r["source"], r["country"]) for r in stored if r["level"] >= 3
    }
    assert high and all(a["level"] >= 3 for a in high)

    # Alpha-2, alpha-3 and lower case name the same country.
    by_code = [
        (await client.get("/v1/advisories", params={"country": code})).json()
        for code in ("FR", "fra", "fr")
    ]
    assert by_code[0] == by_code[1] == by_code[2]
    assert {a["source"] for a in by_code[0]["advisories"]} == {
        r["source"] for r in stored if r["country"] == "FR"
    }

    newest = max(datetime.fromisoformat(a["changed_at"]) for a in everything)
    later = (
        await client.get(
            "/v1/advisories", params={"changed_since": (newest + timedelta(seconds=1)).isoformat()}
        )
    ).json()
    assert later["advisories"] == []
    since_newest = (
        await client.get("/v1/advisories", params={"changed_since": newest.isoformat()})
    ).json()["advisories"]
    assert since_newest and all(
        a["changed_at"] == since_newest[0]["changed_at"] for a in since_newest
    )


async def test_advisories_csv_matches_json(client: httpx.AsyncClient) -> None:
    as_json = (await client.get("/v1/advisories")).json()["advisories"]
    # Accept: text/csv and ?format=csv are the same representation.
    by_accept = await client.get("/v1/advisories", headers={"Accept": "text/csv"})
    by_param = await client.get("/v1/advisories", params={"format": "csv"})
    assert by_accept.content == by_param.content
    assert by_accept.headers["etag"] != (await client.get("/v1/advisories")).headers["etag"]
    assert by_accept.headers["vary"] == "Accept, Accept-Encoding"
    rows = parse_csv(by_accept)
    assert list(rows[0]) == list(as_json[0])
    assert len(rows) == len(as_json)
    for row, item in zip(rows, as_json, strict=True):
        for key, value in item.items():
            if key.endswith("_at"):
                assert datetime.fromisoformat(row[key]) == datetime.fromisoformat(value)
            else:
                assert row[key] == cell(value), key


async def test_list_has_summaries_only_when_asked(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    compact = (await client.get("/v1/advisories")).json()["advisories"]
    full = (await client.get("/v1/advisories", params={"include": "summary"})).json()["advisories"]
    assert compact and all("summary" not in a for a in compact)
    # The same rows, each with exactly one more field: the summary.
    assert [{k: v for k, v in a.items() if k != "summary"} for a in full] == compact
    assert all(set(a) - set(c) == {"summary"} for a, c in zip(full, compact, strict=True))
    # The content hash is the stored version's.
    hashes = await db.fetch(
        "SELECT a.source, a.country, v.content_hash FROM advisories a"
        " JOIN advisory_versions v ON v.id = a.version_id"
    )
    assert {(a["source"], a["country"]): a["content_hash"] for a in compact} == {
        (r["source"], r["country"]): r["content_hash"] for r in hashes
    }
    # Each summary is the one the country's own view shows for that source.
    for code in sorted({a["country"] for a in full}):
        view = (await client.get(f"/v1/countries/{code}")).json()
        assert {s["source"]: s["summary"] for s in view["sources"]} == {
            a["source"]: a["summary"] for a in full if a["country"] == code
        }, code
    assert any(a["summary"] for a in full)
    # Filters compose with include, and the compact list is the smaller representation.
    uk = await client.get(
        "/v1/advisories", params={"source": "uk_foreign_office", "include": "summary"}
    )
    assert [a for a in full if a["source"] == "uk_foreign_office"] == uk.json()["advisories"]
    plain = await client.get("/v1/advisories")
    with_summary = await client.get("/v1/advisories", params={"include": "summary"})
    assert len(plain.content) < len(with_summary.content)
    assert plain.headers["etag"] != with_summary.headers["etag"]
    assert_one_line_error(await client.get("/v1/advisories", params={"include": "body"}), 422)

    # The CSV follows: no summary column by default, the summary last with include=summary.
    rows = parse_csv(await client.get("/v1/advisories", params={"format": "csv"}))
    assert list(rows[0]) == list(compact[0])
    rows = parse_csv(
        await client.get("/v1/advisories", params={"format": "csv", "include": "summary"})
    )
    assert list(rows[0]) == [*compact[0], "summary"]
    assert [r["summary"] for r in rows] == [cell(a["summary"]) for a in full]


# --------------------------------------------------------------------------- countries


async def test_country_view_against_the_stored_rows(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    rows = await db.fetch("SELECT * FROM advisories ORDER BY country, source")
    by_country: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        by_country.setdefault(r["country"], []).append(r)
    shared = [c for c, rs in by_country.items() if len(rs) > 1]
    assert shared, "the crawl stored no country from two sources"
    disagreements = 0
    for code in shared:
        body = (await client.get(f"/v1/countries/{code}")).json()
        stored = by_country[code]
        assert body["country"] == code
        assert [s["source"] for s in body["sources"]] == [r["source"] for r in stored]
        for s, r in zip(body["sources"], stored, strict=True):
            assert s["publisher"] == SOURCES[r["source"]].name
            for key in ("level", "regional_level", "raw_level", "title", "summary", "url"):
                assert s[key] == r[key], key
            assert s["mapping_version"] == r["mapping_version"]
            assert s["withdrawn"] == r["withdrawn"]
            assert datetime.fromisoformat(s["source_updated_at"]) == r["source_updated_at"]
        assert body["missing_sources"] == sorted(set(SOURCES) - {r["source"] for r in stored})
        levels = [r["level"] for r in stored if not r["withdrawn"]]
        assert body["strictest"] == max(levels)
        assert body["spread"] == max(levels) - min(levels)
        assert body["disagreement"] is (max(levels) - min(levels) >= 1)
        disagreements += body["disagreement"]
    assert disagreements, "no country where the governments disagree: the flag is untested"


async def test_country_codes_alpha2_alpha3_any_case(client: httpx.AsyncClient) -> None:
    responses = [await client.get(f"/v1/countries/{code}") for code in ("FR", "fr", "FRA", "Fra")]
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["etag"] for r in responses}) == 1


async def test_bad_country_codes_are_one_line_errors(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    stored = {r["country"] for r in await db.fetch("SELECT DISTINCT country FROM advisories")}
    uncovered = next(c.alpha_2 for c in pycountry.countries if c.alpha_2 not in stored)
    assert "unknown country code" in assert_one_line_error(
        await client.get("/v1/countries/QQ"), 404
    )
    assert "unknown country code" in assert_one_line_error(
        await client.get("/v1/countries/zzz"), 404
    )
    # A country code, but no source advises on it.
    for path in (f"/v1/countries/{uncovered.lower()}", f"/v1/countries/{uncovered}/history"):
        assert "no source has an advisory" in assert_one_line_error(await client.get(path), 404)
    assert_one_line_error(await client.get("/v1/countries/12"), 422)
    assert_one_line_error(await client.get("/v1/countries/FRANCE"), 422)
    assert "valid sources: " + ", ".join(source_ids()) in assert_one_line_error(
        await client.get("/v1/advisories", params={"source": "atlantis"}), 422
    )
    assert "min_level" in assert_one_line_error(
        await client.get("/v1/advisories", params={"min_level": 7}), 422
    )
    assert "country" in assert_one_line_error(
        await client.get("/v1/changes", params={"country": "narnia"}), 422
    )
    assert "cursor" in assert_one_line_error(
        await client.get("/v1/changes", params={"cursor": "not-a-cursor"}), 422
    )
    assert "limit" in assert_one_line_error(
        await client.get("/v1/changes", params={"limit": 100000}), 422
    )
    assert_one_line_error(await client.get("/v1/changes", params={"since": "yesterday"}), 422)
    assert_one_line_error(await client.get("/v1/nothing-here"), 404)
    assert_one_line_error(await client.post("/v1/advisories"), 405)


async def test_filters_accept_exactly_what_the_schema_declares(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    first = await db.fetchval("SELECT min(detected_at) FROM changes")
    total = await db.fetchval("SELECT count(*) FROM changes")
    # A date is its UTC midnight; a date-time needs its offset; a Unix timestamp is no time.
    for since in (first.date().isoformat(), first.isoformat(), "0001-01-01T00:00:00+14:00"):
        page = await client.get("/v1/changes", params={"since": since, "limit": 500})
        assert page.status_code == 200, (since, page.text)
        assert len(page.json()["changes"]) == min(total, 500)
    for name, path in (("since", "/v1/changes"), ("changed_since", "/v1/advisories")):
        for bad in ("0.5", "1700000000", "2026-11-01T00:00:00", "2026-02-30", "yesterday"):
            assert name in assert_one_line_error(await client.get(path, params={name: bad}), 422)
    # A well-formed code of no country is a 404, as on the country's own path.
    for path in ("/v1/advisories", "/v1/changes", "/v1/changes.atom"):
        message = assert_one_line_error(await client.get(path, params={"country": "zz"}), 404)
        assert "unknown country code 'zz'" in message
        assert "invalid country code" in assert_one_line_error(
            await client.get(path, params={"country": "<b>"}), 422
        )
    # Any string of the declared cursor pattern is accepted.
    empty = await client.get("/v1/changes", params={"cursor": "AAAAAAAAAAA"})
    assert empty.status_code == 200 and empty.json()["changes"] == []


async def test_history_against_the_stored_versions(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    code = await db.fetchval(
        "SELECT country FROM advisories GROUP BY country ORDER BY count(*) DESC, country LIMIT 1"
    )
    stored = await db.fetch(
        """
        SELECT v.source, v.id, c.kind, v.level FROM advisory_versions v
        LEFT JOIN changes c ON c.version_id = v.id WHERE v.country = $1 ORDER BY v.source, v.id
        """,
        code,
    )
    alpha3 = {"FR": "FRA"}.get(code, code)
    response = await client.get(f"/v1/countries/{alpha3.lower()}/history")
    body = response.json()
    assert body["country"] == code
    assert [(v["source"], v["version_id"], v["kind"], v["level"]) for v in body["versions"]] == [
        tuple(r) for r in stored
    ]
    rows = parse_csv(await client.get(f"/v1/countries/{code}/history", params={"format": "csv"}))
    assert [(r["source"], int(r["version_id"]), r["kind"]) for r in rows] == [
        (v["source"], v["version_id"], v["kind"]) for v in body["versions"]
    ]


# --------------------------------------------------------------------------- changes


async def test_changes_filters_and_pages(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    stored = await db.fetch("SELECT id, source, country, kind, detected_at FROM changes")
    ids = sorted((r["id"] for r in stored), reverse=True)

    seen: list[int] = []
    url: str | None = "/v1/changes?limit=50"
    while url is not None:
        page = (await client.get(url)).json()
        seen += [c["id"] for c in page["changes"]]
        url = page["next"]
    assert seen == ids

    us = (await client.get("/v1/changes", params={"source": "us_state_dept", "limit": 500})).json()
    assert {c["source"] for c in us["changes"]} == {"us_state_dept"}
    assert len(us["changes"]) == sum(r["source"] == "us_state_dept" for r in stored)
    fr = (await client.get("/v1/changes", params={"country": "FRA"})).json()["changes"]
    assert sorted(c["id"] for c in fr) == sorted(r["id"] for r in stored if r["country"] == "FR")
    new = (await client.get("/v1/changes", params={"kind": "new", "limit": 1})).json()
    assert new["changes"][0]["kind"] == "new" and new["next_cursor"]
    latest = max(r["detected_at"] for r in stored)
    later = (
        await client.get(
            "/v1/changes", params={"since": (latest + timedelta(seconds=1)).isoformat()}
        )
    ).json()
    assert later == {"changes": [], "next_cursor": None, "next": None}

    page = await client.get("/v1/changes", params={"limit": 3, "format": "csv"})
    rows = parse_csv(page)
    assert [int(r["id"]) for r in rows] == ids[:3]
    assert page.headers["link"].endswith('>; rel="next"')


async def test_atom_feed_is_valid_and_matches_json(client: httpx.AsyncClient) -> None:
    params: dict[str, str | int] = {"source": "uk_foreign_office", "limit": 10}
    as_json = (await client.get("/v1/changes", params=params)).json()["changes"]
    response = await client.get("/v1/changes.atom", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert feed.find(f"{ATOM}{required}") is not None
    assert feed.find(f"{ATOM}author/{ATOM}name") is not None
    assert feed.find(f"{ATOM}link[@rel='self']") is not None
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == len(as_json) == 10
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == len(ids)
    base = str(client.base_url).rstrip("/")
    for entry, change in zip(entries, as_json, strict=True):
        assert entry.findtext(f"{ATOM}id", "").endswith(f":change:{change['id']}")
        updated = entry.findtext(f"{ATOM}updated", "")
        assert datetime.fromisoformat(updated) == datetime.fromisoformat(change["detected_at"])
        link = entry.find(f"{ATOM}link[@rel='alternate']")
        assert link is not None and link.get("href") == f"{base}/countries/{change['country']}"
        category = entry.find(f"{ATOM}category")
        assert category is not None and category.get("term") == change["kind"]
    # Entry ids are stable: the same change has the same id in another, wider feed.
    wider = ET.fromstring((await client.get("/v1/changes.atom", params={"limit": 500})).content)
    assert set(ids) <= {e.findtext(f"{ATOM}id") for e in wider.findall(f"{ATOM}entry")}


# --------------------------------------------------------------------------- caching


async def test_conditional_requests(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    for path in (
        "/v1/countries/FR",
        "/v1/advisories?format=csv",
        "/v1/changes?limit=5",
        "/v1/changes.atom",
        "/v1/countries/FR/history",
        "/v1/sources",
    ):
        first = await client.get(path)
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert first.headers["cache-control"] == "public, max-age=30"
        assert first.headers["vary"] == "Accept, Accept-Encoding"
        parsedate_to_datetime(first.headers["last-modified"])
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == etag
        other = await client.get(path, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200 and other.content == first.content
        listed = await client.get(path, headers={"If-None-Match": f'"x", {etag}'})
        assert listed.status_code == 304
        since = await client.get(
            path, headers={"If-Modified-Since": first.headers["last-modified"]}
        )
        assert since.status_code == 304 and since.content == b""
        head = await client.head(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["etag"] == etag
    checked = await db.fetchval("SELECT max(last_checked_at) FROM advisories WHERE country = 'FR'")
    modified = (await client.get("/v1/countries/FR")).headers["last-modified"]
    assert parsedate_to_datetime(modified) == checked.replace(microsecond=0)


async def test_every_api_response_says_nosniff(client: httpx.AsyncClient) -> None:
    ok = [
        "/v1/sources",
        "/v1/advisories",
        "/v1/advisories?format=csv",
        "/v1/countries/FR",
        "/v1/countries/FR/history",
        "/v1/changes?limit=5",
        "/v1/changes.atom",
        "/healthz",
        "/openapi.json",
    ]
    for path in ok:
        first = await client.get(path)
        assert first.status_code == 200, path
        assert first.headers["x-content-type-options"] == "nosniff", path
        if "etag" in first.headers:
            again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
            assert again.status_code == 304, path
            assert again.headers["x-content-type-options"] == "nosniff", path
        head = await client.head(path)
        assert head.headers["x-content-type-options"] == "nosniff", path
    for path, status in (
        ("/v1/countries/ZZ", 404),
        ("/v1/countries/F1", 422),
        ("/v1/advisories?min_level=9", 422),
        ("/v1/nothing-here", 404),
    ):
        error = await client.get(path)
        assert error.status_code == status, path
        assert error.headers["x-content-type-options"] == "nosniff", path
    refused = await client.post("/v1/advisories")
    assert refused.status_code == 405
    assert refused.headers["x-content-type-options"] == "nosniff"


async def test_gzip_for_clients_that_take_it(api_server: str) -> None:
    async with httpx.AsyncClient(base_url=api_server, timeout=30) as http:
        plain = await http.get("/v1/advisories", headers={"Accept-Encoding": "identity"})
        packed = await http.get("/v1/advisories", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(plain.content) / 3
    assert packed.content == plain.content  # httpx decodes: the same document
    assert packed.headers["etag"] != plain.headers["etag"]
    assert "Accept-Encoding" in packed.headers["vary"]
    async with httpx.AsyncClient(base_url=api_server, timeout=30) as http:
        for response, encoding in ((plain, "identity"), (packed, "gzip")):
            again = await http.get(
                "/v1/advisories",
                headers={"Accept-Encoding": encoding, "If-None-Match": response.headers["etag"]},
            )
            assert again.status_code == 304


async def test_openapi_document_is_served_and_no_cdn_docs(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {
        "/v1/sources",
        "/v1/advisories",
        "/v1/countries/{iso}",
        "/v1/countries/{iso}/history",
        "/v1/changes",
        "/v1/changes.atom",
        "/healthz",
    } <= set(schema["paths"])
    country = schema["paths"]["/v1/countries/{iso}"]["get"]["responses"]
    assert {"200", "304", "404", "422", "503"} <= set(country)
    assert {"application/json", "text/csv"} == set(country["200"]["content"])
    assert (
        "application/atom+xml"
        in schema["paths"]["/v1/changes.atom"]["get"]["responses"]["200"]["content"]
    )
    assert (await client.get("/docs")).status_code == 404
    assert "cdn" not in json.dumps(schema).lower()


async def test_openapi_document_has_a_strong_etag_and_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/openapi.json")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["cache-control"] == "public, max-age=30"
    assert first.headers["x-content-type-options"] == "nosniff"
    again = await client.get("/openapi.json")
    assert again.headers["etag"] == etag and again.content == first.content
    current = await client.get("/openapi.json", headers={"If-None-Match": etag})
    assert current.status_code == 304 and current.content == b""
    assert current.headers["etag"] == etag
    other = await client.get("/openapi.json", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.json() == first.json()
    head = await client.head("/openapi.json")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag


# --------------------------------------------------------------------------- data changes


async def test_new_data_new_etag_and_csv_is_defused(
    fresh_crawled_database_url: str, tmp_path: Path
) -> None:
    with start_api(fresh_crawled_database_url, log_dir=tmp_path) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            before = await http.get("/v1/countries/FR")
            etag = before.headers["etag"]
            stored = await store_new_version(
                fresh_crawled_database_url,
                source="us_state_dept",
                country="FR",
                title='=HYPERLINK("http://evil.example","France")',
                level=4,
            )

            async def changed() -> httpx.Response | None:
                response = await http.get("/v1/countries/FR", headers={"If-None-Match": etag})
                return response if response.status_code == 200 else None

            after = await wait_until(changed, within=10)
            assert after.headers["etag"] != etag
            us = next(s for s in after.json()["sources"] if s["source"] == "us_state_dept")
            assert us["level"] == 4 and us["title"].startswith("=HYPERLINK")
            rows = parse_csv(await http.get("/v1/countries/FR", params={"format": "csv"}))
            us_row = next(r for r in rows if r["source"] == "us_state_dept")
            assert us_row["title"] == "'" + us["title"]
            change = (await http.get("/v1/changes", params={"limit": 1})).json()["changes"][0]
            assert change["id"] == stored and change["kind"] == "raised"
            history = (await http.get("/v1/countries/FR/history")).json()["versions"]
            assert history[-1]["change_id"] == stored and history[-1]["kind"] == "raised"


async def test_pagination_is_stable_while_changes_are_inserted(
    fresh_crawled_database_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(fresh_crawled_database_url)
    try:
        existing = [r["id"] for r in await conn.fetch("SELECT id FROM changes ORDER BY id DESC")]
        countries = [
            r["country"]
            for r in await conn.fetch(
                "SELECT country FROM advisories WHERE source = 'us_state_dept' ORDER BY country"
            )
        ]
    finally:
        await conn.close()
    with start_api(fresh_crawled_database_url, log_dir=tmp_path) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            seen: list[int] = []
            inserted: list[int] = []
            url: str | None = "/v1/changes?limit=25"
            pages = 0
            while url is not None:
                page = (await http.get(url)).json()
                seen += [c["id"] for c in page["changes"]]
                url = page["next"]
                pages += 1
                # Between pages the scheduler stores new versions (new, higher ids).
                inserted.append(
                    await store_new_version(
                        fresh_crawled_database_url,
                        source="us_state_dept",
                        country=countries[pages],
                        title=f"Changed while paging ({pages})",
                    )
                )
            assert pages > 3
            assert seen == existing, "a page skipped or repeated a change"
            assert min(inserted) > max(existing)

            async def newest() -> int | None:
                page = (await http.get("/v1/changes", params={"limit": 1})).json()
                top = int(page["changes"][0]["id"])
                return top if top == max(inserted) else None

            # The inserted changes are served too, from the next data version on.
            assert await wait_until(newest, within=10) == max(inserted)

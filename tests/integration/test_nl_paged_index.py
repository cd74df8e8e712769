"""Nederland Wereldwijd's list in two pages: every destination stored, then 304s, then page 2.

The catalogue is SYNTHETIC (``replay.synthetic``) with the full 226 destinations,
served by the replay server in directory mode as the real API pages its list:
200 records at ``?output=json&rows=200``, the other 26 at ``...&offset=200``.
Worker, dev server and PostgreSQL are real.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.types import ScrapeSourceResult
from advisories.ratelimit import violations
from advisories.settings import Settings
from advisories.sources import SOURCES, RateLimitPolicy
from advisories.sources.nl_nederland_wereldwijd import (
    INDEX_PATH,
    INDEX_QUERY,
    PAGE_ROWS,
    SOURCE_ID,
    SYNTHETIC_FULL,
    parse_index,
    synthetic_page_file,
)
from replay.server import ReplayServer
from replay.synthetic import CatalogueSummary, build_catalogue, set_level
from starter.schedules import scrape_input
from tests.conftest import REAL_FIXTURES, make_settings
from tests.integration.helpers import running_worker
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration
SPEC = SOURCES[SOURCE_ID]
SECOND_PAGE = f"{INDEX_QUERY}&offset={PAGE_ROWS}"


@pytest.fixture(scope="module")
def paged_catalogue(tmp_path_factory: pytest.TempPathFactory) -> CatalogueSummary:
    """The full list for this source (two pages); the others small (not crawled here)."""
    root = tmp_path_factory.mktemp("paged") / "catalogue"
    return build_catalogue(root, fixtures=REAL_FIXTURES, countries=5, sizes={SOURCE_ID: None})


@pytest.fixture
def paged(paged_catalogue: CatalogueSummary, tmp_path: Path) -> Iterator[tuple[ReplayServer, Path]]:
    """A private copy of the paged catalogue behind its own replay server."""
    root = tmp_path / "catalogue"
    shutil.copytree(paged_catalogue.root, root)
    with ReplayServer(root, manifest=None, directory=root) as server:
        yield server, root


async def cycle(client: Client, settings: Settings, tag: str) -> ScrapeSourceResult:
    result: ScrapeSourceResult = await client.execute_workflow(
        ScrapeSourceWorkflow.run,
        scrape_input(SPEC, settings),
        id=f"test-nl-pages-{tag}-{uuid.uuid4().hex[:8]}",
        task_queue=SPEC.priority.task_queue,
    )
    return result


async def index_requests(conn: asyncpg.Connection) -> list[tuple[str, int, bool]]:
    rows = await conn.fetch(
        "SELECT url, status, not_modified FROM source_requests"
        " WHERE source = $1 AND kind = 'index' ORDER BY id",
        SOURCE_ID,
    )
    return [(r["url"].partition("?")[2], r["status"], r["not_modified"]) for r in rows]


async def test_two_pages_store_every_destination_then_304_then_a_page_2_change(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    paged: tuple[ReplayServer, Path],
    paged_catalogue: CatalogueSummary,
) -> None:
    server, root = paged
    assert paged_catalogue.countries[SOURCE_ID] == SYNTHETIC_FULL > PAGE_ROWS
    page_2 = (root / SOURCE_ID / synthetic_page_file(1)).read_bytes()
    entries = parse_index(page_2, url=synthetic_page_file(1), fetched_at=datetime.now(UTC))
    assert len(entries) == SYNTHETIC_FULL - PAGE_ROWS
    on_page_2 = {e.country for e in entries}
    paths = {e.country: str(e.document_path) for e in entries}
    client = temporal_env.client
    settings = make_settings(
        database_url=database_url, replay_base_url=server.base_url, rate_limits_enabled=False
    )
    conn = await asyncpg.connect(database_url)
    try:
        async with running_worker(client, settings):
            first = await cycle(client, settings, "first")
            assert await index_requests(conn) == [
                (INDEX_QUERY, 200, False),
                (SECOND_PAGE, 200, False),
            ]
            assert first.items_seen == first.versions_created == SYNTHETIC_FULL
            stored = await conn.fetch("SELECT country FROM advisories WHERE source = $1", SOURCE_ID)
            assert len(stored) == SYNTHETIC_FULL
            # Every destination only page 2 lists is stored.
            assert on_page_2 <= {r["country"] for r in stored}

            # Nothing changed: a conditional request per page, each answered 304.
            await conn.execute("DELETE FROM source_requests")
            second = await cycle(client, settings, "second")
            assert second.not_modified and second.versions_created == 0
            assert second.countries_planned == 0
            assert await index_requests(conn) == [
                (INDEX_QUERY, 304, True),
                (SECOND_PAGE, 304, True),
            ]
            documents = await conn.fetchval(
                "SELECT count(*) FROM source_requests WHERE kind = 'document'"
            )
            assert documents == 0

            # One destination of page 2 raised to 4: page 1 answers 304, page 2 the
            # change, and exactly that destination's document is fetched and stored.
            country = sorted(on_page_2)[0]
            set_level(root, SOURCE_ID, country, 4)
            await conn.execute("DELETE FROM source_requests")
            third = await cycle(client, settings, "third")
            assert await index_requests(conn) == [
                (INDEX_QUERY, 304, True),
                (SECOND_PAGE, 200, False),
            ]
            assert not third.not_modified and third.items_seen == SYNTHETIC_FULL
            assert third.countries_planned == 1 and third.versions_created == 1
            fetched = await conn.fetch("SELECT url FROM source_requests WHERE kind = 'document'")
            assert [r["url"] for r in fetched] == [server.url_for(SOURCE_ID) + paths[country]]
            level = await conn.fetchval(
                "SELECT level FROM advisories WHERE source = $1 AND country = $2",
                SOURCE_ID,
                country,
            )
            assert level == 4
    finally:
        await conn.close()


async def test_a_failing_second_page_fails_the_index_and_keeps_nothing_of_the_first(
    temporal_env: WorkflowEnvironment, database_url: str, paged: tuple[ReplayServer, Path]
) -> None:
    server, _ = paged
    client = temporal_env.client
    settings = make_settings(
        database_url=database_url, replay_base_url=server.base_url, rate_limits_enabled=False
    )
    server.put(SOURCE_ID, f"{INDEX_PATH}?{SECOND_PAGE}", b"<html>gateway error</html>")
    conn = await asyncpg.connect(database_url)
    try:
        async with running_worker(client, settings):
            with pytest.raises(WorkflowFailureError) as failed:
                await cycle(client, settings, "broken")
            assert "index failed" in str(failed.value.cause)
            stored = await conn.fetchval(
                "SELECT count(*) FROM advisories WHERE source = $1", SOURCE_ID
            )
            validators = await conn.fetchval(
                "SELECT count(*) FROM source_documents WHERE source = $1", SOURCE_ID
            )
            # No page's validators are kept before the whole index is applied.
            assert (stored, validators) == (0, 0)

            server.clear_overrides()
            await conn.execute("DELETE FROM source_requests")
            again = await cycle(client, settings, "again")
            assert again.versions_created == SYNTHETIC_FULL
            assert await index_requests(conn) == [
                (INDEX_QUERY, 200, False),
                (SECOND_PAGE, 200, False),
            ]
    finally:
        await conn.close()


async def test_an_index_past_its_page_bound_fails_with_a_clear_error(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    paged: tuple[ReplayServer, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, _ = paged
    client = temporal_env.client
    settings = make_settings(
        database_url=database_url, replay_base_url=server.base_url, rate_limits_enabled=False
    )
    # The worker runs in this process and reads the registry: a bound of one page.
    monkeypatch.setitem(SOURCES, SOURCE_ID, dataclasses.replace(SPEC, index_max_pages=1))
    async with running_worker(client, settings):
        with pytest.raises(WorkflowFailureError) as failed:
            await cycle(client, settings, "bound")
    assert "the index has more than 1 pages" in str(failed.value.cause)


def test_the_replay_server_serves_each_page_at_its_query(
    paged: tuple[ReplayServer, Path],
) -> None:
    server, _ = paged
    base = server.url_for(SOURCE_ID) + INDEX_PATH

    def records(query: str) -> int:
        with urllib.request.urlopen(f"{base}?{query}" if query else base) as response:
            return len(json.loads(response.read()))

    assert records(INDEX_QUERY) == records("") == PAGE_ROWS
    # The page by its query, whatever the parameters' order.
    assert records(SECOND_PAGE) == records(f"offset={PAGE_ROWS}&rows=200&output=json")
    assert records(SECOND_PAGE) == SYNTHETIC_FULL - PAGE_ROWS
    # A query no page is kept for: the document at the path (most sources ignore queries).
    assert records("output=json&rows=200&offset=999") == PAGE_ROWS
    server.put(SOURCE_ID, f"{INDEX_PATH}?{SECOND_PAGE}", b"[]")
    assert (records(SECOND_PAGE), records(INDEX_QUERY)) == (0, PAGE_ROWS)


async def test_every_page_takes_budget_from_the_shared_rate_limiter(
    temporal_env: WorkflowEnvironment, database_url: str, paged: tuple[ReplayServer, Path]
) -> None:
    server, _ = paged
    client = temporal_env.client
    policy = RateLimitPolicy(
        requests_per_hour=10_000,
        burst_limit=10,
        min_delay_seconds=1.0,
        timezone="Europe/Amsterdam",
        respectful_factor=1.0,
    )
    conn = await asyncpg.connect(database_url)
    try:
        # Learn the list with limits off (226 documents), then a cycle under the limits.
        free = make_settings(
            database_url=database_url, replay_base_url=server.base_url, rate_limits_enabled=False
        )
        async with running_worker(client, free):
            await cycle(client, free, "learn")
        await conn.execute(
            "UPDATE rate_limits SET requests_per_hour = $1, burst_limit = $2,"
            " min_delay_seconds = $3, respectful_factor = 1 WHERE source = $4",
            policy.requests_per_hour,
            policy.burst_limit,
            policy.min_delay_seconds,
            SOURCE_ID,
        )
        await conn.execute("DELETE FROM source_requests")
        limited = make_settings(database_url=database_url, replay_base_url=server.base_url)
        async with running_worker(client, limited):
            result = await cycle(client, limited, "limited")
        assert result.not_modified and result.versions_created == 0
        assert await index_requests(conn) == [
            (INDEX_QUERY, 304, True),
            (SECOND_PAGE, 304, True),
        ]
        times: list[datetime] = [
            r["requested_at"]
            for r in await conn.fetch(
                "SELECT requested_at FROM source_requests WHERE source = $1 ORDER BY requested_at",
                SOURCE_ID,
            )
        ]
    finally:
        await conn.close()
    found = violations(policy, times)
    assert (found.min_delay, found.burst, found.hourly) == (0, 0, 0)
    assert (times[-1] - times[-2]).total_seconds() >= policy.min_delay_seconds - 0.001

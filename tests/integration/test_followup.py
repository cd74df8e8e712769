"""Cross-source follow-up on the real dev server, PostgreSQL and replay server.

One government raises a country to 4; every other source listing the country is re-polled for
it by a follow-up run, forced (their index entries did not change, only their documents did),
and no follow-up starts follow-ups of its own. The catalogue is the SYNTHETIC one
(``served``: a private editable copy behind its own replay server).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.types import ScrapeSourceResult
from advisories.models import Level
from advisories.parsers import IndexEntry
from advisories.settings import Settings
from advisories.sources import get_source
from bench.followup import FEED_SOURCE, change_elsewhere
from replay.server import ReplayServer
from replay.synthetic import set_level
from starter.schedules import scrape_input
from store.index import IndexStore
from tests.conftest import make_settings
from tests.integration.helpers import crawl, running_worker
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration

TRIGGER = "uk_foreign_office"
DOCUMENT_SOURCE = "canada_travel"
#: Listed by the trigger, the US feed and Canada in the test catalogue.
COUNTRY = "QA"
#: The index entries of the sources with per-country documents, but the trigger's.
ENTRIES = (
    "SELECT source, country, entry_hash FROM index_entries"
    " WHERE source <> $1 AND document_path IS NOT NULL ORDER BY 1, 2"
)


async def one_cycle(
    client: Client, source: str, settings: Settings, tag: str
) -> ScrapeSourceResult:
    spec = get_source(source)
    return await client.execute_workflow(
        ScrapeSourceWorkflow.run,
        scrape_input(spec, settings),
        id=f"test-{tag}-{source}-{uuid.uuid4().hex[:8]}",
        task_queue=spec.priority.task_queue,
    )


async def test_a_raise_re_polls_that_country_at_every_other_source(
    temporal_env: WorkflowEnvironment, database_url: str, served: tuple[ReplayServer, Path]
) -> None:
    server, root = served
    client = temporal_env.client
    settings = make_settings(
        database_url=database_url,
        replay_base_url=server.base_url,
        rate_limits_enabled=False,
        followup_enabled=True,
    )
    # Below 4 everywhere before the first crawl, so that each source can rise.
    set_level(root, TRIGGER, COUNTRY, Level.NORMAL_PRECAUTIONS)
    set_level(root, DOCUMENT_SOURCE, COUNTRY, Level.NORMAL_PRECAUTIONS)
    conn = await asyncpg.connect(database_url)
    try:
        # No workflow cache: every workflow task replays its history, follow-up starts included.
        async with running_worker(client, settings, max_cached_workflows=0):
            first = await crawl(client, settings, "followup-first")
            assert all(r.followups == [] for r in first.values()), "a first crawl starts none"
            listing = {
                r["source"]: r["document_path"]
                for r in await conn.fetch(
                    "SELECT source, document_path FROM index_entries WHERE country = $1",
                    COUNTRY,
                )
            }
            assert {TRIGGER, DOCUMENT_SOURCE, FEED_SOURCE} <= listing.keys()
            index_entries_before = await conn.fetch(ENTRIES, TRIGGER)

            # The others' documents change, not their index entries; then the trigger raises.
            changed = await change_elsewhere(conn, root, COUNTRY, trigger=TRIGGER)
            assert changed[DOCUMENT_SOURCE] == 4 and changed[FEED_SOURCE] == 4
            set_level(root, TRIGGER, COUNTRY, Level.DO_NOT_TRAVEL)
            server.reset_stats()
            started = datetime.now(UTC)
            result = await one_cycle(client, TRIGGER, settings, "followup-trigger")

            change_id = await conn.fetchval(
                "SELECT id FROM changes WHERE source = $1 AND country = $2 AND kind = 'raised'",
                TRIGGER,
                COUNTRY,
            )
            others = sorted(s for s in listing if s != TRIGGER)
            expected = [f"followup-{s}-{TRIGGER}-{COUNTRY}-{change_id}" for s in others]
            assert result.followups == expected

            runs = {}
            for workflow_id in expected:
                handle = client.get_workflow_handle(workflow_id, result_type=ScrapeSourceResult)
                runs[workflow_id] = await asyncio.wait_for(handle.result(), timeout=60)
                assert runs[workflow_id].followups == [], "a follow-up starts no follow-up"
                history = await handle.fetch_history()
                kinds = {event.event_type for event in history.events}
                assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED not in kinds

            # Each changed source now states what its document says, as a raise it detected.
            stored = {
                r["source"]: r["level"]
                for r in await conn.fetch(
                    "SELECT source, level FROM advisories WHERE country = $1", COUNTRY
                )
            }
            assert {s: stored[s] for s in changed} == changed
            assert stored[TRIGGER] == 4
            raised = await conn.fetch(
                "SELECT source, kind FROM changes WHERE country = $1 AND detected_at >= $2"
                " ORDER BY source",
                COUNTRY,
                started,
            )
            assert sorted((r["source"], r["kind"]) for r in raised) == sorted(
                [(TRIGGER, "raised")] + [(s, "raised") for s in changed]
            )
            # Nothing else was stored anywhere, and no index entry of the others moved (the
            # US feed is an index and a document at once: its entry for the country did).
            others_stored = await conn.fetchval(
                "SELECT count(*) FROM changes WHERE detected_at >= $1 AND country <> $2",
                started,
                COUNTRY,
            )
            assert others_stored == 0
            assert await conn.fetch(ENTRIES, TRIGGER) == index_entries_before

            # The follow-ups' requests went the project's polite way (recorded for the shared
            # rate limiter): each other index once, conditionally — 304 where it did not change,
            # 200 for the US feed — and the country's document where there is one (200 where
            # it changed).
            sent = await conn.fetch(
                "SELECT source, kind, status FROM source_requests"
                " WHERE requested_at >= $1 AND source <> $2 AND kind <> 'robots'",
                started,
                TRIGGER,
            )
            polite = []
            for source in others:
                index_status = 200 if source in changed and listing[source] is None else 304
                polite.append((source, "index", index_status))
                if listing[source] is not None:
                    polite.append((source, "document", 200 if source in changed else 304))
            assert sorted((r["source"], r["kind"], r["status"]) for r in sent) == sorted(polite)

        # The replay server saw, from each other source, its index and that country's
        # document only (the US feed is both); robots.txt is not a document.
        stats = server.stats()
        for source in others:
            spec = get_source(source)
            paths = {
                e.path for e in stats.requests if e.source == source and e.path != "/robots.txt"
            }
            wanted = {spec.index_path} | ({listing[source]} if listing[source] else set())
            assert paths == wanted, source
            assert stats.count(source=source, path=spec.index_path) == 1, source

        # Temporal knows of exactly these follow-ups since the trigger (none of them started one).
        query = f"WorkflowId STARTS_WITH 'followup-' AND StartTime >= '{started.isoformat()}'"
        listed: list[str] = []
        for _ in range(50):
            listed = sorted([wf.id async for wf in client.list_workflows(query)])
            if len(listed) >= len(expected):
                break
            await asyncio.sleep(0.2)
        assert listed == expected
    finally:
        await conn.close()


async def test_raises_below_the_level_or_with_follow_ups_off_start_nothing(
    temporal_env: WorkflowEnvironment, database_url: str, served: tuple[ReplayServer, Path]
) -> None:
    server, root = served
    client = temporal_env.client
    base = {
        "database_url": database_url,
        "replay_base_url": server.base_url,
        "rate_limits_enabled": False,
    }
    set_level(root, TRIGGER, COUNTRY, Level.NORMAL_PRECAUTIONS)
    high = make_settings(**base, followup_enabled=True, followup_min_level=4)
    async with running_worker(client, high):
        await crawl(client, high, "followup-quiet-first")
        set_level(root, TRIGGER, COUNTRY, Level.RECONSIDER_TRAVEL)  # 1 → 3, the bar is 4
        server.reset_stats()
        result = await one_cycle(client, TRIGGER, high, "followup-below")
        assert result.versions_created == 1 and result.followups == []
    off = make_settings(**base, followup_enabled=False)
    async with running_worker(client, off):
        set_level(root, TRIGGER, COUNTRY, Level.DO_NOT_TRAVEL)  # 3 → 4, follow-ups off
        result = await one_cycle(client, TRIGGER, off, "followup-off")
        assert result.versions_created == 1 and result.followups == []
    assert {e.source for e in server.stats().requests} == {TRIGGER}


async def test_index_store_says_who_lists_a_country_and_what_is_newly_listed(
    pool: asyncpg.Pool,
) -> None:
    store = IndexStore(pool)

    def entry(country: str) -> IndexEntry:
        return IndexEntry(
            country=country,
            country_name=country,
            published_at=None,
            entry_hash=f"hash-{country}",
            document_path=f"/{country.lower()}",
        )

    first_seen = datetime(2026, 11, 1, tzinfo=UTC)
    await store.record("canada_travel", [entry("FR"), entry("HT")], seen_at=first_seen)
    await store.record("uk_foreign_office", [entry("HT")], seen_at=first_seen)
    # A first index: nothing is newly listed.
    assert await store.newly_listed("canada_travel", ["FR", "HT"]) == set()
    # A later index lists one more country: that one is.
    await pool.execute("UPDATE index_entries SET first_seen_at = first_seen_at - interval '1 day'")
    await store.record("canada_travel", [entry("FR"), entry("HT"), entry("YE")], seen_at=first_seen)
    assert await store.newly_listed("canada_travel", ["FR", "HT", "YE"]) == {"YE"}
    assert await store.listing(["HT", "YE"], exclude="uk_foreign_office") == {
        "canada_travel": ["HT", "YE"]
    }
    assert await store.listing(["HT", "ZZ"]) == {
        "canada_travel": ["HT"],
        "uk_foreign_office": ["HT"],
    }

"""Real change histories served in order through the replay server and the real workflow.

Each source's versions (``replay.history.HISTORIES``) are served one after the
other by a private replay server, each followed by one real
``ScrapeSourceWorkflow`` run on the dev server against a fresh PostgreSQL; the
changes stored at each step must be exactly those a pure diff of the documents
served gives (:func:`replay.history.replay_versions` over what the source's
parser makes of them, computed here, never read back from the store).

* **Canada** — the six REAL complete indexes 2014-03-02, 2014-10-02,
  2015-11-19, 2015-11-24, 2015-11-30 and 2026-07-02, all served byte for byte
  as captured (the 2014 ones key each entry by its code and lack
  ``country-iso`` inside it; ``canada_travel.parse_index`` takes the key).
  Per-country documents are SYNTHETIC, generated from each index entry and its
  key (``canada_travel.synthetic_document``), as in the 2015 sequence test. Stored,
  after the first crawl's 229 ``new``: 2014-10-02 raised 5, lowered 7 (the 12
  level changes the research found), regional 2, text 119; 2015-11-19 raised
  5, lowered 5, regional 6, text 212; 2015-11-24 raised 1 (Mali), text 18;
  2015-11-30 text 18; 2026-07-02 new 1, raised 34, lowered 19, regional 22,
  text 154. The regional kinds come from the synthetic documents (which carry
  a regional block one step up when the real entry flags one), not from real
  regional text; ``python -m replay.history`` counts the indexes alone.
* **Germany** — the REAL complete index of 2026-07-11 (with the real Nepal
  document, and SYNTHETIC documents from the real entries for the other 199),
  then the TRIMMED 17-entry excerpt of 2026-09, served as captured. The
  excerpt is not a real next version of the index (its author kept 17 of
  about 200 entries); what is sound in it is its 17 entries, real values. The
  module treats a shrunken index as a contract problem for the health canary,
  never as withdrawals: the 183 unlisted countries keep their advisories, the
  5 entries whose ``lastModified`` moved are fetched again, and as their flags
  did not move nothing is stored. Stored: 200 ``new``, then nothing; the
  canary fails (17 listed, 200 before).
* **Australia** — 17 DERIVED level maps (kevle1/smartraveller-api,
  2024-10-05 → 2024-11-01) as SYNTHETIC destinations exports built from the
  real export's structure and labelled in every entry
  (:func:`replay.history.smartraveller_exports`). Stored: 177 ``new``, then
  raised 2 (Israel, Palestine 3 → 4 on 2024-10-14), lowered 4 (Kazakhstan and
  Serbia 2 → 1, Israel and Palestine 4 → 3 on 2024-11-01), nothing else; the
  one-run drop-outs of the maps store nothing.

Each test prints its per-step counts (``pytest -s``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.health import CheckInput, HealthActivities
from activities.types import ScrapeSourceResult
from advisories.changes import ChangeKind
from advisories.models import Advisory
from advisories.sources import SOURCES, SourceSpec, canada_travel, de_auswaertiges_amt
from replay._catalogue import capture_file, default_fixtures_root
from replay.history import HISTORIES, KINDS, Step, read_versions, replay_versions
from replay.server import ReplayServer
from starter.schedules import scrape_input
from store.pool import create_pool
from tests.conftest import make_settings
from tests.integration.health_helpers import health_settings
from tests.integration.helpers import running_worker
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration
FETCHED_AT = datetime(2026, 12, 1, tzinfo=UTC)

#: One version as served: URL path → body (the index and the documents to put).
Served = dict[str, bytes]


def read(relative: str) -> bytes:
    return capture_file(relative, default_fixtures_root()).read_bytes()


def as_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def expected_steps(spec: SourceSpec, served: Sequence[Served], labels: Sequence[str]) -> list[Step]:
    """What each version should store: the parser's reading of what is served, diffed."""
    versions: list[list[Advisory]] = []
    current: Served = {}
    for documents in served:
        current = {**current, **documents}
        index = documents[spec.index_path]
        if spec.document_path is None:  # the index carries every advisory
            versions.append(
                spec.parser.parse_file(index, url=spec.index_path, fetched_at=FETCHED_AT)
            )
            continue
        entries = spec.parser.parse_index(index, url=spec.index_path, fetched_at=FETCHED_AT)
        # A listed country's document as served now (put at this step or an earlier one).
        parse = spec.parser.parse_document
        versions.append([
            parse(current[e.document_path], url=e.document_path, fetched_at=FETCHED_AT)
            for e in entries
            if e.document_path is not None
        ])  # fmt: skip
    return replay_versions(versions, labels)


async def replay_history(
    temporal_env: WorkflowEnvironment, database_url: str, spec: SourceSpec, served: Sequence[Served]
) -> tuple[list[ScrapeSourceResult], list[list[tuple[str, str, int | None, int]]]]:
    """Serve each version in turn and run one real cycle after each; the changes each stored."""
    client = temporal_env.client
    results: list[ScrapeSourceResult] = []
    stored: list[list[tuple[str, str, int | None, int]]] = []
    conn = await asyncpg.connect(database_url)
    try:
        with ReplayServer(manifest=None) as server:
            settings = make_settings(
                database_url=database_url,
                replay_base_url=server.base_url,
                rate_limits_enabled=False,
            )
            async with running_worker(client, settings):
                last_id = 0
                for step, documents in enumerate(served):
                    # Documents before the index, as a site updates them.
                    for path in sorted(documents, key=lambda p: p == spec.index_path):
                        server.put(spec.id, path, documents[path])
                    results.append(
                        await client.execute_workflow(
                            ScrapeSourceWorkflow.run,
                            scrape_input(spec, settings),
                            id=f"test-history-{spec.id}-{step}-{uuid.uuid4().hex[:6]}",
                            task_queue=spec.priority.task_queue,
                        )
                    )
                    rows = await conn.fetch(
                        "SELECT id, country, kind, level_before, level_after FROM changes"
                        " WHERE source = $1 AND id > $2 ORDER BY country, id",
                        spec.id,
                        last_id,
                    )
                    last_id = max([last_id, *(r["id"] for r in rows)])
                    stored.append(
                        [
                            (r["country"], r["kind"], r["level_before"], r["level_after"])
                            for r in rows
                        ]
                    )
    finally:
        await conn.close()
    return results, stored


def as_rows(step: Step) -> list[tuple[str, str, int | None, int]]:
    return [(c.country, c.kind.value, c.level_before, int(c.level_after)) for c in step.changes]


def kind_counts(rows: Sequence[tuple[str, str, int | None, int]]) -> dict[str, int]:
    return {kind.value: sum(1 for r in rows if r[1] == kind.value) for kind in KINDS}


def report(source: str, labels: Sequence[str], stored: Sequence[Sequence[Any]]) -> None:
    print(f"\n{source}: stored changes per version")
    for label, rows in zip(labels, stored, strict=True):
        counts = {k: n for k, n in kind_counts(rows).items() if n}
        print(f"  {label}: {counts or 'none'}")


def assert_stored_as_diffed(
    stored: Sequence[Sequence[tuple[str, str, int | None, int]]], expected: Sequence[Step]
) -> None:
    assert len(stored) == len(expected)
    for rows, step in zip(stored, expected, strict=True):
        assert sorted(rows) == sorted(as_rows(step)), step.label


# --- Canada -----------------------------------------------------------------------------------


def canada_served() -> list[Served]:
    """Each index as captured, with a SYNTHETIC document per destination made from its entry."""
    template = read(canada_travel.SYNTHETIC_TEMPLATE).decode("utf-8")
    history = HISTORIES[canada_travel.SOURCE_ID]
    served = []
    for version, index in zip(history.versions, read_versions(history), strict=True):
        assert index == read(version.file)  # byte for byte, the 2014 layout included
        documents = {canada_travel.INDEX_PATH: index}
        for key, entry in json.loads(index)["data"].items():
            documents[canada_travel.document_path(key)] = as_json(
                canada_travel.synthetic_document(template, entry, key=key)
            )
        served.append(documents)
    return served


async def test_canada_real_indexes_2014_to_2026_store_exactly_their_changes(
    temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    spec = SOURCES[canada_travel.SOURCE_ID]
    history = HISTORIES[spec.id]
    labels = [v.label for v in history.versions]
    served = canada_served()
    expected = expected_steps(spec, served, labels)
    results, stored = await replay_history(temporal_env, database_url, spec, served)
    report(spec.id, labels, stored)
    assert [r.countries_quarantined for r in results] == [[]] * len(served)
    assert_stored_as_diffed(stored, expected)
    assert kind_counts(stored[0]) == {**dict.fromkeys(kind_counts([]), 0), "new": 229}
    # The research's figures (replay/captures/SOURCES.md): 12 level changes 2014-03 → 2014-10,
    # these ones (Canada's advisory-state 0-3, our level minus one).
    levels = sorted(
        (country, before - 1, after - 1)
        for country, kind, before, after in stored[1]
        if kind in ("raised", "lowered") and before is not None
    )
    assert levels == sorted([
        ("BS", 0, 1), ("BI", 2, 1), ("GE", 1, 0), ("IQ", 2, 3), ("LR", 1, 2), ("LY", 2, 3),
        ("ML", 2, 1), ("MS", 1, 0), ("KN", 1, 0), ("VC", 1, 0), ("SL", 1, 2), ("SD", 3, 2),
    ])  # fmt: skip
    # 2015-11-19 → 11-24: Mali raised to Canada's 3 (our 4), the only level change.
    assert [(c, b, a) for c, k, b, a in stored[3] if k in ("raised", "lowered")] == [("ML", 3, 4)]
    assert all(kind != "withdrawn" for rows in stored for _, kind, _, _ in rows)


# --- Germany ----------------------------------------------------------------------------------

# Constant, so that only what the real entries say changes a synthetic document's content.
_DE_NOTE = "SYNTHETIC document: this real index entry's fields with the real Nepal page's text"
_NEPAL = "221216"


def germany_served() -> list[Served]:
    """Each index as captured; the real Nepal document, SYNTHETIC documents for the others."""
    template = json.loads(read(de_auswaertiges_amt.SYNTHETIC_TEMPLATE))
    served = []
    for step, index in enumerate(read_versions(HISTORIES[de_auswaertiges_amt.SOURCE_ID])):
        documents = {de_auswaertiges_amt.INDEX_PATH: index}
        response = json.loads(index)["response"]
        for content_id, entry in response.items():
            if not content_id.isdigit():
                continue
            path = de_auswaertiges_amt.document_path(content_id)
            if step == 0 and content_id == _NEPAL:
                documents[path] = read(de_auswaertiges_amt.SYNTHETIC_TEMPLATE)  # the real one
            else:
                documents[path] = as_json(
                    de_auswaertiges_amt._synthetic_document(template, content_id, entry, _DE_NOTE)
                )
        served.append(documents)
    return served


async def test_germany_excerpt_withdraws_nothing_and_trips_the_canary(
    temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    spec = SOURCES[de_auswaertiges_amt.SOURCE_ID]
    history = HISTORIES[spec.id]
    labels = [v.label for v in history.versions]
    served = germany_served()
    assert _NEPAL not in json.loads(served[1][spec.index_path])["response"]
    expected = expected_steps(spec, served, labels)
    results, stored = await replay_history(temporal_env, database_url, spec, served)
    report(spec.id, labels, stored)
    assert_stored_as_diffed(stored, expected)
    assert kind_counts(stored[0])["new"] == len(stored[0]) == 200
    assert stored[1] == []
    # Only the entries whose lastModified moved were fetched again (republished, same content).
    assert [r.countries_planned for r in results] == [200, expected[1].republished] == [200, 5]
    conn = await asyncpg.connect(database_url)
    pool = await create_pool(database_url)
    try:
        listed = await conn.fetchval(
            "SELECT count(*) FROM advisories WHERE source = $1 AND NOT withdrawn", spec.id
        )
        assert listed == 200
        settings = make_settings(database_url=database_url)
        activities = HealthActivities(
            pool=pool, client=temporal_env.client, settings=settings, health=health_settings()
        )
        health = await activities.check(
            CheckInput(
                snapshot=await activities.collect(), run_id=uuid.uuid4().hex, record_alerts=False
            )
        )
        canary = next(r for r in health.results if r.key == f"index_canary:{spec.id}")
        assert (canary.ok, canary.value) == (False, 17)
        assert canary.detail == "17 countries listed, 200 in the index before"
    finally:
        await pool.close()
        await conn.close()


# --- Australia --------------------------------------------------------------------------------


async def test_australia_derived_level_maps_store_exactly_their_level_differences(
    temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    spec = SOURCES["au_smartraveller"]
    history = HISTORIES[spec.id]
    labels = [v.label for v in history.versions]
    served = [{spec.index_path: export} for export in read_versions(history)]
    expected = expected_steps(spec, served, labels)
    _, stored = await replay_history(temporal_env, database_url, spec, served)
    report(spec.id, labels, stored)
    assert_stored_as_diffed(stored, expected)
    # The level differences between consecutive maps, read from the derived maps themselves.
    seen: dict[str, int] = {}
    for file, rows in zip([v.file for v in history.versions], stored, strict=True):
        levels = {a["country"]["alpha_2"]: a["level"] for a in json.loads(read(file))["advisories"]}
        diff: list[tuple[str, str, int | None, int]] = sorted(
            (c, "raised" if n > seen[c] else "lowered", seen[c], n)
            for c, n in levels.items()
            if c in seen and seen[c] != n
        )
        diff += [(c, "new", None, n) for c, n in levels.items() if c not in seen]
        assert sorted(rows) == sorted(diff), file
        seen.update(levels)
    later = [row for rows in stored[1:] for row in rows]
    assert kind_counts(later) == {**kind_counts([]), "raised": 2, "lowered": 4}
    assert {kind for _, kind, _, _ in later} <= {ChangeKind.RAISED.value, ChangeKind.LOWERED.value}

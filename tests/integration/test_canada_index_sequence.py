"""The three real Canada index captures, served in order, yield exactly the real changes.

The indexes are the real 2015 captures, served unmodified; per-country
documents are SYNTHETIC, generated from each index entry so the crawl can
follow the index (``replay.synthetic.canada_from_real_index``).
"""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.types import ScrapeSourceResult
from advisories.sources import CANADA_TRAVEL
from replay.server import ReplayServer
from replay.synthetic import canada_from_real_index
from starter.schedules import scrape_input
from tests.conftest import make_settings
from tests.fixtures_path import shared_fixtures
from tests.integration.helpers import running_worker
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration
CAPTURES = [
    shared_fixtures(CANADA_TRAVEL.id) / f"index_cta-cap_2015-11-{day}.json"
    for day in ("19", "24", "30")
]


def content_changes(before: Path, after: Path) -> int:
    """Destinations whose level, regional flag or English texts differ (read from the raw JSON)."""

    def words(path: Path) -> dict[str, tuple[object, ...]]:
        data = json.loads(path.read_bytes())["data"]
        return {
            key: (
                entry["advisory-state"],
                entry["has-regional-advisory"],
                entry["eng"].get("advisory-text"),
                entry["eng"].get("recent-updates"),
            )
            for key, entry in data.items()
        }

    old, new = words(before), words(after)
    return sum(1 for key in new if old.get(key) != new[key])


async def test_real_index_sequence_gives_the_real_changes(
    temporal_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "catalogue"
    canada_from_real_index(root, CAPTURES[0])
    client = temporal_env.client
    conn = await asyncpg.connect(database_url)
    try:
        with ReplayServer(root, manifest=None, directory=root) as server:
            settings = make_settings(
                database_url=database_url,
                replay_base_url=server.base_url,
                rate_limits_enabled=False,
            )
            results: list[ScrapeSourceResult] = []
            async with running_worker(client, settings):
                for step, capture in enumerate(CAPTURES):
                    canada_from_real_index(root, capture)
                    results.append(
                        await client.execute_workflow(
                            ScrapeSourceWorkflow.run,
                            scrape_input(CANADA_TRAVEL, settings),
                            id=f"test-canada-sequence-{step}",
                            task_queue=CANADA_TRAVEL.priority.task_queue,
                        )
                    )
        assert [r.countries_planned for r in results] == [229, 21, 21]
        assert [r.countries_quarantined for r in results] == [[], [], []]
        changes = await conn.fetch(
            "SELECT c.country, c.kind, c.level_before, c.level_after, v.fetched_at"
            " FROM changes c JOIN advisory_versions v ON v.id = c.version_id ORDER BY c.id"
        )
        first = [c for c in changes[:229]]
        assert {c["kind"] for c in first} == {"new"} and len(first) == 229
        later = changes[229:]
        raised = [
            (c["country"], c["level_before"], c["level_after"])
            for c in later
            if c["kind"] == "raised"
        ]
        # Mali: advisory-state 2 → 3 on Canada's scale, 3 → 4 on ours.
        assert raised == [("ML", 3, 4)]
        # Every other republished destination changed only its text (its update note).
        assert {c["kind"] for c in later} == {"raised", "text"}
        # Republished entries whose words did not change are not new versions.
        assert len(later) == content_changes(CAPTURES[0], CAPTURES[1]) + content_changes(
            CAPTURES[1], CAPTURES[2]
        )
        mali = await conn.fetchrow(
            "SELECT level, regional_level FROM advisories"
            " WHERE source = 'canada_travel' AND country = 'ML'"
        )
        assert mali is not None and mali["level"] == 4
    finally:
        await conn.close()

"""``parse`` on real captures and ``reparse`` from stored raw documents, through the CLI."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from advisories.sources import get_source
from replay.server import ReplayServer
from starter.schedules import scrape_input
from tests.conftest import make_settings
from tests.fixtures_path import shared_fixtures
from tests.integration.helpers import run_cli, running_worker
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        ("uk_foreign_office", "content_api_haiti_2026-10-07.json", ("HT", 4, None)),
        ("uk_foreign_office", "content_api_turkey_2026-10-07.json", ("TR", 1, 4)),
        ("canada_travel", "cta-cap-mx_2026-10-07_trimmed.json", ("MX", 2, 3)),
    ],
)
def test_parse_prints_normalised_json(
    source: str, name: str, expected: tuple[str, int, int | None]
) -> None:
    run = run_cli(
        "parse", "--source", source, str(shared_fixtures(source) / name), "--json", env={}
    )
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert (row["country"], row["level"], row["regional_level"]) == expected
    assert {"raw_level", "source_updated_at", "title"} <= set(row)


def test_parse_us_feed_and_bad_input() -> None:
    feed = shared_fixtures("us_state_dept") / "TAsTWs_2026-10-07.xml"
    run = run_cli("parse", "--source", "us_state_dept", str(feed), "--json", env={})
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)) == 213
    wrong = run_cli("parse", "--source", "canada_travel", str(feed), env={})
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1
    missing = run_cli("parse", "--source", "us_state_dept", "/nonexistent.xml", env={})
    assert missing.returncode == 2 and "no such file" in missing.stderr


async def test_reparse_rederives_from_stored_documents_and_records_only_real_differences(
    temporal_env: WorkflowEnvironment, database_url: str, replay_server: ReplayServer
) -> None:
    client = temporal_env.client
    settings = make_settings(
        database_url=database_url,
        replay_base_url=replay_server.base_url,
        rate_limits_enabled=False,
    )
    spec = get_source("us_state_dept")
    async with running_worker(client, settings):
        await client.execute_workflow(
            ScrapeSourceWorkflow.run,
            scrape_input(spec, settings),
            id="test-reparse-us",
            task_queue=spec.priority.task_queue,
        )
    env = {"DATABASE_URL": database_url}
    same = await asyncio.to_thread(run_cli, "reparse", "--source", "us_state_dept", env=env)
    assert same.returncode == 0, same.stderr
    assert "213 stored documents re-parsed, 0 changed" in same.stdout

    # Simulate a parser fix: a stored advisory that differs from what the parser
    # now derives from the same raw bytes is corrected, and the correction is a change.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE advisories SET content_hash = 'stale', level = 1"
            " WHERE source = 'us_state_dept' AND country = 'SA'"
        )
        fixed = await asyncio.to_thread(run_cli, "reparse", "--source", "us_state_dept", env=env)
        assert fixed.returncode == 0, fixed.stderr
        assert "1 changed" in fixed.stdout
        level = await conn.fetchval(
            "SELECT level FROM advisories WHERE source = 'us_state_dept' AND country = 'SA'"
        )
        assert level == 3
        kinds = await conn.fetch("SELECT kind FROM changes WHERE country = 'SA' ORDER BY id")
        assert [k["kind"] for k in kinds] == ["new", "raised"]
        assert await conn.fetchval("SELECT count(*) FROM advisory_versions") == 214
    finally:
        await conn.close()

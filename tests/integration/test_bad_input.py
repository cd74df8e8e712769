"""Bad input, table-driven: the CLI and the quarantine signals.

Each case must give a clear error (one line, non-zero exit code, or a refusal
kept in the workflow's history) and change nothing that is stored. The parsers'
own bad documents need no server: ``tests/unit/test_bad_documents.py``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.types import QuarantineState
from advisories.sources import US_STATE_DEPT
from replay.server import ReplayServer
from starter.schedules import scrape_input
from tests.conftest import temporal_cli
from tests.integration.helpers import (
    cli_env,
    replay_settings,
    run_cli,
    running_worker,
    wait_for_workflow,
)
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration
TABLES = (
    "advisories",
    "advisory_versions",
    "changes",
    "documents",
    "index_entries",
    "rate_limits",
    "dead_letter_jobs",
)


async def digest(url: str) -> dict[str, str]:
    """A fingerprint of every stored row of the tables bad input must not touch."""
    conn = await asyncpg.connect(url)
    try:
        return {
            table: await conn.fetchval(
                "SELECT count(*) || ':'"
                " || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
                f" FROM {table} t"
            )
            for table in TABLES
        }
    finally:
        await conn.close()


@pytest.fixture
async def crawled(
    temporal_env: WorkflowEnvironment, database_url: str, replay_server: ReplayServer
) -> AsyncIterator[dict[str, str]]:
    """A database holding one real US crawl; yields the CLI's environment."""
    client = temporal_env.client
    settings = replay_settings(database_url, replay_server, rate_limits_enabled=False)
    async with running_worker(client, settings):
        await client.execute_workflow(
            ScrapeSourceWorkflow.run,
            scrape_input(US_STATE_DEPT, settings),
            id=f"test-bad-input-{datetime.now(UTC).timestamp()}",
            task_queue=US_STATE_DEPT.priority.task_queue,
        )
    yield cli_env(client, database_url)


# fmt: off
CLI_CASES: list[tuple[list[str], int, str]] = [
    (["advisories", "--source", "atlantis"], 2, "unknown source 'atlantis'"),
    (["advisories", "--country", "France!"], 2, "invalid country"),
    (["changes", "--since", "last tuesday"], 2, "invalid --since"),
    (["jobs", "--status", "exploded"], 2, "invalid status"),
    (["dead-letters", "--status", "maybe"], 2, "invalid status"),
    (["schedule", "--country", "FR"], 2, "--country needs --source"),
    (["schedule", "--source", "us_state_dept", "--country", "ZZ"], 2, "unknown country ZZ"),
    (["requeue", "DROP TABLE advisories"], 2, "invalid quarantine id"),
    (["requeue", "quarantine-us_state_dept-FR-999999"], 2, "no quarantine"),
    (["resolve", "quarantine-us_state_dept-FR-1", "--note", "  "], 2, "--note must not be empty"),
    (["rate-limits", "--source", "nowhere"], 2, "unknown source"),
    (["rate-limits", "--set", "requests_per_hour=5"], 2, "--source"),
    (["rate-limits", "--source", "us_state_dept", "--set", "requests_per_hour=-1"], 2, "requests_per_hour"),
    (["rate-limits", "--source", "us_state_dept", "--set", "speed=11"], 2, "speed"),
    (["rate-limits", "--source", "us_state_dept", "--set", "timezone=Mars/Olympus"], 2, "timezone"),
    (["rate-limits", "--source", "us_state_dept", "--set", "requests_per_hour"], 2, "NAME=VALUE"),
    (["schedules", "pause", "scrape-atlantis"], 2, "unknown schedule"),
    (["schedules", "backfill", "scrape-us_state_dept", "--start", "2026-01-02", "--end", "2026-01-01"], 2, "--end must be after --start"),
    (["parse", "--source", "us_state_dept", "/no/such/file.xml"], 2, "no such file"),
]
# fmt: on


async def test_cli_rejects_bad_input_in_one_line_and_changes_nothing(
    crawled: dict[str, str], database_url: str
) -> None:
    before = await digest(database_url)
    assert before["advisories"].startswith("213:")
    failures = []
    for args, code, message in CLI_CASES:
        run = await asyncio.to_thread(run_cli, *args, env=crawled)
        lines = run.stderr.strip().splitlines()
        if run.returncode != code or len(lines) != 1 or message not in lines[0]:
            failures.append((args, run.returncode, run.stderr))
    assert failures == []
    assert await digest(database_url) == before


SIGNAL_CASES: list[tuple[str, str]] = [
    ("resolve", "42"),
    ("resolve", '["a", "b"]'),
    ("resolve", '{"reason": "x"}'),
    ("requeue", "3.5"),
    ("requeue", '{"note": {"nested": true}}'),
    ("resolve", json.dumps("x" * 5000)),
]


async def test_wrong_signal_payloads_are_refused_and_change_nothing(
    temporal_env: WorkflowEnvironment, database_url: str, replay_server: ReplayServer
) -> None:
    client = temporal_env.client
    settings = replay_settings(
        database_url, replay_server, rate_limits_enabled=False, retry_maximum_attempts=1
    )
    replay_server.put("us_state_dept", US_STATE_DEPT.index_path, b"not a feed")
    try:
        async with running_worker(client, settings):
            with pytest.raises(WorkflowFailureError):
                await client.execute_workflow(
                    ScrapeSourceWorkflow.run,
                    scrape_input(US_STATE_DEPT, settings),
                    id=f"test-bad-signals-{datetime.now(UTC).timestamp()}",
                    task_queue=US_STATE_DEPT.priority.task_queue,
                )
            quarantine = await wait_for_workflow(
                client,
                "WorkflowType = 'QuarantineWorkflow' AND ExecutionStatus = 'Running'"
                " AND FailureKind = 'parse'",
            )
            before = await digest(database_url)
            address = client.service_client.config.target_host
            for name, payload in SIGNAL_CASES:
                sent = await asyncio.to_thread(
                    subprocess.run,
                    [temporal_cli(), "workflow", "signal", "--address", address,
                     "--workflow-id", quarantine.id, "--name", name, "--input", payload],
                    capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                assert sent.returncode == 0, sent.stderr
            # Not JSON at all: the temporal CLI itself refuses, in one line.
            broken = await asyncio.to_thread(
                subprocess.run,
                [temporal_cli(), "workflow", "signal", "--address", address,
                 "--workflow-id", quarantine.id, "--name", "resolve", "--input", "{oops"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert broken.returncode != 0
            state = await quarantine.query("state")
            assert state["status"] == "open" and state["requeue_count"] == 0
            refused = [h for h in state["history"] if " ignored " in h]
            assert len(refused) == len(SIGNAL_CASES), state["history"]
            assert await digest(database_url) == before
            # A good payload still works afterwards.
            await quarantine.signal("resolve", {"note": "checked by hand"})
            final = await client.get_workflow_handle(
                quarantine.id, result_type=QuarantineState
            ).result()
            assert final.status == "resolved" and final.note == "checked by hand"
    finally:
        replay_server.clear_overrides()

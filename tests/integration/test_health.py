"""Health, metrics and worker status on the real dev server, PostgreSQL and replay server.

The sources are a SYNTHETIC catalogue (``replay.synthetic``) behind a private
replay server; faults are real HTTP errors from it. Workers are stopped for
real; the CLI runs as a subprocess, as a person runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.health import CheckInput, HealthActivities
from advisories.health import HealthSettings
from advisories.queues import MONITORING
from advisories.settings import Settings
from advisories.sources import UK_FOREIGN_OFFICE, US_STATE_DEPT
from replay import FaultRule
from replay.server import ReplayServer
from replay.synthetic import UK_INDEX_FILE
from starter.schedules import scrape_input
from tests.conftest import free_port
from tests.integration.health_helpers import cli, health_settings, health_worker
from tests.integration.helpers import (
    REPO,
    cli_env,
    crawl,
    replay_settings,
    running_worker,
    unique,
)
from workflows import ALL_WORKFLOWS, ScrapeSourceWorkflow
from workflows.monitoring import HealthInput, HealthSummary, HealthWorkflow

pytestmark = pytest.mark.integration
US_FEED = US_STATE_DEPT.index_path


def health_env(client: Client, database_url: str, queue: str) -> dict[str, str]:
    """The CLI's environment, checking the workers of ``queue``."""
    return {
        **cli_env(client, database_url),
        "HEALTH_QUEUES": json.dumps([queue]),
        "RATE_LIMITS_ENABLED": "false",
    }


@dataclass(frozen=True)
class Stack:
    """One test's handles: the servers, a crawl of the private catalogue, a queue of its own.

    Attributes:
        client: The dev server's client.
        server: The replay server of the test's private catalogue.
        root: That catalogue's folder (the test may edit it).
        settings: Settings for crawling ``server`` into the test's database (rate limits off).
        queue: A health queue nobody else polls.
        identity: The identity of this test's health worker.
        health: Health settings checking ``queue``.
        env: The CLI's environment, checking ``queue``.
    """

    client: Client
    server: ReplayServer
    root: Path
    settings: Settings
    queue: str
    identity: str
    health: HealthSettings
    env: dict[str, str]

    def scraping(self) -> contextlib.AbstractAsyncContextManager[list[Worker]]:
        """The project's workers on every queue, until the block ends."""
        return running_worker(self.client, self.settings)

    def health_worker(self) -> contextlib.AbstractAsyncContextManager[HealthActivities]:
        """The health worker polling ``queue`` as ``identity``, until the block ends."""
        return health_worker(
            self.client, self.settings, self.health, queue=self.queue, identity=self.identity
        )

    async def crawl(self, tag: str) -> None:
        """One cycle of every source (with the workers of :meth:`scraping` running)."""
        await crawl(self.client, self.settings, tag)


@pytest.fixture
def stack(
    temporal_env: WorkflowEnvironment, database_url: str, served: tuple[ReplayServer, Path]
) -> Stack:
    server, root = served
    queue = unique("health")
    return Stack(
        client=temporal_env.client,
        server=server,
        root=root,
        settings=replay_settings(database_url, server, rate_limits_enabled=False),
        queue=queue,
        identity=unique("worker") + "@test",
        health=health_settings(health_queues=[queue]),
        env=health_env(temporal_env.client, database_url, queue),
    )


def checks_by_key(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["key"]: c for c in body["checks"]}


async def health_until(env: dict[str, str], code: int, *, within: float = 20.0) -> dict[str, Any]:
    """``health --json`` until it exits with ``code`` (pollers show up within seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        run = await cli("health", "--json", env=env)
        assert run.returncode in (0, 1), run.stderr
        if run.returncode == code:
            body: dict[str, Any] = json.loads(run.stdout)
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"health never exited {code}: {run.stdout}")
        await asyncio.sleep(0.5)


async def scrape(client: Client, settings: Settings, source: str, tag: str) -> Any:
    spec = US_STATE_DEPT if source == US_STATE_DEPT.id else UK_FOREIGN_OFFICE
    return await client.execute_workflow(
        ScrapeSourceWorkflow.run,
        scrape_input(spec, settings),
        id=f"test-health-{tag}-{uuid.uuid4().hex[:6]}",
        task_queue=spec.priority.task_queue,
    )


async def test_health_cli_turns_unhealthy_when_the_worker_stops_and_back(
    stack: Stack, conn: asyncpg.Connection
) -> None:
    queue, identity, env = stack.queue, stack.identity, stack.env
    async with stack.scraping():
        await stack.crawl(f"cli-{queue}")

    async with stack.health_worker():
        up = await health_until(env, 0)
        assert up["failing"] == [] and up["healthy"] is True
        checks = checks_by_key(up)
        workers = checks[f"queue_workers:{queue}"]
        assert (workers["ok"], workers["value"], workers["threshold"]) == (True, 1, 1)
        assert identity in workers["detail"]
        rate = checks["success_rate:uk_foreign_office"]
        assert (rate["value"], rate["threshold"]) == (100.0, 80.0)
        assert checks["freshness:canada_travel"]["threshold"] == 24.0  # twice 12 h
        assert checks["index_canary:uk_foreign_office"]["value"] == 20

        status = await cli("worker", "status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        mine = {r["identity"]: r for r in json.loads(status.stdout)}[identity]
        assert (mine["live"], mine["queues"], mine["stopped_at"]) == (True, [queue], None)
        assert 20 < mine["rss_mb"] < 2000 and mine["peak_rss_mb"] >= mine["rss_mb"]

    # Stopped cleanly: at once, not minutes later when the server forgets the pollers.
    down = await cli("health", "--json", env=env)
    assert down.returncode == 1, down.stderr
    body = json.loads(down.stdout)
    assert body["healthy"] is False and body["failing"] == [f"queue_workers:{queue}"]
    gone = checks_by_key(body)[f"queue_workers:{queue}"]
    assert (gone["value"], gone["detail"]) == (0, "no live worker polls this queue")
    table = await cli("health", env=env)
    assert table.returncode == 1
    assert "FAIL" in table.stdout and "no live worker polls this queue" in table.stdout
    assert table.stderr.strip() == f"error: unhealthy: queue_workers:{queue}"
    status = await cli("worker", "status", "--json", env=env)
    mine = {r["identity"]: r for r in json.loads(status.stdout)}[identity]
    assert mine["live"] is False and mine["stopped_at"] is not None

    async with stack.health_worker():
        back = await health_until(env, 0)
        assert back["failing"] == []

    rows = await conn.fetch(
        "SELECT run_id, ok, value, threshold FROM health_checks"
        " WHERE name = 'queue_workers' AND queue = $1 ORDER BY checked_at",
        queue,
    )
    # Runs before the first poll arrived may say 0: compare the changes of state.
    states = [state for state, _ in itertools.groupby((r["ok"], r["value"]) for r in rows)]
    assert states[-3:] == [(True, 1), (False, 0), (True, 1)]
    assert all(r["run_id"].startswith("cli-") and r["threshold"] == 1 for r in rows)


async def test_metrics_cli_shows_jobs_requests_and_queues(
    stack: Stack, conn: asyncpg.Connection
) -> None:
    queue, identity, env = stack.queue, stack.identity, stack.env
    async with stack.scraping():
        await stack.crawl(f"metrics-{queue}")
    requests = await conn.fetchval(
        "SELECT count(*) FROM source_requests WHERE source = 'uk_foreign_office'"
    )
    longest = await conn.fetchval(
        "SELECT max(duration_ms) FROM scrape_jobs WHERE source = 'uk_foreign_office'"
        " AND kind IN ('index', 'country')"
    )

    async with stack.health_worker():
        run = await cli("metrics", "--hours", "2", "--json", env=env)
        assert run.returncode == 0, run.stderr
        data = json.loads(run.stdout)
        table = await cli("metrics", env=env)
    assert data["hours"] == 2.0 and data["database_ok"] and data["temporal_ok"]
    uk = {s["source"]: s for s in data["sources"]}["uk_foreign_office"]
    # One cycle row, one index fetch, twenty country fetches.
    assert uk["jobs_by_status"] == {"success": 22}
    assert (uk["fetches_finished"], uk["fetches_succeeded"], uk["success_rate"]) == (21, 21, 100.0)
    assert uk["requests_made"] == requests and uk["duration_max_ms"] == longest
    assert uk["duration_p50_ms"] <= uk["duration_p95_ms"] <= uk["duration_max_ms"]
    assert uk["rate_limit_enforced"] is False and uk["requests_allowed"] == 2 * 120
    assert uk["index_count_latest"] == 20 and uk["last_index_status"] == "success"
    [mine] = data["queues"]
    assert (mine["queue"], mine["backlog"], mine["live_workers"]) == (queue, 0, 1)
    assert {p["identity"] for p in mine["pollers"]} == {identity}
    assert table.returncode == 0, table.stderr
    assert "Sources (last 24 h" in table.stdout and "Task queues" in table.stdout
    assert "success 22" in table.stdout and identity in table.stdout


async def test_health_workflow_fails_while_a_source_fails_and_recovers(
    stack: Stack, conn: asyncpg.Connection
) -> None:
    client, server, settings, queue = stack.client, stack.server, stack.settings, stack.queue

    async def check(tag: str) -> HealthSummary:
        return await client.execute_workflow(
            HealthWorkflow.run,
            HealthInput(notify=False),
            id=f"test-health-{tag}-{queue}",
            task_queue=queue,
        )

    async with stack.scraping(), stack.health_worker():
        await stack.crawl(f"wf-{queue}")
        first = await check("first")
        assert (first.healthy, first.failing, first.stored) == (True, [], True)

        server.set_faults(
            FaultRule(source="us_state_dept", path_prefix=US_FEED, kind="status", status=503)
        )
        with pytest.raises(WorkflowFailureError):
            await scrape(client, settings, US_STATE_DEPT.id, "fail")
        failing = await check("failing")
        assert failing.healthy is False
        assert failing.failing == ["index_fetch:us_state_dept"]
        handle = client.get_workflow_handle(f"test-health-failing-{queue}")
        run_id = (await handle.describe()).run_id
        row = await conn.fetchrow(
            "SELECT ok, detail FROM health_checks"
            " WHERE run_id = $1 AND name = 'index_fetch' AND source = 'us_state_dept'",
            run_id,
        )
        assert row is not None and row["ok"] is False
        assert row["detail"].startswith("latest index fetch: dead_letter: ")
        assert "503" in row["detail"]
        stored = await conn.fetchval("SELECT count(*) FROM health_checks WHERE run_id = $1", run_id)
        assert stored == failing.checks

        server.clear_faults()
        await scrape(client, settings, US_STATE_DEPT.id, "heal")
        healed = await check("healed")
        assert (healed.healthy, healed.failing) == (True, [])


async def test_index_canary_catches_a_shrunken_and_an_empty_index(stack: Stack) -> None:
    client, server, settings = stack.client, stack.server, stack.settings
    index = json.loads((stack.root / UK_FOREIGN_OFFICE.id / UK_INDEX_FILE).read_bytes())

    async def canary(activities: HealthActivities) -> tuple[list[str], dict[str, Any]]:
        report = await activities.check(
            CheckInput(
                snapshot=await activities.collect(), run_id=uuid.uuid4().hex, record_alerts=False
            )
        )
        result = next(r for r in report.results if r.key == "index_canary:uk_foreign_office")
        return report.failing, {"ok": result.ok, "value": result.value, "detail": result.detail}

    async with stack.scraping(), stack.health_worker() as activities:
        await stack.crawl(f"canary-{stack.queue}")
        failing, result = await canary(activities)
        assert failing == [] and result["value"] == 20

        index["links"]["children"] = index["links"]["children"][:5]
        server.put(UK_FOREIGN_OFFICE.id, UK_FOREIGN_OFFICE.index_path, json.dumps(index))
        await scrape(client, settings, UK_FOREIGN_OFFICE.id, "shrunk")
        failing, result = await canary(activities)
        assert failing == ["index_canary:uk_foreign_office"]
        assert result == {
            "ok": False,
            "value": 5,
            "detail": "5 countries listed, 20 in the index before",
        }

        index["links"]["children"] = []
        server.put(UK_FOREIGN_OFFICE.id, UK_FOREIGN_OFFICE.index_path, json.dumps(index))
        with pytest.raises(WorkflowFailureError):
            await scrape(client, settings, UK_FOREIGN_OFFICE.id, "empty")
        failing, result = await canary(activities)
        assert failing == ["index_canary:uk_foreign_office", "index_fetch:uk_foreign_office"]
        assert result["ok"] is False and result["value"] == 0
        assert result["detail"].startswith("index quarantined: ")
        assert "lists no countries" in result["detail"]


async def test_unreachable_database_and_temporal_are_reported_not_raised(
    temporal_env: WorkflowEnvironment,
) -> None:
    dead_db = f"postgresql://postgres@127.0.0.1:{free_port()}/advisories"
    env = {
        "DATABASE_URL": dead_db,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "HEALTH_QUEUES": "[]",
    }
    run = await cli("health", "--json", env=env)
    assert run.returncode == 1, run.stderr
    body = json.loads(run.stdout)
    assert body["failing"] == ["database"] and body["stored"] is False
    assert checks_by_key(body)["database"]["detail"].startswith("unreachable: ")

    both = await cli(
        "health", "--json", env={**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    )
    assert both.returncode == 1
    assert json.loads(both.stdout)["failing"] == ["database", "temporal"]

    metrics = await cli("metrics", env=env)
    assert metrics.returncode == 1 and metrics.stdout == ""
    [line] = metrics.stderr.strip().splitlines()
    assert line.startswith("error: cannot read metrics: PostgreSQL ")


@pytest.mark.skipif(
    HealthWorkflow not in ALL_WORKFLOWS,
    reason="HealthWorkflow is not registered in workflows.ALL_WORKFLOWS (and the worker) yet",
)
async def test_a_worker_process_runs_health_reports_its_memory_and_its_clean_stop(
    temporal_env: WorkflowEnvironment, database_url: str, conn: asyncpg.Connection
) -> None:
    client = temporal_env.client
    env = health_env(client, database_url, MONITORING)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        cwd=REPO,
        env={**os.environ, **env, "LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    identity = f"{process.pid}@{socket.gethostname()}"

    async def me() -> dict[str, Any] | None:
        run = await cli("worker", "status", "--json", env=env)
        assert run.returncode == 0, run.stderr
        rows = {r["identity"]: r for r in json.loads(run.stdout)}
        return rows.get(identity)

    try:
        for _ in range(60):
            row = await me()
            if row is not None and row["live"] and row["rss_mb"] is not None:
                break
            await asyncio.sleep(0.5)
        assert row is not None and row["live"] and row["stopped_at"] is None
        assert MONITORING in row["queues"] and 20 < row["rss_mb"] < 500
        summary: HealthSummary = await client.execute_workflow(
            HealthWorkflow.run,
            HealthInput(queues=[MONITORING], notify=False),
            id=f"test-health-process-{uuid.uuid4().hex[:8]}",
            task_queue=MONITORING,
        )
        assert summary.stored and "queue_workers:monitoring" not in summary.failing
        memory = await conn.fetchrow(
            "SELECT ok, value FROM health_checks WHERE name = 'worker_memory' AND worker = $1",
            identity,
        )
        assert memory is not None and memory["ok"] and 20 < memory["value"] < 500
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    row = await me()
    assert row is not None and row["live"] is False and row["stopped_at"] is not None

"""Reports and cleanup against a real crawl: real PostgreSQL, dev server, replay server.

The data comes from crawling the SYNTHETIC catalogue (``replay.synthetic``; the
US feed is the real capture) with the project's own workers, as the schedules
would, so the report's numbers and the cleanup's guarantees are checked on rows
the system itself wrote.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.cleanup import (
    MIN_RETENTION,
    Cleaner,
    CleanupActivities,
    CleanupInput,
    CleanupResult,
    retention,
)
from activities.reports import (
    ReportActivities,
    ReportGenerator,
    ReportInput,
    ReportResult,
    temporal_backlog_probe,
)
from advisories.health import Alert, CheckName, CheckResult, WebhookMessage, reconcile
from advisories.queues import MAINTENANCE, REPORTING, SCRAPING
from advisories.settings import Settings
from advisories.sources import SOURCES
from chaos.catalogue import expected as catalogue_expected
from replay.server import ReplayServer
from replay.synthetic import set_level
from store.dead_letters import DeadLetterStore
from store.health import AlertStore, WebhookOutbox
from tests.integration.helpers import cli_env, crawl, replay_settings, run_cli, running_worker
from workflows.cleanup import CleanupWorkflow
from workflows.reporting import ReportWorkflow

pytestmark = pytest.mark.integration


def expected_advisories(root: Path) -> dict[str, int]:
    """Advisories per source a crawl of the catalogue at ``root`` stores (one per country)."""
    return {source: len(e.hashes) for source, e in catalogue_expected(root).items()}


@dataclass(frozen=True)
class Crawled:
    """The test's database after a first crawl of its private catalogue, every source complete.

    Attributes:
        settings: The settings it was crawled with (rate limits off).
        root: The catalogue's folder (the test may edit it and crawl again).
    """

    settings: Settings
    root: Path


@pytest.fixture
async def crawled(
    temporal_env: WorkflowEnvironment, database_url: str, served: tuple[ReplayServer, Path]
) -> Crawled:
    server, root = served
    settings = replay_settings(database_url, server, rate_limits_enabled=False)
    async with running_worker(temporal_env.client, settings):
        first = await crawl(temporal_env.client, settings, "first")
    assert {s: r.versions_created for s, r in first.items()} == expected_advisories(root)
    return Crawled(settings, root)


class _Html(HTMLParser):
    """Counts tags and checks that every end tag closes the innermost open one."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.svgs = 0
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.svgs += tag == "svg"
        self.scripts += tag == "script"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def well_formed(page: str) -> _Html:
    parser = _Html()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == [] and parser.scripts == 0
    return parser


async def dead_letter(
    pool: asyncpg.Pool,
    workflow_id: str,
    *,
    source: str,
    country: str,
    job_key: str,
    failed_at: datetime,
    status: str,
    requeue_count: int = 0,
    note: str | None = None,
) -> None:
    """A quarantined fetch that failed four times with HTTP 502, as its workflow mirrors it."""
    await DeadLetterStore(pool).upsert(
        {
            "workflow_id": workflow_id,
            "source": source,
            "country": country,
            "job_key": job_key,
            "failure_kind": "http_5xx",
            "message": "502",
            "traceback": None,
            "attempts": 4,
            "http_status": 502,
            "first_failure_at": failed_at,
            "last_failure_at": failed_at,
            "requeue_count": requeue_count,
            "status": status,
            "note": note,
        }
    )


def one_line_error(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------- reports


async def test_report_of_a_real_crawl_has_the_right_counts_and_the_cli_writes_it(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    crawled: Crawled,
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    settings, root = crawled.settings, crawled.root
    # One UK country raised at the source, then a second cycle: one notable change.
    country = await conn.fetchval(
        "SELECT country FROM advisories WHERE source = 'uk_foreign_office' AND level = 1"
        " ORDER BY country LIMIT 1"
    )
    set_level(root, "uk_foreign_office", country, 4)
    async with running_worker(temporal_env.client, settings):
        second = await crawl(temporal_env.client, settings, "second")
    assert second["uk_foreign_office"].versions_created == 1

    expected = {
        "fetch_jobs": await conn.fetchval(
            "SELECT count(*) FROM scrape_jobs WHERE kind IN ('index', 'country')"
        ),
        "fetch_jobs_failed": 0,
        "cycles": 2 * len(SOURCES),
        "requests": await conn.fetchval("SELECT count(*) FROM source_requests"),
        "advisories": sum(expected_advisories(root).values()),
        "countries": await conn.fetchval("SELECT count(DISTINCT country) FROM advisories"),
        "disagreements": await conn.fetchval(
            """
            SELECT count(*) FROM (
                SELECT country FROM advisories WHERE NOT withdrawn GROUP BY country
                HAVING count(*) >= 2 AND max(level) > min(level)) d
            """
        ),
        "changes": sum(expected_advisories(root).values()) + 1,
        "notable_changes": 1,
    }
    assert expected["disagreements"] > 0  # the synthetic levels are drawn per source

    generator = ReportGenerator(pool)
    generated = await generator.generate(ReportInput(hours=1))
    assert generated.result.counts == expected
    assert generated.result.paths == []
    report = generated.report
    by_source = {s.source: s for s in report.sources}
    assert {s: by_source[s].advisories for s in SOURCES} == expected_advisories(root)
    assert all(s.success_rate == 100.0 for s in report.sources)
    assert by_source["uk_foreign_office"].finished == 1 + 20 + 1 + 1  # index, 20, index, 1
    # Two cycles, the second from 304s: US and Canada each answered one 304.
    assert by_source["us_state_dept"].not_modified == 1
    assert by_source["canada_travel"].not_modified == 1
    [raised] = report.changes.notable
    assert (raised.source, raised.country, raised.kind) == (
        "uk_foreign_office",
        country,
        "raised",
    )
    assert (raised.level_before, raised.level_after) == (1, 4)
    assert report.backlog == ()

    # A retried activity (same key) replaces its report instead of adding one.
    again = await generator.generate(ReportInput(hours=1), report_key="wf/run/1")
    replaced = await generator.generate(ReportInput(hours=2), report_key="wf/run/1")
    assert replaced.result.report_id == again.result.report_id
    stored = await pool.fetchrow(
        "SELECT count(*) AS n, max(period_end - period_start) AS longest FROM reports"
    )
    assert stored is not None and stored["n"] == 2
    assert stored["longest"].total_seconds() == 7200

    # The CLI, as a person runs it (the dev server answers: the backlog is in).
    out = tmp_path / "reports"
    env = cli_env(temporal_env.client, database_url)
    run = await asyncio.to_thread(
        run_cli, "generate-report", "--hours", "1", "--out", str(out), "--json", env=env
    )
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    assert printed["counts"] == expected
    assert len(printed["paths"]) == 3
    assert sorted(Path(p).suffix for p in printed["paths"]) == [".html", ".json", ".md"]
    for path in map(Path, printed["paths"]):
        assert path.parent == out.resolve() and path.name.startswith("report-")
    assert {q["queue"] for q in printed["backlog"]} >= {SCRAPING, REPORTING, MAINTENANCE}
    html_path = next(Path(p) for p in printed["paths"] if p.endswith(".html"))
    page = html_path.read_text(encoding="utf-8")
    assert well_formed(page).svgs == 6
    assert "Travel-advisory report" in page
    json_file = next(Path(p) for p in printed["paths"] if p.endswith(".json"))
    assert json.loads(json_file.read_text(encoding="utf-8"))["counts"] == expected
    row = await conn.fetchrow(
        "SELECT html, markdown, json::text AS json, paths, formats FROM reports WHERE id = $1",
        printed["report_id"],
    )
    assert row is not None
    assert row["html"] == page
    assert list(row["paths"]) == printed["paths"]
    assert list(row["formats"]) == ["html", "markdown", "json"]
    assert json.loads(row["json"])["counts"] == expected
    assert row["markdown"].startswith("# Travel-advisory report")

    # Human output: one summary line, then the paths.
    human = await asyncio.to_thread(run_cli, "generate-report", "--out", str(out), env=env)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.strip().splitlines()
    assert lines[0].startswith("report ") and "stored" in lines[0]
    assert len(lines) == 4 and all(Path(p).is_file() for p in lines[1:])

    bad = await asyncio.to_thread(run_cli, "generate-report", "--hours", "0", env=env)
    assert "--hours" in one_line_error(bad)


# --------------------------------------------------------------------------- cleanup


async def test_cleanup_removes_old_rows_and_keeps_every_current_advisory_and_its_document(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    crawled: Crawled,
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
) -> None:
    settings, root = crawled.settings, crawled.root
    # A UK country changes: its old document is now needed only by its old
    # version, and the UK index document is replaced by a new one.
    country = await conn.fetchval(
        "SELECT country FROM advisories WHERE source = 'uk_foreign_office' AND level = 1"
        " ORDER BY country LIMIT 1"
    )
    old_document = await conn.fetchval(
        "SELECT v.document_sha256 FROM advisories a JOIN advisory_versions v"
        " ON v.id = a.version_id WHERE a.source = 'uk_foreign_office' AND a.country = $1",
        country,
    )
    old_index = await conn.fetchval(
        "SELECT body_sha256 FROM source_documents WHERE source = 'uk_foreign_office'"
        " AND url LIKE '%/api/content/foreign-travel-advice'"
    )
    assert old_document and old_index
    # Everything so far is the "old" data: 40 days back.
    first_jobs = await conn.fetchval("SELECT count(*) FROM scrape_jobs")
    first_requests = await conn.fetchval("SELECT count(*) FROM source_requests")
    await conn.execute("UPDATE scrape_jobs SET started_at = started_at - interval '40 days'")
    await conn.execute(
        "UPDATE source_requests SET requested_at = requested_at - interval '40 days'"
    )
    await conn.execute("UPDATE documents SET created_at = created_at - interval '40 days'")

    set_level(root, "uk_foreign_office", country, 4)
    async with running_worker(temporal_env.client, settings):
        second = await crawl(temporal_env.client, settings, "second")
    assert second["uk_foreign_office"].versions_created == 1

    # The job of an open dead letter stays however old it is.
    kept_job_key = await conn.fetchval(
        "SELECT job_key FROM scrape_jobs WHERE kind = 'country' AND started_at < now() - "
        "interval '30 days' ORDER BY id LIMIT 1"
    )
    await dead_letter(
        pool,
        "quarantine-uk_foreign_office-XX-test",
        source="uk_foreign_office",
        country="XX",
        job_key=kept_job_key,
        failed_at=datetime.now().astimezone(),
        status="open",
    )
    # Two reports: one 40 days old, one new.
    generator = ReportGenerator(pool)
    old_report = (await generator.generate(ReportInput(hours=1))).result.report_id
    new_report = (await generator.generate(ReportInput(hours=1))).result.report_id
    await conn.execute(
        "UPDATE reports SET generated_at = generated_at - interval '40 days' WHERE id = $1",
        old_report,
    )
    # A request two hours old that a slow policy's look-back still needs.
    await conn.execute(
        "UPDATE rate_limits SET min_delay_seconds = 3600, respectful_factor = 0.25"
        " WHERE source = 'canada_travel'"
    )
    await conn.execute(
        "INSERT INTO source_requests (source, requested_at, kind, url, status)"
        " VALUES ('canada_travel', now() - interval '2 hours', 'index', 'http://x/', 200)"
    )

    async def table_counts() -> dict[str, int]:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in (
                "scrape_jobs",
                "source_requests",
                "documents",
                "reports",
                "advisories",
                "advisory_versions",
                "changes",
                "index_entries",
                "dead_letter_jobs",
            )
        }

    before = await table_counts()
    current_documents = await conn.fetch(
        "SELECT DISTINCT v.document_sha256 FROM advisories a"
        " JOIN advisory_versions v ON v.id = a.version_id"
    )
    current_versions = await conn.fetch(
        "SELECT source, country, version_id FROM advisories ORDER BY 1, 2"
    )
    with_document = await conn.fetchval(
        "SELECT count(*) FROM advisory_versions WHERE document_sha256 IS NOT NULL"
    )

    # The CLI: a dry run counts and deletes nothing; days below 1 are refused.
    env = {"DATABASE_URL": database_url}
    dry = await asyncio.to_thread(run_cli, "cleanup", "--days", "1", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    would = json.loads(dry.stdout)
    assert await table_counts() == before
    assert "scrape_jobs: " in dry.stderr and "to delete" in dry.stderr
    line = one_line_error(await asyncio.to_thread(run_cli, "cleanup", "--days", "0", env=env))
    assert "--days" in line

    # "--days 0": everything older than the minimum retention, in small batches.
    progress: list[tuple[str, int, bool]] = []
    result = await Cleaner(pool).run(
        CleanupInput(days=0, batch_size=7),
        progress=lambda t, n, done: progress.append((t, n, done)),
    )
    after = await table_counts()
    expected_deleted = {
        "scrape_jobs": first_jobs - 1,  # all but the open dead letter's
        "source_requests": first_requests,  # not the recent one nor the 2-hour-old one
        "reports": 1,
        "documents": 2,  # the replaced country document and the replaced UK index
    }
    assert {t: result.counts[t] for t in expected_deleted} == expected_deleted
    assert {t: would["counts"][t] for t in expected_deleted} == expected_deleted
    assert result.versions_detached == would["versions_detached"] == 1
    for table, deleted in expected_deleted.items():
        assert after[table] == before[table] - deleted, table
    for table in ("advisories", "advisory_versions", "changes", "index_entries"):
        assert after[table] == before[table], table
    has_health = await conn.fetchval("SELECT to_regclass('health_checks') IS NOT NULL")
    assert ("health_checks" in result.skipped) is not has_health

    # What had to stay, stayed.
    assert await conn.fetchval("SELECT count(*) FROM advisories") == sum(
        expected_advisories(root).values()
    )
    assert (
        await conn.fetch("SELECT source, country, version_id FROM advisories ORDER BY 1, 2")
        == current_versions
    )
    assert not await conn.fetchval(
        """
        SELECT count(*) FROM (SELECT DISTINCT ON (source, country) source, country, id
                              FROM advisory_versions ORDER BY source, country, id DESC) latest
        JOIN advisories a USING (source, country) WHERE a.version_id <> latest.id
        """
    )
    remaining = {r["sha256"] for r in await conn.fetch("SELECT sha256 FROM documents")}
    assert {r["document_sha256"] for r in current_documents} <= remaining
    assert old_document not in remaining and old_index not in remaining
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM advisory_versions WHERE document_sha256 IS NOT NULL"
        )
        == with_document - 1
    )
    assert (
        await conn.fetchval("SELECT count(*) FROM scrape_jobs WHERE job_key = $1", kept_job_key)
        == 1
    )
    assert await conn.fetchval("SELECT id FROM reports") == new_report
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM source_requests WHERE source = 'canada_travel'"
            " AND requested_at < now() - interval '1 hour'"
        )
        == 1
    )
    # Progress: several batches of scrape_jobs, then a last report marked done.
    jobs_progress = [(n, done) for t, n, done in progress if t == "scrape_jobs"]
    assert len(jobs_progress) > 2
    assert jobs_progress[-1] == (first_jobs - 1, True)
    assert [done for _, done in jobs_progress[:-1]] == [False] * (len(jobs_progress) - 1)

    # Nothing left to do: a second run deletes nothing, and says so per table.
    again = await asyncio.to_thread(run_cli, "cleanup", "--days", "1", env=env)
    assert again.returncode == 0, again.stderr
    assert "scrape_jobs" in again.stdout and "documents" in again.stdout
    assert "0 old advisory versions lost their raw document" in again.stdout


# Rows aged by hand below are "old" against this retention; the rest is recent.
RETENTION_DAYS = 30
OLD = timedelta(days=40)
RECENT = timedelta(days=2)


async def test_cleanup_deletes_old_finished_webhook_deliveries_and_keeps_pending_and_recent_ones(
    pool: asyncpg.Pool,
) -> None:
    outbox = WebhookOutbox(pool)
    # delivery id -> (how it ends, created how long ago, last attempted how long ago)
    cases: dict[str, tuple[str, timedelta, timedelta | None]] = {
        "old-delivered": ("delivered", OLD, OLD),
        "old-failed": ("failed", OLD, OLD),
        "old-abandoned": ("abandoned", OLD, None),
        "old-pending": ("pending", OLD, OLD),
        "recent-delivered": ("delivered", RECENT, RECENT),
        "old-failed-recently": ("failed", OLD, RECENT),
        # Change notifications: the cursor last moved 35 days ago, so the next run
        # re-scans from 35 days and 15 minutes back and re-queues what it finds there
        # unless the delivery row still says it was queued.
        "change:1": ("delivered", timedelta(days=36), timedelta(days=36)),
        "change:2": ("delivered", timedelta(days=35, minutes=5), timedelta(days=35)),
    }
    messages = [
        WebhookMessage(
            delivery_id=name,
            event="change" if name.startswith("change:") else "firing",
            dedup_key=name,
            body={"id": name},
        )
        for name in cases
    ]
    async with pool.acquire() as conn, conn.transaction():
        queued = await outbox.enqueue(
            conn, urls=["https://hooks.example.org/advisories"], messages=messages
        )
    assert sorted(queued) == sorted(cases)
    ids = {
        r["delivery_id"]: r["id"]
        for r in await pool.fetch("SELECT delivery_id, id FROM webhook_deliveries")
    }
    for name, (status, _, _) in cases.items():
        if status == "abandoned":
            await outbox.abandon([ids[name]])
        else:
            # 2xx delivers; an error on the last allowed attempt fails it for good.
            await outbox.attempted(
                ids[name],
                status_code=200 if status == "delivered" else 503,
                error=None if status == "delivered" else "HTTP 503",
                max_attempts=1 if status == "failed" else 20,
            )
    for name, (_, created, attempted) in cases.items():
        await pool.execute(
            "UPDATE webhook_deliveries SET created_at = now() - $2::interval,"
            " last_attempt_at = now() - $3::interval WHERE delivery_id = $1",
            name,
            created,
            attempted,
        )
    await pool.execute(
        "INSERT INTO notification_cursors (name, last_id, updated_at)"
        " VALUES ('changes', 2, now() - interval '35 days')"
    )
    statuses = {
        r["delivery_id"]: r["status"]
        for r in await pool.fetch("SELECT delivery_id, status FROM webhook_deliveries")
    }
    assert statuses == {name: status for name, (status, _, _) in cases.items()}

    would = await Cleaner(pool).run(CleanupInput(days=RETENTION_DAYS, dry_run=True))
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == len(cases)
    result = await Cleaner(pool).run(CleanupInput(days=RETENTION_DAYS, batch_size=2))

    gone = {"old-delivered", "old-failed", "old-abandoned", "change:1"}
    remaining = {
        r["delivery_id"] for r in await pool.fetch("SELECT delivery_id FROM webhook_deliveries")
    }
    assert remaining == set(cases) - gone
    assert result.counts["webhook_deliveries"] == would.counts["webhook_deliveries"] == 4
    # The re-scan point, not the 30 days, bounded the deliveries.
    cutoff = datetime.fromisoformat(result.cutoffs["webhook_deliveries"])
    assert cutoff < datetime.fromisoformat(result.cutoffs["reports"]) - timedelta(days=5)


async def test_cleanup_deletes_old_resolved_alerts_and_never_a_firing_one(
    pool: asyncpg.Pool,
) -> None:
    store = AlertStore()

    async def health_run(results: list[CheckResult], at: datetime) -> dict[str, Alert]:
        """What a health run does with the alerts: load, reconcile, save."""
        async with pool.acquire() as conn, conn.transaction():
            previous = await store.lock_and_load(conn)
            decisions = reconcile(previous, results, now=at, cooldown=timedelta(hours=6))
            await store.save(conn, decisions)
        return {d.alert.key: d.alert for d in decisions}

    async def alert_states() -> dict[str, str]:
        rows = await pool.fetch("SELECT dedup_key, state FROM alerts")
        return {r["dedup_key"]: r["state"] for r in rows}

    def workers(queue: str, *, ok: bool) -> CheckResult:
        return CheckResult(CheckName.QUEUE_WORKERS, ok, int(ok), 1, "", queue=queue)

    now = datetime.now(UTC)
    queues = ("resolved-long-ago", "resolved-recently", "firing")
    fired = await health_run([workers(q, ok=False) for q in queues], now - OLD - OLD)
    # A worker whose check stops being reported at all stays firing as it was.
    memory = CheckResult(CheckName.WORKER_MEMORY, False, 900, 500, "", worker="w@h")
    fired |= await health_run([memory], now - OLD - OLD)
    await health_run(
        [workers(q, ok=q == "resolved-long-ago") for q in queues],
        now - OLD,
    )
    await health_run([workers(q, ok=q != "firing") for q in queues], now - RECENT)
    states = await alert_states()
    assert states == {
        "queue_workers:resolved-long-ago": "resolved",
        "queue_workers:resolved-recently": "resolved",
        "queue_workers:firing": "firing",
        "worker_memory:w@h": "firing",
    }
    assert set(fired) == set(states)

    result = await Cleaner(pool).run(CleanupInput(days=RETENTION_DAYS))

    assert result.counts["alerts"] == 1
    assert await alert_states() == {
        k: v for k, v in states.items() if k != "queue_workers:resolved-long-ago"
    }
    # A deleted resolved alert fires again like any resolved one.
    again = await health_run([workers("resolved-long-ago", ok=False)], now)
    assert again["queue_workers:resolved-long-ago"].notifications == 1
    assert again["queue_workers:resolved-long-ago"].firing


async def test_cleanup_deletes_old_closed_dead_letters_and_never_an_open_one(
    database_url: str, conn: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    # workflow id -> (status, last updated how long ago)
    cases = {
        "old-open": ("open", OLD),
        "old-requeued": ("requeued", OLD),
        "old-recovered": ("recovered", OLD),
        "old-resolved": ("resolved", OLD),
        "recent-resolved": ("resolved", RECENT),
    }
    for name, (status, _) in cases.items():
        await dead_letter(
            pool,
            name,
            source="canada_travel",
            country="FR",
            job_key=f"job-{name}",
            failed_at=now - OLD - OLD,
            status=status,
            requeue_count=int(status != "open"),
            note="fixed upstream" if status == "resolved" else None,
        )
    for name, (_, age) in cases.items():
        await pool.execute(
            "UPDATE dead_letter_jobs SET updated_at = now() - $2::interval WHERE workflow_id = $1",
            name,
            age,
        )

    # The CLI: a dry run counts and deletes nothing, then the cleanup reports each table.
    env = {"DATABASE_URL": database_url}
    days = str(RETENTION_DAYS)
    dry = await asyncio.to_thread(
        run_cli, "cleanup", "--days", days, "--dry-run", "--json", env=env
    )
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["counts"]["dead_letter_jobs"] == 2
    assert await conn.fetchval("SELECT count(*) FROM dead_letter_jobs") == len(cases)
    run = await asyncio.to_thread(run_cli, "cleanup", "--days", days, env=env)
    assert run.returncode == 0, run.stderr
    rows = {
        cells[0]: cells[1]
        for line in run.stdout.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 3
    }
    assert rows["dead_letter_jobs"] == "2"
    assert rows["alerts"] == rows["webhook_deliveries"] == "0"
    assert "dead_letter_jobs: 2 deleted" in run.stderr
    remaining = {
        r["workflow_id"] for r in await conn.fetch("SELECT workflow_id FROM dead_letter_jobs")
    }
    assert remaining == {"old-open", "old-requeued", "recent-resolved"}


def test_retention_never_goes_below_the_minimum() -> None:
    assert retention(0) == MIN_RETENTION
    assert retention(30).days == 30
    assert retention(0.01) == MIN_RETENTION


# --------------------------------------------------------------------------- workflows


async def test_report_and_cleanup_workflows_run_on_the_dev_server(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    client = temporal_env.client
    queue = f"reports-{uuid.uuid4()}"
    await pool.execute(
        "INSERT INTO scrape_jobs (job_key, source, kind, status, started_at, duration_ms)"
        " VALUES ('old', 'us_state_dept', 'index', 'success', now() - interval '40 days', 5),"
        "        ('new', 'us_state_dept', 'index', 'failure', now(), 7)"
    )
    # Three health runs measured the scraping queue's backlog.
    for hours_ago, waiting, workers in ((3, 5, 1), (2, 50, 1), (1, 7, 0)):
        for name, value in (("queue_backlog", waiting), ("queue_workers", workers)):
            await pool.execute(
                "INSERT INTO health_checks (run_id, name, queue, ok, value, threshold,"
                " checked_at) VALUES ($1, $2, 'scraping', true, $3, 100,"
                " now() - make_interval(hours => $4))",
                f"health-{hours_ago}",
                name,
                value,
                hours_ago,
            )
    reports = ReportActivities(pool, backlog=temporal_backlog_probe(client, [queue]))
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ReportWorkflow, CleanupWorkflow],
        activities=[reports.generate_report, CleanupActivities(pool).cleanup],
    ):
        report: ReportResult = await client.execute_workflow(
            ReportWorkflow.run,
            ReportInput(out_dir=str(tmp_path)),
            id=f"report-{uuid.uuid4()}",
            task_queue=queue,
        )
        cleaned: CleanupResult = await client.execute_workflow(
            CleanupWorkflow.run,
            CleanupInput(),
            id=f"cleanup-{uuid.uuid4()}",
            task_queue=queue,
        )
    assert report.counts["fetch_jobs"] == 1 and report.counts["fetch_jobs_failed"] == 1
    assert sorted(Path(p).suffix for p in report.paths) == [".html", ".json", ".md"]
    row = await pool.fetchrow(
        "SELECT report_key, period_end - period_start AS span, json::text AS json"
        " FROM reports WHERE id = $1",
        report.report_id,
    )
    assert row is not None and row["report_key"].startswith("report-")
    assert row["span"].total_seconds() == 6 * 3600  # the default period
    backlog = {q["queue"]: q for q in json.loads(row["json"])["backlog"]}
    assert backlog.keys() == {queue, SCRAPING}
    assert backlog[queue]["points"][0]["pollers"] >= 1  # this test's worker
    scraping = backlog[SCRAPING]
    assert [p["backlog"] for p in scraping["points"]] == [5, 50, 7]
    assert [p["pollers"] for p in scraping["points"]] == [1, 1, 0]
    assert (scraping["latest"], scraping["maximum"]) == (7, 50)
    page = Path(next(p for p in report.paths if p.endswith(".html"))).read_text()
    chart = page[page.index('<svg id="chart-backlog"') :]
    chart = chart[: chart.index("</svg>")]
    # Samples over time: a line (Vega's line mark joins points with "L"), not bars.
    line_mark = r'<g class="mark-line role-mark[^"]*"[^>]*><path [^>]*d="([^"]*)"'
    lines = re.findall(line_mark, chart)
    assert lines and any("L" in d for d in lines)
    assert 'class="mark-rect role-mark' not in chart
    assert cleaned.counts["scrape_jobs"] == 1 and not cleaned.dry_run
    assert await pool.fetchval("SELECT job_key FROM scrape_jobs") == "new"

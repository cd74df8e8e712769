"""Health activities: metrics, checks, alerts and signed webhooks — thin over ``advisories.health``.

* ``collect_metrics`` reads PostgreSQL (jobs, requests, changes, dead letters,
  worker heartbeats) and Temporal (task-queue backlog and pollers). A database
  or a Temporal frontend that does not answer is recorded in the snapshot, never
  raised: "unreachable" is one of the things health must report.
* ``run_health_checks`` evaluates the snapshot, stores one ``health_checks`` row
  per check, decides the alerts (deduplicated in ``alerts``) and puts their
  notifications in an outbox (``webhook_deliveries``) in the same transaction.
* ``queue_change_notifications`` puts the notable advisory changes since the
  last notification in the same outbox (a cursor in ``notification_cursors``;
  deduplicated by change id).
* ``deliver_webhooks`` POSTs what is pending, signed with HMAC-SHA256, and
  raises a retryable error when a receiver did not answer 2xx, so Temporal
  retries with backoff; only what is still pending is sent again.

The SQL of these tables lives here, one class per aggregate, as in
``activities.store``. :class:`WorkerHeartbeat` is the background task a worker
process runs to record its memory and the queues it polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import httpx
import psutil
from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError

from advisories.health import (
    FINISHED_STATUSES,
    NOTABLE_CHANGE_KINDS,
    Alert,
    AlertDecision,
    CheckName,
    CheckResult,
    HealthSettings,
    MetricsSnapshot,
    PollerMetrics,
    QueueMetrics,
    SourceMetrics,
    WorkerMetrics,
    alert_message,
    change_message,
    encode_body,
    evaluate,
    failing,
    poller_live,
    reconcile,
    redact_target,
    signed_headers,
    target_key,
)
from advisories.schedule_spec import scrape_intervals
from advisories.settings import Settings
from advisories.sources import SOURCES
from store.pool import Connection
from store.ratelimits import RateLimitStore

__all__ = [
    "CURSOR_OVERLAP",
    "DATABASE_ERRORS",
    "AlertStore",
    "CarriedAlert",
    "ChangeNotificationInput",
    "ChangeNotificationResult",
    "CheckInput",
    "DeliverInput",
    "DeliveryReport",
    "HealthActivities",
    "HealthCheckStore",
    "HealthReport",
    "MetricsInput",
    "MetricsStore",
    "WebhookMessage",
    "WebhookOutbox",
    "WorkerHeartbeat",
    "WorkerHeartbeatStore",
    "default_identity",
    "new_run_id",
]

log = logging.getLogger(__name__)

#: Errors that mean "PostgreSQL is not there for us" (down, refusing, wrong database or
#: credentials, shutting down), as opposed to a bug in a query, which is raised.
DATABASE_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.TooManyConnectionsError,
)
#: Index quarantines of these kinds mean the source broke its contract (empty, unparseable).
_CONTRACT_KINDS: Final = ["parse", "contract"]
#: Country of a failed index in the dead-letter mirror (``workflows.quarantine.INDEX_COUNTRY``).
_INDEX_COUNTRY: Final = "*"
#: Changes are re-scanned this far behind the cursor: a change written by a transaction
#: that started earlier can commit after a later id was seen (duplicates are dropped).
CURSOR_OVERLAP: Final = timedelta(minutes=15)
#: Key of the transaction-level advisory lock that serialises alert decisions.
_ALERT_LOCK: Final = 7_310_452_119
_TASK_TYPES: Final = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


def default_identity() -> str:
    """The identity Temporal gives a client by default: the same as the worker's pollers."""
    return f"{os.getpid()}@{socket.gethostname()}"


# --------------------------------------------------------------------------- inputs and results


@dataclass(frozen=True)
class MetricsInput:
    """Input of ``collect_metrics``.

    Attributes:
        hours: Window of the job, request and change figures (None: ``HEALTH_WINDOW_HOURS``).
        queues: Task queues to describe (None: ``HEALTH_QUEUES``).
    """

    hours: float | None = None
    queues: list[str] | None = None


@dataclass(frozen=True)
class CarriedAlert:
    """The ``database`` alert, kept by the workflow while PostgreSQL cannot hold it."""

    key: str
    check: str
    first_seen_at: str
    last_sent_at: str
    notifications: int = 1


@dataclass(frozen=True)
class WebhookMessage:
    """One notification: its delivery id, what it announces and its JSON body."""

    delivery_id: str
    event: str
    dedup_key: str
    body: dict[str, Any]


@dataclass(frozen=True)
class CheckInput:
    """Input of ``run_health_checks``.

    Attributes:
        snapshot: What ``collect_metrics`` saw.
        run_id: Stored with every check row (the workflow run, or ``cli-...``).
        carried: Alert state the previous run could not store (database down).
        record_alerts: False only stores the checks (``health`` on demand must not
            swallow the notification the next scheduled run would send).
    """

    snapshot: MetricsSnapshot
    run_id: str
    carried: list[CarriedAlert] = field(default_factory=list)
    record_alerts: bool = True


@dataclass(frozen=True)
class HealthReport:
    """Result of ``run_health_checks``.

    Attributes:
        run_id: As given.
        healthy: True when every check passed.
        failing: Dedup keys of the failing checks (``queue_workers:monitoring``).
        results: Every check result.
        stored: Whether the checks (and alerts) were written to PostgreSQL.
        queued: Alert notifications put in the outbox.
        direct: Notifications to send without the outbox (the database is down).
        carried: Alert state the workflow must keep for the next run (database down).
    """

    run_id: str
    healthy: bool
    failing: list[str]
    results: list[CheckResult]
    stored: bool
    queued: int = 0
    direct: list[WebhookMessage] = field(default_factory=list)
    carried: list[CarriedAlert] = field(default_factory=list)


@dataclass(frozen=True)
class ChangeNotificationInput:
    """Input of ``queue_change_notifications``: at most ``limit`` changes per run."""

    limit: int = 500


@dataclass(frozen=True)
class ChangeNotificationResult:
    """Notable changes found since the cursor and deliveries queued for them."""

    changes: int
    queued: int


@dataclass(frozen=True)
class DeliverInput:
    """Input of ``deliver_webhooks``.

    Attributes:
        direct: Notifications sent without the outbox (not recorded: the database is down).
        limit: At most this many outbox deliveries per attempt.
    """

    direct: list[WebhookMessage] = field(default_factory=list)
    limit: int = 500


@dataclass(frozen=True)
class DeliveryReport:
    """What one ``deliver_webhooks`` attempt did."""

    delivered: int = 0
    failed: int = 0
    abandoned: int = 0


# --------------------------------------------------------------------------- stores


class MetricsStore:
    """Read-only figures over ``scrape_jobs``, ``source_requests``, ``changes``,
    ``dead_letter_jobs`` and ``worker_heartbeats``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ping(self, *, within_seconds: float) -> datetime:
        """The database's clock; raises when it does not answer within ``within_seconds``."""
        async with self._pool.acquire(timeout=within_seconds) as conn:
            now: datetime = await conn.fetchval("SELECT now()", timeout=within_seconds)
        return now

    async def sources(
        self, *, since: datetime, recent_since: datetime, intervals: dict[str, float]
    ) -> dict[str, dict[str, Any]]:
        """Per registered source, the raw figures of :class:`SourceMetrics` (no rate limits)."""
        out: dict[str, dict[str, Any]] = {
            s: {"source": s, "interval_seconds": intervals[s], "jobs_by_status": {}}
            for s in sorted(SOURCES)
        }
        async with self._pool.acquire() as conn:
            for row in await conn.fetch(
                """
                SELECT source, status, count(*) AS n FROM scrape_jobs
                WHERE started_at >= $1 GROUP BY source, status ORDER BY source, status
                """,
                since,
            ):
                _slot(out, row)["jobs_by_status"][row["status"]] = int(row["n"])
            for row in await conn.fetch(
                """
                SELECT source,
                       count(*) FILTER (WHERE is_fetch AND done) AS finished,
                       count(*) FILTER (WHERE is_fetch AND status = 'success') AS succeeded,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
                           FILTER (WHERE is_fetch AND done) AS p50,
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
                           FILTER (WHERE is_fetch AND done) AS p95,
                       max(duration_ms) FILTER (WHERE is_fetch AND done) AS longest,
                       max(peak_rss_mb) AS peak_rss_mb,
                       max(peak_rss_mb) FILTER (
                           WHERE coalesce(finished_at, started_at) >= $3) AS recent_peak_rss_mb
                FROM (SELECT *, kind IN ('index', 'country') AS is_fetch,
                             status = ANY($2::text[]) AS done
                      FROM scrape_jobs WHERE started_at >= $1) AS j
                GROUP BY source
                """,
                since,
                sorted(FINISHED_STATUSES),
                recent_since,
            ):
                slot = _slot(out, row)
                slot["fetches_finished"] = int(row["finished"])
                slot["fetches_succeeded"] = int(row["succeeded"])
                slot["duration_p50_ms"] = _round(row["p50"])
                slot["duration_p95_ms"] = _round(row["p95"])
                slot["duration_max_ms"] = _round(row["longest"])
                slot["peak_rss_mb"] = _round(row["peak_rss_mb"])
                slot["recent_peak_rss_mb"] = _round(row["recent_peak_rss_mb"])
            for row in await conn.fetch(
                "SELECT source, count(*) AS n FROM source_requests"
                " WHERE requested_at >= $1 GROUP BY source",
                since,
            ):
                _slot(out, row)["requests_made"] = int(row["n"])
            for row in await conn.fetch(
                """
                SELECT source, count(*) AS n,
                       count(*) FILTER (WHERE kind = ANY($2::text[])) AS notable
                FROM changes WHERE detected_at >= $1 GROUP BY source
                """,
                since,
                list(NOTABLE_CHANGE_KINDS),
            ):
                _slot(out, row)["changes_detected"] = int(row["n"])
                _slot(out, row)["changes_notable"] = int(row["notable"])
            for row in await conn.fetch(
                "SELECT source, count(*) AS n FROM dead_letter_jobs"
                " WHERE status IN ('open', 'requeued') GROUP BY source"
            ):
                _slot(out, row)["dead_letters_open"] = int(row["n"])
            await self._index_state(conn, out)
        return out

    async def _index_state(self, conn: Connection, out: dict[str, dict[str, Any]]) -> None:
        """Latest index outcome, last success and the canary counts (not windowed)."""
        for row in await conn.fetch(
            """
            SELECT DISTINCT ON (source) source, status, error FROM scrape_jobs
            WHERE kind = 'index' AND status IN ('success', 'failure', 'dead_letter', 'retry')
            ORDER BY source, started_at DESC, id DESC
            """
        ):
            _slot(out, row)["last_index_status"] = row["status"]
            _slot(out, row)["last_index_error"] = row["error"]
        last_success: dict[str, datetime] = {}
        for row in await conn.fetch(
            "SELECT source, max(coalesce(finished_at, started_at)) AS at FROM scrape_jobs"
            " WHERE kind = 'index' AND status = 'success' GROUP BY source"
        ):
            last_success[row["source"]] = row["at"]
            _slot(out, row)["last_success_at"] = _iso(row["at"])
        # Only full (200) index fetches say how many countries the source lists: a
        # 304 re-counts what is stored.
        for row in await conn.fetch(
            """
            SELECT source, items_seen, rn FROM (
                SELECT source, items_seen,
                       row_number() OVER (PARTITION BY source ORDER BY started_at DESC, id DESC)
                           AS rn
                FROM scrape_jobs
                WHERE kind = 'index' AND status = 'success' AND http_status = 200) AS t
            WHERE rn <= 2
            """
        ):
            name = "index_count_latest" if row["rn"] == 1 else "index_count_previous"
            _slot(out, row)[name] = int(row["items_seen"])
        for row in await conn.fetch(
            """
            SELECT DISTINCT ON (source) source, message, last_failure_at FROM dead_letter_jobs
            WHERE country = $1 AND status IN ('open', 'requeued')
              AND failure_kind = ANY($2::text[])
            ORDER BY source, last_failure_at DESC
            """,
            _INDEX_COUNTRY,
            _CONTRACT_KINDS,
        ):
            # A broken index that has since been fetched successfully is history.
            fixed = last_success.get(row["source"])
            if fixed is None or row["last_failure_at"] > fixed:
                _slot(out, row)["index_contract_failure"] = row["message"]

    async def workers(self, *, since: datetime) -> list[asyncpg.Record]:
        """Heartbeats seen since ``since``, with their age by the database clock."""
        return await self._pool.fetch(
            """
            SELECT identity, host, pid, queues, rss_mb, peak_rss_mb, started_at, seen_at,
                   stopped_at, extract(epoch FROM now() - seen_at) AS age_seconds
            FROM worker_heartbeats WHERE seen_at >= $1 ORDER BY identity
            """,
            since,
        )


class HealthCheckStore:
    """Rows of ``health_checks``: one per check per run."""

    async def record(
        self,
        conn: Connection,
        *,
        run_id: str,
        results: Sequence[CheckResult],
        checked_at: datetime,
    ) -> None:
        """Store ``results`` as the run's rows (replacing them if the run is replayed)."""
        await conn.execute("DELETE FROM health_checks WHERE run_id = $1", run_id)
        await conn.executemany(
            """
            INSERT INTO health_checks
                (run_id, name, source, queue, worker, ok, value, threshold, detail, checked_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            [
                (
                    run_id,
                    r.name,
                    r.source,
                    r.queue,
                    r.worker,
                    r.ok,
                    r.value,
                    r.threshold,
                    r.detail,
                    checked_at,
                )
                for r in results
            ],
        )


class AlertStore:
    """Rows of ``alerts``: the deduplicated state of each check and subject."""

    async def lock_and_load(self, conn: Connection) -> dict[str, Alert]:
        """Every stored alert, with the lock that serialises alert decisions held."""
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _ALERT_LOCK)
        rows = await conn.fetch(
            """
            SELECT dedup_key, check_name, state, first_seen_at, last_seen_at, last_sent_at,
                   resolved_at, notifications
            FROM alerts
            """
        )
        return {
            r["dedup_key"]: Alert(
                key=r["dedup_key"],
                check=r["check_name"],
                state=r["state"],
                first_seen_at=r["first_seen_at"],
                last_seen_at=r["last_seen_at"],
                last_sent_at=r["last_sent_at"],
                resolved_at=r["resolved_at"],
                notifications=r["notifications"],
            )
            for r in rows
        }

    async def save(self, conn: Connection, decisions: Sequence[AlertDecision]) -> None:
        """Upsert the new state of every decided alert."""
        await conn.executemany(
            """
            INSERT INTO alerts
                (dedup_key, check_name, state, first_seen_at, last_seen_at, last_sent_at,
                 resolved_at, notifications, payload)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb)
            ON CONFLICT (dedup_key) DO UPDATE SET
                check_name = EXCLUDED.check_name, state = EXCLUDED.state,
                first_seen_at = EXCLUDED.first_seen_at, last_seen_at = EXCLUDED.last_seen_at,
                last_sent_at = EXCLUDED.last_sent_at, resolved_at = EXCLUDED.resolved_at,
                notifications = EXCLUDED.notifications, payload = EXCLUDED.payload
            """,
            [
                (
                    d.alert.key,
                    d.alert.check,
                    d.alert.state,
                    d.alert.first_seen_at,
                    d.alert.last_seen_at,
                    d.alert.last_sent_at,
                    d.alert.resolved_at,
                    d.alert.notifications,
                    json.dumps(asdict(d.result) if d.result else {}),
                )
                for d in decisions
            ],
        )


class WebhookOutbox:
    """Rows of ``webhook_deliveries``: one per notification and target, sent at most once."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def enqueue(
        self, conn: Connection, *, urls: Sequence[str], messages: Sequence[WebhookMessage]
    ) -> list[str]:
        """Queue every message for every target; return the delivery ids newly queued.

        A (target, delivery id) pair is queued once: re-queueing is a no-op.
        """
        if not urls or not messages:
            return []
        rows = await conn.fetch(
            """
            INSERT INTO webhook_deliveries
                (delivery_id, target, target_key, event, dedup_key, payload)
            SELECT d, t, k, e, dk, p::jsonb
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                AS u(d, t, k, e, dk, p)
            ON CONFLICT (target_key, delivery_id) DO NOTHING
            RETURNING delivery_id
            """,
            *_columns(
                [
                    (
                        m.delivery_id,
                        redact_target(url),
                        target_key(url),
                        m.event,
                        m.dedup_key,
                        encode_body(m.body).decode(),
                    )
                    for m in messages
                    for url in urls
                ],
                6,
            ),
        )
        return [r["delivery_id"] for r in rows]

    async def pending(self, *, limit: int) -> list[asyncpg.Record]:
        """Pending deliveries, oldest first (their order is the order sent)."""
        return await self._pool.fetch(
            """
            SELECT id, delivery_id, target, target_key, event, dedup_key, payload::text AS body,
                   attempts
            FROM webhook_deliveries WHERE status = 'pending' ORDER BY id LIMIT $1
            """,
            limit,
        )

    async def attempted(
        self,
        delivery: int,
        *,
        status_code: int | None,
        error: str | None,
        max_attempts: int,
    ) -> None:
        """Record one POST: delivered on 2xx, else pending (or failed after the last attempt)."""
        await self._pool.execute(
            """
            UPDATE webhook_deliveries SET
                attempts = attempts + 1, status_code = $2, error = $3, last_attempt_at = now(),
                sent_at = CASE WHEN $3::text IS NULL THEN now() END,
                status = CASE WHEN $3::text IS NULL THEN 'delivered'
                              WHEN attempts + 1 >= $4 THEN 'failed'
                              ELSE 'pending' END
            WHERE id = $1
            """,
            delivery,
            status_code,
            error,
            max_attempts,
        )

    async def abandon(self, deliveries: Sequence[int]) -> None:
        """Give up deliveries whose target is no longer configured."""
        await self._pool.execute(
            "UPDATE webhook_deliveries SET status = 'abandoned', error = 'target removed'"
            " WHERE id = ANY($1::bigint[])",
            list(deliveries),
        )

    async def claim_changes(
        self, conn: Connection, *, limit: int
    ) -> tuple[list[asyncpg.Record], int]:
        """Notable changes since the cursor (re-scanning an overlap); move the cursor.

        Returns:
            The changes, oldest first, and the cursor's previous position.
        """
        cursor = await conn.fetchrow(
            "SELECT last_id, updated_at FROM notification_cursors WHERE name = 'changes' FOR UPDATE"
        )
        last_id = int(cursor["last_id"]) if cursor else 0
        rescan_from = cursor["updated_at"] - CURSOR_OVERLAP if cursor else None
        rows = await conn.fetch(
            """
            SELECT c.id, c.source, c.country, v.country_name, c.kind, c.level_before,
                   c.level_after, c.regional_before, c.regional_after, c.source_updated_at,
                   c.detected_at, v.title, v.url
            FROM changes c JOIN advisory_versions v ON v.id = c.version_id
            WHERE c.kind = ANY($1::text[])
              AND (c.id > $2 OR ($3::timestamptz IS NOT NULL AND c.detected_at > $3))
            ORDER BY c.id
            LIMIT $4
            """,
            list(NOTABLE_CHANGE_KINDS),
            last_id,
            rescan_from,
            limit,
        )
        newest = max([last_id, *(int(r["id"]) for r in rows)])
        await conn.execute(
            """
            INSERT INTO notification_cursors (name, last_id, updated_at)
            VALUES ('changes', $1, now())
            ON CONFLICT (name) DO UPDATE SET last_id = EXCLUDED.last_id, updated_at = now()
            """,
            newest,
        )
        return rows, last_id


class WorkerHeartbeatStore:
    """Rows of ``worker_heartbeats``: each worker process's RSS and queues."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def beat(
        self,
        *,
        identity: str,
        host: str,
        pid: int,
        queues: Sequence[str],
        rss_mb: float,
        peak_rss_mb: float,
        started_at: datetime,
    ) -> None:
        """Record that the process is alive now, with its memory."""
        await self._pool.execute(
            """
            INSERT INTO worker_heartbeats
                (identity, host, pid, queues, rss_mb, peak_rss_mb, started_at, seen_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, now())
            ON CONFLICT (identity) DO UPDATE SET
                host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
                rss_mb = EXCLUDED.rss_mb, peak_rss_mb = EXCLUDED.peak_rss_mb,
                started_at = EXCLUDED.started_at, seen_at = now(), stopped_at = NULL
            """,
            identity,
            host,
            pid,
            list(queues),
            rss_mb,
            peak_rss_mb,
            started_at,
        )

    async def stopped(self, identity: str) -> None:
        """Record a clean shutdown: its pollers stop counting at once."""
        await self._pool.execute(
            "UPDATE worker_heartbeats SET stopped_at = now() WHERE identity = $1", identity
        )


# --------------------------------------------------------------------------- activities


class HealthActivities:
    """Metrics, health checks and webhooks; constructed once per worker (or by the CLI).

    Args:
        pool: The process's pool (None when the CLI could not create one).
        client: A Temporal client (None when the frontend cannot be reached).
        settings: The project settings (schedule overrides, rate-limit switch, User-Agent).
        health: Thresholds and webhooks (default: read from the environment).
        temporal_error: Why ``client`` is None, for the ``temporal`` check.
    """

    def __init__(
        self,
        *,
        pool: asyncpg.Pool | None,
        client: Client | None,
        settings: Settings,
        health: HealthSettings | None = None,
        temporal_error: str | None = None,
    ) -> None:
        self._pool = pool
        self._client = client
        self._settings = settings
        self._health = health if health is not None else HealthSettings()
        self._temporal_error = temporal_error or "no Temporal client"
        self._checks = HealthCheckStore()
        self._alerts = AlertStore()

    @property
    def health_settings(self) -> HealthSettings:
        """Thresholds and webhooks in force."""
        return self._health

    # ------------------------------------------------------------------ metrics

    @activity.defn
    async def collect_metrics(self, inp: MetricsInput) -> MetricsSnapshot:
        """Per source, queue and worker figures (an unreachable backend is recorded)."""
        return await self.collect(hours=inp.hours, queues=inp.queues)

    async def collect(
        self, *, hours: float | None = None, queues: Sequence[str] | None = None
    ) -> MetricsSnapshot:
        """The snapshot ``collect_metrics`` returns (also used by the CLI directly)."""
        window = hours if hours is not None else self._health.health_window_hours
        now = datetime.now(UTC)
        sources: list[SourceMetrics] = []
        workers: list[WorkerMetrics] = []
        database_error: str | None = None
        try:
            sources, workers = await self._database_metrics(window)
        except DATABASE_ERRORS as exc:
            database_error = _error_line(exc)
        stopped = {w.identity: _parse(w.stopped_at) for w in workers if w.stopped_at}
        temporal_error = await self._temporal_reachable()
        queue_metrics: list[QueueMetrics] = []
        if temporal_error is None:
            names = list(queues) if queues is not None else self._health.health_queues
            queue_metrics = list(
                await asyncio.gather(*(self._queue(name, now, stopped) for name in names))
            )
        return MetricsSnapshot(
            collected_at=now.isoformat(),
            hours=window,
            database_ok=database_error is None,
            database_error=database_error,
            temporal_ok=temporal_error is None,
            temporal_error=temporal_error,
            sources=sources,
            queues=queue_metrics,
            workers=workers,
        )

    async def _database_metrics(
        self, hours: float
    ) -> tuple[list[SourceMetrics], list[WorkerMetrics]]:
        if self._pool is None:
            raise OSError("no database pool")
        store = MetricsStore(self._pool)
        db_now = await store.ping(within_seconds=self._health.health_database_timeout_seconds)
        since = db_now - timedelta(hours=hours)
        intervals = scrape_intervals(self._settings.schedule_overrides)
        raw = await store.sources(
            since=since, recent_since=db_now - timedelta(hours=1), intervals=intervals
        )
        for usage in await RateLimitStore(self._pool).usage():
            if usage.source in raw:
                raw[usage.source]["utilisation_percent"] = usage.utilisation_percent
                raw[usage.source]["requests_allowed"] = round(
                    usage.policy.requests_per_hour * hours
                )
                raw[usage.source]["rate_limit_enforced"] = (
                    usage.policy.enabled and self._settings.rate_limits_enabled
                )
        workers = [
            WorkerMetrics(
                identity=r["identity"],
                host=r["host"],
                pid=r["pid"],
                queues=list(r["queues"]),
                rss_mb=round(float(r["rss_mb"]), 1),
                peak_rss_mb=round(float(r["peak_rss_mb"]), 1),
                started_at=_iso(r["started_at"]),
                seen_at=_iso(r["seen_at"]),
                age_seconds=round(float(r["age_seconds"]), 1),
                stopped_at=_iso(r["stopped_at"]) if r["stopped_at"] else None,
            )
            for r in await store.workers(since=since)
        ]
        return [SourceMetrics(**values) for values in raw.values()], workers

    async def _temporal_reachable(self) -> str | None:
        if self._client is None:
            return self._temporal_error
        try:
            await self._client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=5)
            )
        except (RPCError, RuntimeError) as exc:
            return _error_line(exc)
        return None

    async def _queue(self, name: str, now: datetime, stopped: dict[str, datetime]) -> QueueMetrics:
        assert self._client is not None
        backlog: dict[str, int] = {}
        age = 0.0
        pollers: list[PollerMetrics] = []
        for task_type, enum_value in _TASK_TYPES.items():
            try:
                described = await self._client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self._client.namespace,
                        task_queue=TaskQueue(name=name),
                        task_queue_type=enum_value,
                        report_stats=True,
                        report_pollers=True,
                    ),
                    timeout=timedelta(seconds=10),
                )
            except RPCError as exc:
                return QueueMetrics(queue=name, error=_error_line(exc))
            backlog[task_type] = int(described.stats.approximate_backlog_count)
            age = max(age, described.stats.approximate_backlog_age.ToTimedelta().total_seconds())
            for poller in described.pollers:
                seen = poller.last_access_time.ToDatetime(tzinfo=UTC)
                pollers.append(
                    PollerMetrics(
                        identity=poller.identity,
                        task_type=task_type,
                        last_access_at=seen.isoformat(),
                        age_seconds=round((now - seen).total_seconds(), 1),
                        live=poller_live(
                            seen,
                            now,
                            stale_seconds=self._health.health_poller_stale_seconds,
                            stopped_at=stopped.get(poller.identity),
                        ),
                    )
                )
        return QueueMetrics(
            queue=name,
            workflow_backlog=backlog["workflow"],
            activity_backlog=backlog["activity"],
            backlog_age_seconds=round(age, 1),
            pollers=pollers,
        )

    # ------------------------------------------------------------------ checks and alerts

    @activity.defn
    async def run_health_checks(self, inp: CheckInput) -> HealthReport:
        """Evaluate, store the checks, decide the alerts and queue their notifications."""
        return await self.check(inp)

    async def check(self, inp: CheckInput) -> HealthReport:
        """What ``run_health_checks`` does (also used by the CLI directly)."""
        results = evaluate(inp.snapshot, self._health.thresholds())
        now = _parse(inp.snapshot.collected_at)
        bad = failing(results)
        if inp.snapshot.database_ok and self._pool is not None:
            try:
                decisions, queued = await self._store(inp, results, now)
            except DATABASE_ERRORS as exc:
                # It answered while collecting and not now: it is down after all.
                error = _error_line(exc)
                log.warning("health: cannot store the checks: %s", error)
                down = CheckResult(CheckName.DATABASE, False, detail=f"unreachable: {error}")
                results = [down if r.name == CheckName.DATABASE else r for r in results]
                bad = failing(results)
            else:
                _log_decisions(decisions)
                return HealthReport(
                    run_id=inp.run_id,
                    healthy=not bad,
                    failing=bad,
                    results=results,
                    stored=True,
                    queued=queued,
                )
        return self._offline(inp, results, bad, now)

    async def _store(
        self, inp: CheckInput, results: list[CheckResult], now: datetime
    ) -> tuple[list[AlertDecision], int]:
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            await self._checks.record(conn, run_id=inp.run_id, results=results, checked_at=now)
            if not inp.record_alerts:
                return [], 0
            previous = await self._alerts.lock_and_load(conn)
            for carried in inp.carried:
                stored = previous.get(carried.key)
                if stored is None or not stored.firing:
                    previous[carried.key] = _alert_of(carried)
            decisions = reconcile(previous, results, now=now, cooldown=self._health.alert_cooldown)
            await self._alerts.save(conn, decisions)
            queued = await WebhookOutbox(self._pool).enqueue(
                conn, urls=self._health.webhook_urls, messages=_messages(decisions)
            )
        return decisions, len(queued)

    def _offline(
        self, inp: CheckInput, results: list[CheckResult], bad: list[str], now: datetime
    ) -> HealthReport:
        """The database is down: only its own alert can go out, deduplicated by the workflow."""
        database = [r for r in results if r.name == CheckName.DATABASE]
        previous = {c.key: _alert_of(c) for c in inp.carried}
        decisions = reconcile(previous, database, now=now, cooldown=self._health.alert_cooldown)
        if inp.record_alerts:
            _log_decisions(decisions)
        carried = [_carry(d.alert) for d in decisions if d.alert.firing]
        # An alert still firing and not re-sent this run keeps its state as it was.
        decided = {d.alert.key for d in decisions}
        carried += [c for c in inp.carried if c.key not in decided]
        return HealthReport(
            run_id=inp.run_id,
            healthy=not bad,
            failing=bad,
            results=results,
            stored=False,
            direct=_messages(decisions) if inp.record_alerts else [],
            carried=carried if inp.record_alerts else list(inp.carried),
        )

    # ------------------------------------------------------------------ change notifications

    @activity.defn
    async def queue_change_notifications(
        self, inp: ChangeNotificationInput
    ) -> ChangeNotificationResult:
        """Queue a notification per notable change since the last run (deduplicated by id)."""
        if self._pool is None:
            raise ApplicationError("no database pool", type="DatabaseUnavailable")
        outbox = WebhookOutbox(self._pool)
        async with self._pool.acquire() as conn, conn.transaction():
            rows, last_id = await outbox.claim_changes(conn, limit=inp.limit)
            messages = [_change(dict(r)) for r in rows]
            queued = await outbox.enqueue(conn, urls=self._health.webhook_urls, messages=messages)
        for row in rows:
            if row["id"] > last_id:
                log.info(
                    "advisory change %s: %s %s %s, level %s -> %s, regional %s -> %s",
                    row["id"],
                    row["source"],
                    row["country"],
                    row["kind"],
                    row["level_before"],
                    row["level_after"],
                    row["regional_before"],
                    row["regional_after"],
                )
        return ChangeNotificationResult(changes=len(rows), queued=len(queued))

    # ------------------------------------------------------------------ delivery

    @activity.defn
    async def deliver_webhooks(self, inp: DeliverInput) -> DeliveryReport:
        """POST what is pending to every configured webhook, signed.

        Raises:
            ApplicationError: retryable, when a receiver did not answer 2xx (what
                was delivered stays delivered; the rest is sent again on retry).
        """
        urls = {target_key(url): url for url in self._health.webhook_urls}
        if not urls:
            return DeliveryReport()
        secret = self._health.webhook_secret
        assert secret is not None  # HealthSettings refuses URLs without a secret
        errors: list[str] = []
        delivered = abandoned = 0
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self._health.webhook_timeout_seconds),
            follow_redirects=False,
            headers={"User-Agent": self._settings.http_user_agent},
        ) as http:
            sender = _Sender(http, secret.get_secret_value())
            for message in inp.direct:
                for url in urls.values():
                    _, error = await sender.post(url, message.delivery_id, message.body)
                    if error:
                        log.warning(
                            "webhook %s: %s (%s) not delivered: %s",
                            redact_target(url),
                            message.event,
                            message.dedup_key,
                            error,
                        )
                        errors.append(f"{redact_target(url)}: {error}")
                    else:
                        delivered += 1
            # Without the database (direct messages), the outbox is out of reach too.
            if self._pool is not None and not inp.direct:
                outbox = WebhookOutbox(self._pool)
                rows = await outbox.pending(limit=inp.limit)
                gone = [r["id"] for r in rows if r["target_key"] not in urls]
                if gone:
                    await outbox.abandon(gone)
                    abandoned = len(gone)
                by_target: dict[str, list[asyncpg.Record]] = {}
                for row in rows:
                    if row["target_key"] in urls:
                        by_target.setdefault(row["target_key"], []).append(row)
                outcomes = await asyncio.gather(
                    *(
                        self._deliver_target(sender, outbox, urls[key], target_rows)
                        for key, target_rows in by_target.items()
                    )
                )
                for sent, error in outcomes:
                    delivered += sent
                    if error:
                        errors.append(error)
        if errors:
            raise ApplicationError(
                f"{len(errors)} webhook target(s) failed: {'; '.join(errors)}",
                type="WebhookDeliveryError",
                # Each failure is logged above, once, without a traceback.
                category=ApplicationErrorCategory.BENIGN,
            )
        return DeliveryReport(delivered=delivered, abandoned=abandoned)

    async def _deliver_target(
        self, sender: _Sender, outbox: WebhookOutbox, url: str, rows: list[asyncpg.Record]
    ) -> tuple[int, str | None]:
        """Send one target's deliveries in order; stop at its first failure."""
        sent = 0
        for row in rows:
            status, error = await sender.post(url, row["delivery_id"], json.loads(row["body"]))
            await outbox.attempted(
                row["id"],
                status_code=status,
                error=error,
                max_attempts=self._health.webhook_max_attempts,
            )
            if error:
                log.warning(
                    "webhook %s: %s (%s) not delivered: %s",
                    row["target"],
                    row["event"],
                    row["dedup_key"],
                    error,
                )
                # Keep the target's order (firing before resolved) and spare a
                # receiver that is down: the rest waits for the retry.
                return sent, f"{row['target']}: {error}"
            sent += 1
        return sent, None


class _Sender:
    """Signs and POSTs one JSON body; answers (status, error)."""

    def __init__(self, http: httpx.AsyncClient, secret: str) -> None:
        self._http = http
        self._secret = secret

    async def post(
        self, url: str, delivery_id: str, body: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        raw = encode_body(body)
        headers = signed_headers(
            self._secret, raw, timestamp=int(time.time()), delivery_id=delivery_id
        )
        try:
            response = await self._http.post(url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            # The exception's text may quote the URL (whose path can be a token).
            return None, type(exc).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"


# --------------------------------------------------------------------------- worker heartbeat


class WorkerHeartbeat:
    """Records a worker process's memory and queues every ``interval_seconds``.

    Run it as a background task of the worker process::

        heartbeat = asyncio.create_task(WorkerHeartbeat(pool, queues=queues).run())
        ...
        heartbeat.cancel()  # on shutdown: records the clean stop, then ends

    Its identity is the one Temporal gives the process's pollers by default
    (``pid@host``), so ``worker status`` joins memory to pollers, and a clean
    stop makes those pollers count as gone at once instead of after
    ``HEALTH_POLLER_STALE_SECONDS``.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        queues: Sequence[str],
        interval_seconds: float = 30.0,
        identity: str | None = None,
    ) -> None:
        self._store = WorkerHeartbeatStore(pool)
        self._queues = list(queues)
        self._interval = interval_seconds
        self.identity = identity or default_identity()
        self._started_at = datetime.now(UTC)
        self._peak_mb = 0.0

    async def beat(self) -> None:
        """Record one heartbeat now."""
        rss_mb = psutil.Process().memory_info().rss / (1024 * 1024)
        self._peak_mb = max(self._peak_mb, rss_mb, _max_rss_mb())
        await self._store.beat(
            identity=self.identity,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self._queues,
            rss_mb=rss_mb,
            peak_rss_mb=self._peak_mb,
            started_at=self._started_at,
        )

    async def run(self) -> None:
        """Beat until cancelled; then record the clean stop and re-raise the cancellation."""
        try:
            while True:
                try:
                    await self.beat()
                except DATABASE_ERRORS as exc:
                    # A database hiccup must not take the worker down.
                    log.warning("worker heartbeat not recorded: %s", _error_line(exc))
                await asyncio.sleep(self._interval)
        except asyncio.CancelledError:
            with contextlib.suppress(*DATABASE_ERRORS):
                await asyncio.wait_for(self._store.stopped(self.identity), timeout=5)
            raise


# --------------------------------------------------------------------------- helpers


def _slot(out: dict[str, dict[str, Any]], row: asyncpg.Record) -> dict[str, Any]:
    # Rows of sources no longer registered are ignored.
    return out.get(row["source"], {"jobs_by_status": {}})


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _columns(rows: list[tuple[str, ...]], width: int) -> list[list[str]]:
    return [[row[i] for row in rows] for i in range(width)]


def _messages(decisions: Sequence[AlertDecision]) -> list[WebhookMessage]:
    messages = []
    for decision in decisions:
        if decision.event is None:
            continue
        delivery_id, body = alert_message(decision)
        messages.append(WebhookMessage(delivery_id, decision.event.value, decision.alert.key, body))
    return messages


def _change(row: dict[str, Any]) -> WebhookMessage:
    delivery_id, body = change_message(row)
    return WebhookMessage(delivery_id, "change", delivery_id, body)


def _alert_of(carried: CarriedAlert) -> Alert:
    return Alert(
        key=carried.key,
        check=carried.check,
        state="firing",
        first_seen_at=_parse(carried.first_seen_at),
        last_seen_at=_parse(carried.last_sent_at),
        last_sent_at=_parse(carried.last_sent_at),
        notifications=carried.notifications,
    )


def _carry(alert: Alert) -> CarriedAlert:
    sent = alert.last_sent_at or alert.last_seen_at
    return CarriedAlert(
        key=alert.key,
        check=alert.check,
        first_seen_at=_iso(alert.first_seen_at),
        last_sent_at=_iso(sent),
        notifications=alert.notifications,
    )


def _log_decisions(decisions: Sequence[AlertDecision]) -> None:
    for decision in decisions:
        if decision.event is None:
            continue
        detail = decision.result.detail if decision.result else "no longer reported"
        level = logging.INFO if decision.event.value == "resolved" else logging.WARNING
        log.log(level, "alert %s %s: %s", decision.alert.key, decision.event.value, detail)


def _max_rss_mb() -> float:
    """Peak RSS of the process so far (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def new_run_id(prefix: str) -> str:
    """A run id for checks not run by a workflow (``cli-...``)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"

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

The SQL of these tables lives in ``store.health``, one class per table; the sending of
webhooks in ``activities.webhooks``. The background task a worker process runs to record
its memory and the queues it polls is ``worker.heartbeat.WorkerHeartbeat``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError

from activities.webhooks import WebhookDelivery
from advisories.health import (
    Alert,
    AlertDecision,
    CheckName,
    CheckResult,
    HealthSettings,
    MetricsSnapshot,
    PollerMetrics,
    QueueMetrics,
    SourceMetrics,
    WebhookMessage,
    WorkerMetrics,
    alert_message,
    change_message,
    evaluate,
    failing,
    poller_live,
    reconcile,
)
from advisories.schedule_spec import scrape_intervals
from advisories.settings import Settings
from store.health import AlertStore, HealthCheckStore, MetricsStore, WebhookOutbox
from store.pool import DATABASE_ERRORS
from store.ratelimits import RateLimitStore

__all__ = [
    "CarriedAlert",
    "ChangeNotificationInput",
    "ChangeNotificationResult",
    "CheckInput",
    "DeliverInput",
    "DeliveryReport",
    "HealthActivities",
    "HealthReport",
    "MetricsInput",
    "error_line",
    "new_run_id",
]

log = logging.getLogger(__name__)

_TASK_TYPES: Final = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


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
        self._webhooks = WebhookDelivery(pool=pool, settings=settings, health=self._health)

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
            database_error = error_line(exc)
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
            return error_line(exc)
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
                return QueueMetrics(queue=name, error=error_line(exc))
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
                error = error_line(exc)
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
        outcome = await self._webhooks.deliver(inp.direct, limit=inp.limit)
        if outcome.errors:
            errors = outcome.errors
            raise ApplicationError(
                f"{len(errors)} webhook target(s) failed: {'; '.join(errors)}",
                type="WebhookDeliveryError",
                # Each failure is logged where it happened, once, without a traceback.
                category=ApplicationErrorCategory.BENIGN,
            )
        return DeliveryReport(delivered=outcome.delivered, abandoned=outcome.abandoned)


# --------------------------------------------------------------------------- helpers


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def error_line(exc: BaseException) -> str:
    """``<ExceptionType>: <message on one line>``, at most 300 characters (for logs and checks)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


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

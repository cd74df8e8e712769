"""The ``metrics``, ``health`` and ``worker status`` commands.

They run the health activities' code paths in this process, without a
worker: ``health`` must be able to say that no worker is polling, and that
PostgreSQL or Temporal does not answer. ``health`` stores its checks (run id
``cli-...``) but leaves the alerts to the scheduled ``HealthWorkflow``, so an
on-demand look never swallows the notification the next run would send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from activities.health import CheckInput, HealthActivities, HealthReport, new_run_id
from advisories.health import CHECKS, CheckName, HealthSettings, MetricsSnapshot
from advisories.settings import Settings, get_settings
from starter._output import err, fail, out, print_json, print_table, run
from store.pool import create_pool
from worker.client import connect

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_CONNECT_TIMEOUT_SECONDS = 10.0

_SOURCE_COLUMNS = [
    "source",
    "jobs",
    "success_%",
    "p50_ms",
    "p95_ms",
    "max_ms",
    "requests/allowed",
    "utilisation_%",
    "changes",
    "dead_letters",
    "last_success",
    "peak_rss_mb",
]
_QUEUE_COLUMNS = ["queue", "backlog", "oldest_s", "live_workers", "pollers"]
_WORKER_COLUMNS = [
    "identity",
    "live",
    "queues",
    "last_poll_s_ago",
    "rss_mb",
    "peak_rss_mb",
    "heartbeat_s_ago",
    "stopped_at",
]
_CHECK_COLUMNS = ["check", "subject", "status", "value", "threshold", "detail"]


def register(app: typer.Typer) -> None:
    """Add ``metrics``, ``health`` and the ``worker`` group (``worker status``) to ``app``."""
    app.command("metrics")(metrics)
    app.command("health")(health)
    worker_app = typer.Typer(help="Worker processes polling the task queues.", no_args_is_help=True)
    worker_app.command("status")(worker_status)
    app.add_typer(worker_app, name="worker")


# ----------------------------------------------------------------------------- commands


def metrics(
    hours: Annotated[
        float, typer.Option(min=0.1, max=24 * 90, help="Window of the figures, in hours.")
    ] = 24.0,
    as_json: JsonOption = False,
) -> None:
    """Per source and per queue: jobs, success rate, durations, requests, backlog, workers."""
    settings, health_settings = get_settings(), _health_settings()
    snapshot = run(lambda: _with_activities(settings, health_settings, _collect(hours)))
    if not snapshot.database_ok:
        fail(f"cannot read metrics: PostgreSQL {snapshot.database_error} — is the stack up?")
    if as_json:
        print(json.dumps(_metrics_json(snapshot), indent=2))
    else:
        print_table(
            f"Sources (last {hours:g} h; utilisation: last hour)",
            _SOURCE_COLUMNS,
            [_source_row(s) for s in snapshot.sources],
        )
        if snapshot.temporal_ok:
            print_table("Task queues", _QUEUE_COLUMNS, [_queue_row(q) for q in snapshot.queues])
        stale = health_settings.health_poller_stale_seconds
        print_table(
            "Workers (heartbeats)",
            ["identity", "queues", "rss_mb", "peak_rss_mb", "seen_s_ago", "state"],
            [
                {
                    "identity": w.identity,
                    "queues": ", ".join(w.queues),
                    "rss_mb": w.rss_mb,
                    "peak_rss_mb": w.peak_rss_mb,
                    "seen_s_ago": w.age_seconds,
                    "state": "live" if w.live(stale) else ("stopped" if w.stopped_at else "stale"),
                }
                for w in snapshot.workers
            ],
        )
    if not snapshot.temporal_ok:
        err.print(
            f"warning: no queue figures: Temporal {snapshot.temporal_error}",
            markup=False,
            highlight=False,
        )


def health(as_json: JsonOption = False) -> None:
    """Run every health check now; exit code 1 (and one line on stderr) when unhealthy."""
    settings, health_settings = get_settings(), _health_settings()

    async def check(activities: HealthActivities) -> HealthReport:
        snapshot = await activities.collect()
        return await activities.check(
            CheckInput(snapshot=snapshot, run_id=new_run_id("cli"), record_alerts=False)
        )

    report = run(lambda: _with_activities(settings, health_settings, check))
    if as_json:
        print(json.dumps(_health_json(report), indent=2))
    else:
        print_table(
            f"Health checks ({len(report.results)})",
            _CHECK_COLUMNS,
            [
                {
                    "check": r.name,
                    "subject": r.subject,
                    "status": "ok" if r.ok else "FAIL",
                    "value": _with_unit(r.value, r.name),
                    "threshold": _with_unit(r.threshold, r.name),
                    "detail": r.detail,
                }
                for r in report.results
            ],
        )
        if report.healthy:
            out.print("healthy", markup=False, highlight=False)
    if not report.healthy:
        # One line on stderr and exit code 1 (typer.Exit would be swallowed by main()).
        fail(f"unhealthy: {', '.join(report.failing)}")


def worker_status(as_json: JsonOption = False) -> None:
    """Workers polling each queue: identity, last poll, memory from their heartbeats."""
    settings, health_settings = get_settings(), _health_settings()
    snapshot = run(lambda: _with_activities(settings, health_settings, _collect(1.0)))
    if not snapshot.temporal_ok:
        fail(f"cannot list the pollers: Temporal {snapshot.temporal_error} — is the stack up?")
    rows = _worker_rows(snapshot, health_settings.health_poller_stale_seconds)
    if as_json:
        print_json(rows)
    else:
        print_table(
            f"Workers ({sum(1 for r in rows if r['live'])} live)",
            _WORKER_COLUMNS,
            [
                {**r, "queues": ", ".join(r["queues"]), "live": "yes" if r["live"] else "no"}
                for r in rows
            ],
        )
    if not snapshot.database_ok:
        err.print(
            f"warning: no memory figures: PostgreSQL {snapshot.database_error}",
            markup=False,
            highlight=False,
        )


# ----------------------------------------------------------------------------- plumbing


def _health_settings() -> HealthSettings:
    try:
        return HealthSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        fail(f"invalid health settings: {where}: {first['msg']}", 2)


def _collect(hours: float) -> Callable[[HealthActivities], Awaitable[MetricsSnapshot]]:
    async def go(activities: HealthActivities) -> MetricsSnapshot:
        return await activities.collect(hours=hours)

    return go


async def _with_activities(
    settings: Settings,
    health_settings: HealthSettings,
    func: Callable[[HealthActivities], Awaitable[T]],
) -> T:
    """Run ``func`` with health activities on a lazy pool and a client, if Temporal answers."""
    pool = await create_pool(
        settings.database_url.get_secret_value(),
        min_size=0,
        max_size=2,
        connect_timeout=health_settings.health_database_timeout_seconds,
        seed_sources=False,
    )
    temporal_error: str | None = None
    try:
        client = await asyncio.wait_for(connect(settings), timeout=_CONNECT_TIMEOUT_SECONDS)
    except (RuntimeError, TimeoutError) as exc:
        client, temporal_error = None, str(exc) or "connection timed out"
    try:
        activities = HealthActivities(
            pool=pool,
            client=client,
            settings=settings,
            health=health_settings,
            temporal_error=temporal_error,
        )
        return await func(activities)
    finally:
        await pool.close()


def _with_unit(value: float | None, check: str) -> str | None:
    if value is None:
        return None
    unit = CHECKS[CheckName(check)].unit
    number = f"{value:g}"
    return f"{number} {unit}" if unit and unit != "%" else f"{number}{unit}"


def _jobs(by_status: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in sorted(by_status.items())) or "-"


def _source_row(s: Any) -> dict[str, Any]:
    allowed = "-" if s.requests_allowed is None else s.requests_allowed
    return {
        "source": s.source,
        "jobs": _jobs(s.jobs_by_status),
        "success_%": s.success_rate,
        "p50_ms": s.duration_p50_ms,
        "p95_ms": s.duration_p95_ms,
        "max_ms": s.duration_max_ms,
        "requests/allowed": f"{s.requests_made}/{allowed}",
        "utilisation_%": s.utilisation_percent
        if s.rate_limit_enforced
        else f"{s.utilisation_percent} (off)",
        "changes": f"{s.changes_detected} ({s.changes_notable} notable)",
        "dead_letters": s.dead_letters_open,
        "last_success": s.last_success_at[:16].replace("T", " ") if s.last_success_at else None,
        "peak_rss_mb": s.peak_rss_mb,
    }


def _queue_row(q: Any) -> dict[str, Any]:
    if q.error:
        return {
            "queue": q.queue,
            "backlog": "?",
            "oldest_s": "?",
            "live_workers": "?",
            "pollers": q.error,
        }
    identities: dict[str, bool] = {}
    for poller in q.pollers:
        identities[poller.identity] = identities.get(poller.identity, False) or poller.live
    return {
        "queue": q.queue,
        "backlog": f"{q.workflow_backlog} wf + {q.activity_backlog} act",
        "oldest_s": q.backlog_age_seconds,
        "live_workers": q.live_workers,
        "pollers": ", ".join(
            f"{identity} ({'live' if live else 'gone'})"
            for identity, live in sorted(identities.items())
        )
        or "-",
    }


def _worker_rows(snapshot: MetricsSnapshot, stale_seconds: float) -> list[dict[str, Any]]:
    """One row per worker identity: from its pollers and its heartbeat."""
    rows: dict[str, dict[str, Any]] = {}

    def row(identity: str) -> dict[str, Any]:
        return rows.setdefault(
            identity,
            {
                "identity": identity,
                "live": False,
                "queues": [],
                "last_poll_s_ago": None,
                "rss_mb": None,
                "peak_rss_mb": None,
                "heartbeat_s_ago": None,
                "stopped_at": None,
            },
        )

    for queue in snapshot.queues:
        for poller in queue.pollers:
            r = row(poller.identity)
            if queue.queue not in r["queues"]:
                r["queues"].append(queue.queue)
            r["live"] = r["live"] or poller.live
            ago = r["last_poll_s_ago"]
            r["last_poll_s_ago"] = (
                poller.age_seconds if ago is None else min(ago, poller.age_seconds)
            )
    for worker in snapshot.workers:
        if worker.identity not in rows and not worker.live(stale_seconds):
            continue  # long gone, and Temporal forgot it too
        r = row(worker.identity)
        r.update(
            rss_mb=worker.rss_mb,
            peak_rss_mb=worker.peak_rss_mb,
            heartbeat_s_ago=worker.age_seconds,
            stopped_at=worker.stopped_at,
        )
        if worker.stopped_at is not None:
            r["live"] = False
    for r in rows.values():
        r["queues"] = sorted(r["queues"])
    return sorted(rows.values(), key=lambda r: (not r["live"], r["identity"]))


def _metrics_json(snapshot: MetricsSnapshot) -> dict[str, Any]:
    data = asdict(snapshot)
    for source, values in zip(snapshot.sources, data["sources"], strict=True):
        values["success_rate"] = source.success_rate
    for queue, values in zip(snapshot.queues, data["queues"], strict=True):
        values["backlog"] = queue.backlog
        values["live_workers"] = queue.live_workers
    return data


def _health_json(report: HealthReport) -> dict[str, Any]:
    return {
        "healthy": report.healthy,
        "failing": report.failing,
        "run_id": report.run_id,
        "stored": report.stored,
        "checks": [{"key": r.key, "subject": r.subject, **asdict(r)} for r in report.results],
    }

"""Health and alerts: the SQL of metrics, health checks, alerts, the webhook outbox and
worker heartbeats, one class per table or read-out.

:class:`MetricsStore` reads the figures of ``advisories.health.SourceMetrics`` and the
worker heartbeats; :class:`HealthCheckStore` and :class:`AlertStore` write one run's checks
and the deduplicated alert states (in the caller's transaction); :class:`WebhookOutbox` holds
the notifications until they are delivered and moves the change-notification cursor;
:class:`WorkerHeartbeatStore` records each worker process's memory and queues.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

from advisories.health import (
    FINISHED_STATUSES,
    NOTABLE_CHANGE_KINDS,
    Alert,
    AlertDecision,
    CheckResult,
    WebhookMessage,
    encode_body,
    redact_target,
    target_key,
)
from advisories.sources import SOURCES
from store.pool import Connection

__all__ = [
    "CURSOR_OVERLAP",
    "AlertStore",
    "HealthCheckStore",
    "MetricsStore",
    "WebhookOutbox",
    "WorkerHeartbeatStore",
]

#: Index quarantines of these kinds mean the source broke its contract (empty, unparseable).
_CONTRACT_KINDS: Final = ["parse", "contract"]
#: Country of a failed index in the dead-letter mirror (``workflows.quarantine.INDEX_COUNTRY``).
_INDEX_COUNTRY: Final = "*"
#: Changes are re-scanned this far behind the cursor: a change written by a transaction
#: that started earlier can commit after a later id was seen (duplicates are dropped).
CURSOR_OVERLAP: Final = timedelta(minutes=15)
#: Key of the transaction-level advisory lock that serialises alert decisions.
_ALERT_LOCK: Final = 7_310_452_119


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


# --------------------------------------------------------------------------- helpers


def _slot(out: dict[str, dict[str, Any]], row: asyncpg.Record) -> dict[str, Any]:
    # Rows of sources no longer registered are ignored.
    return out.get(row["source"], {"jobs_by_status": {}})


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _columns(rows: list[tuple[str, ...]], width: int) -> list[list[str]]:
    return [[row[i] for row in rows] for i in range(width)]

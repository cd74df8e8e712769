"""Shared rate-limit state in PostgreSQL: the limits in force and every request granted.

Every worker asks this store before each request to a source (index, document,
retry). A grant is decided in one transaction that locks the source's
``rate_limits`` row, so the grants of all workers for one source are
serialised, and that reads the database's clock, so all workers share one
clock. The arithmetic itself is ``advisories.ratelimit``.

Limits are read on every request, so ``update`` (the ``rate-limits --set``
command) takes effect at once, without restarting a worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from advisories.ratelimit import (
    SETTING_NAMES,
    EffectiveLimits,
    effective_policy,
    lookback,
    next_allowed_at,
    utilisation,
    validate_policy,
)
from advisories.sources import SOURCES, RateLimitPolicy, get_source
from store.pool import Connection, ensure_sources
from worker import telemetry

__all__ = ["REQUEST_KINDS", "Grant", "RateLimitStore", "RequestRecord", "UsageRow"]

#: What a request to a source fetches (``source_requests.kind``).
REQUEST_KINDS = frozenset({"index", "document", "robots"})

_POLICY_COLUMNS = """
    requests_per_hour, burst_limit, burst_window_seconds, min_delay_seconds,
    respectful_start_hour, respectful_end_hour, respectful_factor, timezone, enabled
"""


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to "may I send a request to this source now?".

    Attributes:
        granted: True if the request may go now; it has been recorded.
        wait_seconds: If not granted, how long until it may (0.0 when granted).
        request_id: The ``source_requests`` row of a granted request, for
            ``record_response``; None when not granted.
    """

    granted: bool
    wait_seconds: float
    request_id: int | None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request made without asking for budget (rate limits off), recorded afterwards.

    Attributes:
        source: Source id.
        kind: ``index``, ``document`` or ``robots``.
        url: The URL requested.
        at: ``time.monotonic()`` when it was sent.
        status: HTTP status (None: no response).
        bytes: Body size (None: no body).
        not_modified: A 304 answer.
    """

    source: str
    kind: str
    url: str
    at: float
    status: int | None
    bytes: int | None
    not_modified: bool = False


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One source's limits and how much of them the last hour used.

    Attributes:
        source: Source id.
        policy: The policy in force (as stored).
        limits: The limits in force now (business hours applied).
        requests_last_hour: Requests granted in the last hour.
        requests_in_burst_window: Requests granted in the last burst window.
        seconds_since_last_request: Since the newest request ever granted; None if none.
        utilisation_percent: ``requests_last_hour`` as a percentage of the
            hourly budget in force now.
        updated_at: When the policy was last changed (or seeded).
    """

    source: str
    policy: RateLimitPolicy
    limits: EffectiveLimits
    requests_last_hour: int
    requests_in_burst_window: int
    seconds_since_last_request: float | None
    utilisation_percent: float
    updated_at: datetime

    @property
    def business_hours(self) -> bool:
        """Whether the source's business hours (slower pace) apply now."""
        return self.limits.business_hours


class RateLimitStore:
    """Rows of ``rate_limits`` (the policy of each source) and ``source_requests``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ensure_defaults(self) -> None:
        """Give every registered source a policy row, from ``SourceSpec.rate_limit``.

        Existing rows are left alone, so limits changed at run time survive a
        restart. The ``sources`` rows they reference are upserted first.
        """
        await ensure_sources(self._pool)
        await self._pool.executemany(
            f"""
            INSERT INTO rate_limits (source, {_POLICY_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (source) DO NOTHING
            """,
            [(spec.id, *_policy_values(spec.rate_limit)) for spec in SOURCES.values()],
        )

    async def policy(self, source: str) -> RateLimitPolicy:
        """The policy in force for ``source``.

        Raises:
            UnknownSourceError: if ``source`` is not registered.
            LookupError: if its row is missing (``ensure_defaults`` never ran).
        """
        get_source(source)
        row = await self._pool.fetchrow(
            f"SELECT {_POLICY_COLUMNS} FROM rate_limits WHERE source = $1", source
        )
        return _policy(_require_row(row, source))

    async def update(self, source: str, **changes: object) -> RateLimitPolicy:
        """Change some fields of ``source``'s policy; in force for the next request.

        Args:
            source: Source id.
            **changes: New values by ``RateLimitPolicy`` field name, already typed
                (see ``advisories.ratelimit.parse_setting`` for text).

        Returns:
            The policy now in force.

        Raises:
            UnknownSourceError: if ``source`` is not registered.
            ValueError: for an unknown field or a bad value; nothing is changed.
            LookupError: if its row is missing (``ensure_defaults`` never ran).
        """
        get_source(source)
        unknown = sorted(set(changes) - set(SETTING_NAMES))
        if unknown:
            raise ValueError(
                f"unknown setting {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(SETTING_NAMES)}"
            )
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._locked_policy(conn, source)
            policy = dataclasses.replace(current, **changes)  # type: ignore[arg-type]
            validate_policy(policy)
            row = await conn.fetchrow(
                f"""
                UPDATE rate_limits SET
                    requests_per_hour = $2, burst_limit = $3, burst_window_seconds = $4,
                    min_delay_seconds = $5, respectful_start_hour = $6, respectful_end_hour = $7,
                    respectful_factor = $8, timezone = $9, enabled = $10, updated_at = now()
                WHERE source = $1
                RETURNING {_POLICY_COLUMNS}
                """,
                source,
                *_policy_values(policy),
            )
        return _policy(_require_row(row, source))

    async def try_acquire(
        self, source: str, *, kind: str, url: str, enabled_globally: bool = True
    ) -> Grant:
        """Grant one request to ``source`` now, or say how long to wait. Never sleeps.

        A grant is recorded (as a ``source_requests`` row stamped with the
        database clock) in the same transaction that decided it.

        Args:
            source: Source id.
            kind: ``index``, ``document`` or ``robots``.
            url: The URL about to be requested.
            enabled_globally: False switches rate limiting off for every source
                (requests are still recorded).

        Raises:
            UnknownSourceError: if ``source`` is not registered.
            ValueError: for an unknown ``kind``.
            LookupError: if its row is missing (``ensure_defaults`` never ran).
        """
        get_source(source)
        if kind not in REQUEST_KINDS:
            raise ValueError(
                f"unknown request kind {kind!r}; valid: {', '.join(sorted(REQUEST_KINDS))}"
            )
        async with self._pool.acquire() as conn, conn.transaction():
            if enabled_globally:
                # The row lock serialises the grants of every worker for this
                # source; the clock is read only once the lock is held, so each
                # grant sees every earlier one and a later time.
                policy = await self._locked_policy(conn, source)
                now: datetime = await conn.fetchval("SELECT clock_timestamp()")
                if policy.enabled:
                    times = await conn.fetch(
                        """
                        SELECT requested_at FROM source_requests
                        WHERE source = $1 AND requested_at > $2
                        """,
                        source,
                        now - lookback(policy),
                    )
                    allowed = next_allowed_at(policy, [r["requested_at"] for r in times], now)
                    if allowed > now:
                        return Grant(False, (allowed - now).total_seconds(), None)
            request_id = await conn.fetchval(
                """
                INSERT INTO source_requests (source, requested_at, kind, url)
                VALUES ($1, clock_timestamp(), $2, $3)
                RETURNING id
                """,
                source,
                kind,
                url,
            )
        return Grant(True, 0.0, int(request_id))

    async def acquire(
        self,
        source: str,
        *,
        kind: str,
        url: str,
        max_wait_seconds: float,
        enabled_globally: bool = True,
    ) -> Grant:
        """Wait for a grant, but no longer than ``max_wait_seconds`` in all.

        Short waits are slept here; when the budget is further away than what
        is left of ``max_wait_seconds``, the not-granted ``Grant`` is returned
        at once so that the caller can give its activity slot back and come
        back after ``wait_seconds`` (a durable timer costs no slot and no retry
        attempt).

        Args:
            source: Source id.
            kind: ``index``, ``document`` or ``robots``.
            url: The URL about to be requested.
            max_wait_seconds: Longest total sleep inside this call (0 never sleeps).
            enabled_globally: False switches rate limiting off for every source.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_seconds
        while True:
            grant = await self.try_acquire(
                source, kind=kind, url=url, enabled_globally=enabled_globally
            )
            if not grant.granted:
                telemetry.RATE_LIMIT_WAIT_SECONDS.record(grant.wait_seconds, {"source": source})
            if grant.granted or loop.time() + grant.wait_seconds > deadline:
                return grant
            await asyncio.sleep(grant.wait_seconds)

    async def record_response(
        self,
        request_id: int,
        *,
        status: int | None,
        bytes: int | None,
        not_modified: bool = False,
    ) -> None:
        """Fill in how a granted request ended (HTTP status, body size, 304)."""
        await self._pool.execute(
            "UPDATE source_requests SET status = $2, bytes = $3, not_modified = $4 WHERE id = $1",
            request_id,
            status,
            bytes,
            not_modified,
        )

    async def record_requests(self, requests: Sequence[RequestRecord], *, now: float) -> None:
        """Record requests made while rate limits were off globally, in one statement.

        With limits off nothing has to be decided before a request, so workers keep the
        ``source_requests`` rows of an activity and write them together (the requests-per-day
        and usage figures still count every request). ``now`` is the ``time.monotonic()``
        reading the ``at`` values are relative to: the rows get the database clock minus
        their age, like granted requests.
        """
        if not requests:
            return
        await self._pool.execute(
            """
            INSERT INTO source_requests (source, requested_at, kind, url, status, bytes,
                                         not_modified)
            SELECT s, clock_timestamp() - make_interval(secs => a), k, u, st, b, nm
            FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[], $5::integer[],
                        $6::integer[], $7::boolean[]) AS t(s, a, k, u, st, b, nm)
            """,
            [r.source for r in requests],
            [max(0.0, now - r.at) for r in requests],
            [r.kind for r in requests],
            [r.url for r in requests],
            [r.status for r in requests],
            [r.bytes for r in requests],
            [r.not_modified for r in requests],
        )

    async def usage(self, source: str | None = None) -> list[UsageRow]:
        """Per source (or only ``source``), ordered by id: limits in force and recent use.

        Raises:
            UnknownSourceError: if ``source`` is given and not registered.
        """
        if source is not None:
            get_source(source)
        async with self._pool.acquire() as conn:
            now: datetime = await conn.fetchval("SELECT clock_timestamp()")
            rows = await conn.fetch(
                f"""
                SELECT rl.source, {_POLICY_COLUMNS}, rl.updated_at,
                       (SELECT max(requested_at) FROM source_requests sr
                        WHERE sr.source = rl.source) AS last_request_at,
                       ARRAY(SELECT requested_at FROM source_requests sr
                             WHERE sr.source = rl.source AND sr.requested_at > $2
                               AND sr.requested_at <= $3) AS last_hour
                FROM rate_limits rl
                WHERE $1::text IS NULL OR rl.source = $1
                ORDER BY rl.source
                """,
                source,
                now - timedelta(hours=1),
                now,
            )
        return [_usage_row(row, now) for row in rows]

    async def _locked_policy(self, conn: Connection, source: str) -> RateLimitPolicy:
        row = await conn.fetchrow(
            f"SELECT {_POLICY_COLUMNS} FROM rate_limits WHERE source = $1 FOR UPDATE", source
        )
        return _policy(_require_row(row, source))


def _usage_row(row: asyncpg.Record, now: datetime) -> UsageRow:
    policy = _policy(row)
    limits = effective_policy(policy, now)
    last_hour: Sequence[datetime] = row["last_hour"]
    window = timedelta(seconds=limits.burst_window_seconds)
    last: datetime | None = row["last_request_at"]
    return UsageRow(
        source=row["source"],
        policy=policy,
        limits=limits,
        requests_last_hour=len(last_hour),
        requests_in_burst_window=sum(1 for at in last_hour if now - at < window),
        seconds_since_last_request=None if last is None else (now - last).total_seconds(),
        utilisation_percent=round(100 * utilisation(policy, last_hour, now), 1),
        updated_at=row["updated_at"],
    )


def _require_row(row: asyncpg.Record | None, source: str) -> asyncpg.Record:
    if row is None:
        raise LookupError(
            f"no rate_limits row for {source!r}: run RateLimitStore.ensure_defaults()"
        )
    return row


def _real(value: float) -> float:
    # The ``real`` columns keep ~7 significant digits: 1.2 comes back as
    # 1.2000000476837158. Six digits give back the number that was stored.
    return float(f"{value:.6g}")


def _policy(row: asyncpg.Record) -> RateLimitPolicy:
    return RateLimitPolicy(
        requests_per_hour=row["requests_per_hour"],
        burst_limit=row["burst_limit"],
        burst_window_seconds=_real(row["burst_window_seconds"]),
        min_delay_seconds=_real(row["min_delay_seconds"]),
        respectful_start_hour=row["respectful_start_hour"],
        respectful_end_hour=row["respectful_end_hour"],
        respectful_factor=_real(row["respectful_factor"]),
        timezone=row["timezone"],
        enabled=row["enabled"],
    )


def _policy_values(policy: RateLimitPolicy) -> tuple[object, ...]:
    """Values in the order of ``_POLICY_COLUMNS``."""
    return (
        policy.requests_per_hour,
        policy.burst_limit,
        policy.burst_window_seconds,
        policy.min_delay_seconds,
        policy.respectful_start_hour,
        policy.respectful_end_hour,
        policy.respectful_factor,
        policy.timezone,
        policy.enabled,
    )

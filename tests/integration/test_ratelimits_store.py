"""The shared rate-limit state on a real PostgreSQL, with two pools as two workers."""

from __future__ import annotations

import asyncio
import itertools
import time

import asyncpg
import pytest

from advisories.errors import UnknownSourceError
from advisories.ratelimit import Violations, effective_policy, violations
from advisories.sources import SOURCES
from store.pool import create_pool
from store.ratelimits import Grant, RateLimitStore, RequestRecord

pytestmark = pytest.mark.integration

US = "us_state_dept"
URL = "https://travel.state.gov/x"

#: Small enough to exhaust in a few seconds: 10 an hour, 3 a second, 0.2 s apart.
TIGHT: dict[str, object] = {
    "requests_per_hour": 10,
    "burst_limit": 3,
    "burst_window_seconds": 1.0,
    "min_delay_seconds": 0.2,
    "respectful_factor": 1.0,
    "enabled": True,
}


@pytest.fixture
async def store(pool: asyncpg.Pool) -> RateLimitStore:
    store = RateLimitStore(pool)
    await store.ensure_defaults()
    return store


async def recorded(pool: asyncpg.Pool, source: str = US) -> list[asyncpg.Record]:
    """The ``source_requests`` rows of ``source``, oldest first."""
    return await pool.fetch(
        "SELECT * FROM source_requests WHERE source = $1 ORDER BY requested_at", source
    )


async def test_defaults_are_seeded_per_source_and_survive_a_restart(
    store: RateLimitStore, pool: asyncpg.Pool
) -> None:
    for spec in SOURCES.values():
        assert await store.policy(spec.id) == spec.rate_limit
    await store.update(US, requests_per_hour=80)
    # A restarted worker seeds again: the run-time change stays.
    await RateLimitStore(pool).ensure_defaults()
    assert (await store.policy(US)).requests_per_hour == 80
    assert await pool.fetchval("SELECT count(*) FROM rate_limits") == len(SOURCES)


async def test_update_persists_for_every_worker_and_rejects_bad_values(
    store: RateLimitStore, database_url: str
) -> None:
    before = (await store.usage(US))[0].updated_at
    policy = await store.update(
        US, min_delay_seconds=1.2, respectful_factor=0.7, timezone="Asia/Kolkata"
    )
    # ``real`` columns: the values come back as they were set, not 1.2000000476837158.
    assert (policy.min_delay_seconds, policy.respectful_factor) == (1.2, 0.7)
    assert policy.timezone == "Asia/Kolkata"
    other_worker = await create_pool(database_url)
    try:
        assert await RateLimitStore(other_worker).policy(US) == policy
    finally:
        await other_worker.close()
    assert (await store.usage(US))[0].updated_at > before

    for bad in ({"requests_per_hour": 0}, {"respectful_factor": 1.5}, {"timezone": "Mars/Base"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            await store.update(US, **bad)
    with pytest.raises(ValueError, match="unknown setting 'per_hour'"):
        await store.update(US, per_hour=5)
    with pytest.raises(UnknownSourceError):
        await store.update("atlantis", requests_per_hour=5)
    assert await store.policy(US) == policy


async def test_two_workers_competing_never_break_the_limits(
    store: RateLimitStore, pool: asyncpg.Pool, database_url: str
) -> None:
    policy = await store.update(US, **TIGHT)
    workers = [await create_pool(database_url) for _ in range(2)]
    try:
        started = time.monotonic()
        grants = await asyncio.gather(
            *(
                RateLimitStore(workers[i % 2]).acquire(
                    US, kind="document", url=f"{URL}/{i}", max_wait_seconds=30.0
                )
                for i in range(16)
            )
        )
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            await worker.close()

    granted = [g for g in grants if g.granted]
    refused = [g for g in grants if not g.granted]
    assert len(granted) == 10
    # The other six would have to wait for the hour to roll: they give up at once.
    assert all(g.wait_seconds > 3000 for g in refused)
    rows = await recorded(pool)
    assert {r["id"] for r in rows} == {g.request_id for g in granted}
    times = [r["requested_at"] for r in rows]
    assert violations(policy, times) == Violations()
    # The 11th request is refused with the wait until the first one is an hour old.
    eleventh = await store.try_acquire(US, kind="index", url=URL)
    assert not eleventh.granted and eleventh.wait_seconds > 3000
    usage = (await store.usage(US))[0]
    assert (usage.requests_last_hour, usage.utilisation_percent) == (10, 100.0)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # 10 grants need three full burst windows: 0, .2, .4, 1.0, 1.2, 1.4, 2.0, ... 3.0 s.
    assert min(gaps) >= 0.2 - 0.001
    assert 3.0 - 0.001 <= (times[-1] - times[0]).total_seconds() < 4.0
    assert elapsed < 10.0
    print(
        f"\ngrants={len(granted)} refused={len(refused)} violations={violations(policy, times)}"
        f" span={(times[-1] - times[0]).total_seconds():.3f}s min_gap={min(gaps):.3f}s"
        f" utilisation={usage.utilisation_percent}% elapsed={elapsed:.2f}s"
    )


async def test_acquire_hands_back_a_long_wait_instead_of_sleeping(
    store: RateLimitStore, pool: asyncpg.Pool
) -> None:
    # Factor 1: the waits must not depend on the hour the test runs at.
    await store.update(US, min_delay_seconds=5.0, respectful_factor=1.0)
    assert (await store.acquire(US, kind="index", url=URL, max_wait_seconds=0)).granted
    started = time.monotonic()
    grant = await store.acquire(US, kind="document", url=URL, max_wait_seconds=0.5)
    assert time.monotonic() - started < 0.4
    assert not grant.granted and grant.request_id is None
    assert 4.0 < grant.wait_seconds <= 5.0
    assert len(await recorded(pool)) == 1

    # A short wait is slept inside the call.
    await store.update(US, min_delay_seconds=0.3)
    assert (await store.acquire(US, kind="document", url=URL, max_wait_seconds=1.0)).granted
    started = time.monotonic()
    grant = await store.acquire(US, kind="document", url=URL, max_wait_seconds=1.0)
    assert grant.granted and grant.request_id is not None
    assert 0.25 <= time.monotonic() - started < 1.0
    times = [r["requested_at"] for r in await recorded(pool)]
    assert len(times) == 3 and violations(await store.policy(US), times) == Violations()


async def test_disabled_limits_grant_at_once_and_still_record(
    store: RateLimitStore, pool: asyncpg.Pool
) -> None:
    await store.update(
        US, enabled=False, min_delay_seconds=60.0, burst_limit=1, respectful_factor=1.0
    )
    started = time.monotonic()
    grants = [await store.try_acquire(US, kind="document", url=URL) for _ in range(20)]
    assert all(g.granted and g.wait_seconds == 0.0 for g in grants)
    # Switched off for every source by the worker's setting, whatever the policy says.
    await store.update(US, enabled=True)
    for _ in range(3):
        grant = await store.acquire(
            US, kind="index", url=URL, max_wait_seconds=0, enabled_globally=False
        )
        assert grant == Grant(True, 0.0, grant.request_id)
    assert time.monotonic() - started < 5.0
    assert len(await recorded(pool)) == 23
    refused = await store.try_acquire(US, kind="index", url=URL)
    assert not refused.granted and 59.0 < refused.wait_seconds <= 60.0


async def test_usage_matches_what_was_recorded(store: RateLimitStore, pool: asyncpg.Pool) -> None:
    await pool.executemany(
        """
        INSERT INTO source_requests (source, requested_at, kind, url)
        VALUES ($1, clock_timestamp() - $2::text::interval, 'document', $3)
        """,
        [(US, age, URL) for age in ("2 hours", "30 minutes", "30 seconds", "2 seconds")],
    )
    grant = await store.try_acquire("canada_travel", kind="index", url=URL)
    assert grant.granted and grant.request_id is not None
    await store.record_response(grant.request_id, status=304, bytes=0, not_modified=True)

    usage = {row.source: row for row in await store.usage()}
    assert sorted(usage) == sorted(SOURCES)
    us = usage[US]
    assert us.policy == SOURCES[US].rate_limit
    assert us.business_hours is us.limits.business_hours
    assert us.limits.requests_per_hour == (30 if us.business_hours else 60)
    assert (us.requests_last_hour, us.requests_in_burst_window) == (3, 2)
    assert us.seconds_since_last_request is not None
    assert 2.0 <= us.seconds_since_last_request < 10.0
    assert us.utilisation_percent == round(100 * 3 / us.limits.requests_per_hour, 1)
    canada = usage["canada_travel"]
    assert (canada.requests_last_hour, canada.requests_in_burst_window) == (1, 1)
    assert canada.utilisation_percent == round(100 / canada.limits.requests_per_hour, 1)
    uk = usage["uk_foreign_office"]
    assert (uk.requests_last_hour, uk.seconds_since_last_request, uk.utilisation_percent) == (
        0,
        None,
        0.0,
    )
    assert [row.source for row in await store.usage(US)] == [US]
    rows = await recorded(pool, "canada_travel")
    assert [(r["status"], r["bytes"], r["not_modified"]) for r in rows] == [(304, 0, True)]
    now = await pool.fetchval("SELECT clock_timestamp()")
    assert effective_policy(SOURCES[US].rate_limit, now).business_hours is us.business_hours


async def test_bad_input_is_rejected_before_any_sql(
    store: RateLimitStore, pool: asyncpg.Pool
) -> None:
    with pytest.raises(ValueError, match="unknown request kind 'page'"):
        await store.try_acquire(US, kind="page", url=URL)
    with pytest.raises(UnknownSourceError):
        await store.try_acquire("atlantis", kind="index", url=URL)
    with pytest.raises(UnknownSourceError):
        await store.usage("atlantis")
    await pool.execute("DELETE FROM rate_limits WHERE source = $1", US)
    with pytest.raises(LookupError, match="ensure_defaults"):
        await store.try_acquire(US, kind="index", url=URL)


async def test_requests_recorded_afterwards_keep_their_age_and_count_in_usage(
    store: RateLimitStore, pool: asyncpg.Pool
) -> None:
    now = time.monotonic()
    await store.record_requests(
        [
            RequestRecord(US, "index", URL, now - 90.0, 200, 1234),
            RequestRecord(US, "document", URL + "/a", now - 30.0, 304, 0, not_modified=True),
            RequestRecord(US, "document", URL + "/b", now - 1.0, None, None),
        ],
        now=now,
    )
    await store.record_requests([], now=now)  # nothing to write: no statement, no error
    rows = await recorded(pool)
    assert [(r["kind"], r["status"], r["bytes"], r["not_modified"]) for r in rows] == [
        ("index", 200, 1234, False),
        ("document", 304, 0, True),
        ("document", None, None, False),
    ]
    db_now = await pool.fetchval("SELECT clock_timestamp()")
    ages = [(db_now - r["requested_at"]).total_seconds() for r in rows]
    assert 90.0 <= ages[0] < 95.0 and 30.0 <= ages[1] < 35.0 and 1.0 <= ages[2] < 6.0
    usage = {row.source: row for row in await store.usage(US)}
    assert usage[US].requests_last_hour == 3


async def test_recorded_requests_of_an_unknown_source_are_refused_whole(
    store: RateLimitStore, pool: asyncpg.Pool
) -> None:
    now = time.monotonic()
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await store.record_requests(
            [
                RequestRecord(US, "index", URL, now, 200, 1),
                RequestRecord("nowhere", "index", URL, now, 200, 1),
            ],
            now=now,
        )
    assert await recorded(pool) == []

"""Rate-limit arithmetic on a fake clock: every instant is a datetime built here."""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from advisories.ratelimit import (
    HOUR,
    SETTING_NAMES,
    Violations,
    effective_policy,
    in_business_hours,
    lookback,
    next_allowed_at,
    parse_setting,
    utilisation,
    validate_policy,
    violations,
)
from advisories.sources import SOURCES, RateLimitPolicy

US = SOURCES["us_state_dept"].rate_limit
UK = SOURCES["uk_foreign_office"].rate_limit
CA = SOURCES["canada_travel"].rate_limit

# 2024-01-16 03:00 in New York (EST, UTC-5): outside every source's business hours.
NIGHT = datetime(2024, 1, 16, 8, 0, tzinfo=UTC)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def local(
    zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A wall-clock time in ``zone``."""
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone))


def open_policy(**changes: object) -> RateLimitPolicy:
    """Generous limits except the ones under test; business hours never apply."""
    base = RateLimitPolicy(
        requests_per_hour=10_000,
        burst_limit=10_000,
        min_delay_seconds=0.0,
        timezone="UTC",
        respectful_start_hour=0,
        respectful_end_hour=0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def recent(policy: RateLimitPolicy, grants: list[datetime], now: datetime) -> list[datetime]:
    """The grants (in time order) a store would read at ``now``: those within the look-back."""
    return grants[bisect.bisect_right(grants, now - lookback(policy)) :]


def greedy_schedule(policy: RateLimitPolicy, start: datetime, end: datetime) -> list[datetime]:
    """Grants of a backlog that asks again exactly when told, from ``start`` to ``end``."""
    grants: list[datetime] = []
    at = start
    while True:
        at = next_allowed_at(policy, recent(policy, grants, at), at)
        if at >= end:
            return grants
        grants.append(at)


# -- each rule alone ---------------------------------------------------------------------------


def test_min_delay_waits_for_the_gap_after_the_newest_grant() -> None:
    policy = open_policy(min_delay_seconds=1.5)
    last = NIGHT
    assert next_allowed_at(
        policy, [last - seconds(9), last], last + seconds(0.5)
    ) == last + seconds(1.5)
    assert next_allowed_at(policy, [last], last + seconds(1.5)) == last + seconds(1.5)
    now = last + seconds(2)
    assert next_allowed_at(policy, [last], now) is now


def test_burst_waits_until_the_oldest_grant_of_the_window_leaves_it() -> None:
    policy = open_policy(burst_limit=3, burst_window_seconds=10.0)
    grants = [NIGHT, NIGHT + seconds(1), NIGHT + seconds(2)]
    assert next_allowed_at(policy, grants, NIGHT + seconds(3)) == NIGHT + seconds(10)
    # Once the first grant is 10 s old the window holds two: go now.
    now = NIGHT + seconds(10)
    assert next_allowed_at(policy, grants, now) is now
    assert next_allowed_at(policy, grants[1:], NIGHT + seconds(3)) == NIGHT + seconds(3)


def test_hourly_budget_is_a_rolling_hour() -> None:
    policy = open_policy(requests_per_hour=4)
    grants = [NIGHT + timedelta(minutes=m) for m in (0, 10, 20, 30)]
    assert next_allowed_at(policy, grants, NIGHT + timedelta(minutes=40)) == NIGHT + HOUR
    assert next_allowed_at(policy, grants[1:], NIGHT + timedelta(minutes=40)) == NIGHT + timedelta(
        minutes=40
    )
    # Grants older than an hour are harmless.
    old = [NIGHT - HOUR - seconds(1)] * 50
    now = NIGHT + seconds(5)
    assert next_allowed_at(policy, old, now) is now


def test_the_latest_of_the_three_rules_wins() -> None:
    policy = open_policy(
        requests_per_hour=5, burst_limit=2, burst_window_seconds=60.0, min_delay_seconds=20.0
    )
    now = NIGHT + timedelta(minutes=30)
    # Each rule alone: min delay → now+10 s, burst → now+40 s, hourly → not yet full.
    grants = [NIGHT, now - seconds(50), now - seconds(20), now - seconds(10)]
    assert next_allowed_at(policy, grants, now) == now + seconds(40)
    # A fifth grant in the hour: the hourly rule binds until NIGHT-10min is an hour old.
    grants.insert(0, NIGHT - timedelta(minutes=10))
    assert next_allowed_at(policy, grants, now) == NIGHT + timedelta(minutes=50)
    assert next_allowed_at(
        dataclasses.replace(policy, min_delay_seconds=100.0), grants[-1:], now
    ) == now + seconds(90)


def test_recent_may_come_in_any_order_and_any_time_zone() -> None:
    policy = open_policy(burst_limit=2, burst_window_seconds=60.0)
    grants = [NIGHT + seconds(30), NIGHT.astimezone(ZoneInfo("Asia/Kolkata"))]
    assert next_allowed_at(policy, grants, NIGHT + seconds(31)) == NIGHT + seconds(60)
    assert next_allowed_at(policy, list(reversed(grants)), NIGHT + seconds(31)) == NIGHT + seconds(
        60
    )


def test_disabled_policy_always_allows_now() -> None:
    policy = dataclasses.replace(US, enabled=False)
    grants = [NIGHT + seconds(i / 10) for i in range(500)]
    now = NIGHT + seconds(50)
    assert next_allowed_at(policy, grants, now) is now
    assert violations(policy, grants) == Violations()


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_allowed_at(US, [], datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        next_allowed_at(US, [datetime(2024, 1, 1)], NIGHT)


# -- business hours in each source's own time zone -----------------------------------------------


@pytest.mark.parametrize(
    ("policy", "now", "business"),
    [
        # New York: EST (UTC-5) in winter, EDT (UTC-4) from 2024-03-10.
        (US, local("America/New_York", 2024, 1, 16, 8, 59), False),
        (US, local("America/New_York", 2024, 1, 16, 9, 0), True),
        (US, local("America/New_York", 2024, 1, 16, 16, 59, 59), True),
        (US, local("America/New_York", 2024, 1, 16, 17, 0), False),
        (US, datetime(2024, 1, 16, 14, 30, tzinfo=UTC), True),
        # DST day: 13:30 UTC is 09:30 EDT (it would be 08:30 EST the day before).
        (US, datetime(2024, 3, 9, 13, 30, tzinfo=UTC), False),
        (US, datetime(2024, 3, 10, 13, 30, tzinfo=UTC), True),
        (US, datetime(2024, 11, 3, 13, 30, tzinfo=UTC), False),
        # London: GMT in winter, BST (UTC+1) from 2024-03-31.
        (UK, datetime(2024, 1, 16, 9, 0, tzinfo=UTC), True),
        (UK, datetime(2024, 1, 16, 8, 30, tzinfo=UTC), False),
        (UK, datetime(2024, 3, 31, 8, 30, tzinfo=UTC), True),
        (UK, datetime(2024, 7, 15, 16, 30, tzinfo=UTC), False),
        (UK, datetime(2024, 7, 15, 15, 59, tzinfo=UTC), True),
        # Toronto: same offsets as New York.
        (CA, datetime(2024, 1, 16, 13, 59, tzinfo=UTC), False),
        (CA, datetime(2024, 1, 16, 14, 0, tzinfo=UTC), True),
        (CA, datetime(2024, 3, 10, 13, 0, tzinfo=UTC), True),
        (CA, datetime(2024, 7, 15, 21, 0, tzinfo=UTC), False),
    ],
)
def test_business_hours_follow_the_sources_own_zone(
    policy: RateLimitPolicy, now: datetime, business: bool
) -> None:
    assert in_business_hours(policy, now) is business
    assert effective_policy(policy, now).business_hours is business


def test_business_hours_halve_the_budgets_and_double_the_delay() -> None:
    day = datetime(2024, 7, 15, 15, 0, tzinfo=UTC)  # 11:00 New York and Toronto, 16:00 London
    expected = {US: (30, 5, 3.0), UK: (60, 7, 2.0), CA: (50, 6, 2.4)}
    for policy, (hourly, burst, delay) in expected.items():
        limits = effective_policy(policy, day)
        assert (limits.requests_per_hour, limits.burst_limit) == (hourly, burst)
        assert limits.min_delay_seconds == pytest.approx(delay)
        night = effective_policy(policy, NIGHT)
        assert (night.requests_per_hour, night.burst_limit, night.min_delay_seconds) == (
            policy.requests_per_hour,
            policy.burst_limit,
            policy.min_delay_seconds,
        )


def test_scaled_budgets_round_down_but_never_reach_zero() -> None:
    policy = open_policy(
        requests_per_hour=10, burst_limit=3, respectful_start_hour=0, respectful_end_hour=24
    )
    assert (
        effective_policy(dataclasses.replace(policy, respectful_factor=0.3), NIGHT).burst_limit == 1
    )
    tiny = effective_policy(dataclasses.replace(policy, respectful_factor=0.01), NIGHT)
    assert (tiny.requests_per_hour, tiny.burst_limit) == (1, 1)
    # 10 × 0.3 is 2.9999999999999996 in floating point; it still means 3.
    assert (
        effective_policy(
            dataclasses.replace(policy, respectful_factor=0.3), NIGHT
        ).requests_per_hour
        == 3
    )


def test_overnight_and_empty_business_hours() -> None:
    overnight = open_policy(
        respectful_start_hour=22, respectful_end_hour=6, timezone="Europe/London"
    )
    assert in_business_hours(overnight, datetime(2024, 1, 16, 23, 0, tzinfo=UTC))
    assert in_business_hours(overnight, datetime(2024, 1, 16, 5, 59, tzinfo=UTC))
    assert not in_business_hours(overnight, datetime(2024, 1, 16, 6, 0, tzinfo=UTC))
    never = open_policy(respectful_start_hour=9, respectful_end_hour=9)
    assert not in_business_hours(never, datetime(2024, 1, 16, 9, 30, tzinfo=UTC))


def test_a_wait_that_crosses_into_business_hours_takes_the_slower_pace() -> None:
    # 08:59:59.9 in New York; the next request would fall after 09:00.
    last = local("America/New_York", 2024, 1, 16, 8, 59, 59)
    now = last + seconds(0.9)
    assert next_allowed_at(US, [last], now) == last + seconds(3.0)
    # The other way round: a business-hours wait that ends after 17:00 relaxes.
    last = local("America/New_York", 2024, 1, 16, 16, 59, 59)
    assert next_allowed_at(US, [last], last + seconds(0.1)) == last + seconds(1.5)


def test_the_hourly_budget_shrinks_when_business_hours_begin() -> None:
    nine = datetime(2024, 1, 16, 14, 0, tzinfo=UTC)  # 09:00 New York
    grants = [nine - timedelta(minutes=40) + timedelta(minutes=i) for i in range(40)]
    before = nine - seconds(10)
    assert next_allowed_at(US, grants, before) is before
    # At 09:00 the budget is 30 and 40 grants sit in the last hour: wait until
    # only 29 remain, i.e. the 30th newest is an hour old.
    assert next_allowed_at(US, grants, nine) == grants[-30] + HOUR
    assert utilisation(US, grants, before) == pytest.approx(40 / 60)
    assert utilisation(US, grants, nine) == pytest.approx(40 / 30)


def test_waits_across_a_dst_change_use_real_elapsed_time() -> None:
    # New York falls back at 06:00 UTC on 2024-11-03: 01:59:59 EDT is followed
    # by 01:00:00 EST. Wall-clock arithmetic would add an hour here.
    policy = open_policy(min_delay_seconds=2.0, timezone="America/New_York")
    last = datetime(2024, 11, 3, 5, 59, 59, tzinfo=UTC).astimezone(ZoneInfo("America/New_York"))
    assert next_allowed_at(policy, [last], last) == datetime(2024, 11, 3, 6, 0, 1, tzinfo=UTC)
    one_second_later = datetime(2024, 11, 3, 6, 0, tzinfo=UTC).astimezone(last.tzinfo)
    assert one_second_later.hour == 1  # 01:00 EST, earlier on the wall clock than `last`
    assert violations(policy, [last, one_second_later]).min_delay == 1


# -- violations --------------------------------------------------------------------------------


def test_violations_detects_each_kind() -> None:
    assert violations(US, [NIGHT, NIGHT + seconds(1)]) == Violations(min_delay=1)
    eleven_in_twenty_seconds = [NIGHT + seconds(2 * i) for i in range(11)]
    assert violations(US, eleven_in_twenty_seconds) == Violations(burst=1)
    sixty_one_in_an_hour = [NIGHT + seconds(59 * i) for i in range(61)]
    assert violations(US, sixty_one_in_an_hour) == Violations(hourly=1)
    at_once = [NIGHT] * 12
    assert violations(US, at_once) == Violations(min_delay=11, burst=2)
    assert violations(US, at_once).total == 13


def test_violations_use_the_policy_in_force_at_each_request() -> None:
    nine = datetime(2024, 1, 16, 14, 0, tzinfo=UTC)  # 09:00 New York
    assert violations(US, [nine - seconds(4), nine - seconds(2)]) == Violations()
    assert violations(US, [nine, nine + seconds(2)]) == Violations(min_delay=1)


def test_violations_tolerate_a_millisecond_of_clock_rounding() -> None:
    assert violations(US, [NIGHT, NIGHT + seconds(1.4995)]) == Violations()
    assert violations(US, [NIGHT, NIGHT + seconds(1.498)]) == Violations(min_delay=1)


@pytest.mark.parametrize("policy", [US, UK, CA], ids=["us", "uk", "ca"])
def test_a_schedule_built_from_next_allowed_at_has_no_violations(policy: RateLimitPolicy) -> None:
    # Across a whole New York day: both business-hours boundaries included.
    start = datetime(2024, 3, 10, 0, 0, tzinfo=UTC)
    grants = greedy_schedule(policy, start, start + timedelta(hours=26))
    assert violations(policy, grants) == Violations()
    assert len(grants) > 24 * policy.requests_per_hour * policy.respectful_factor


@pytest.mark.parametrize("policy", [US, UK, CA], ids=["us", "uk", "ca"])
def test_a_backlog_outside_business_hours_uses_the_hourly_budget(policy: RateLimitPolicy) -> None:
    # Three hours from midnight local time (every source's night).
    start = datetime(2024, 1, 16, tzinfo=ZoneInfo(policy.timezone))
    grants = greedy_schedule(policy, start, start + timedelta(hours=3))
    budget = 3 * policy.requests_per_hour
    assert 0.9 * budget <= len(grants) <= budget
    assert utilisation(policy, grants, grants[-1]) == pytest.approx(1.0)


# -- property: random policies, clocks and request patterns ------------------------------------

ZONES = [
    "America/New_York",
    "Europe/London",
    "America/Toronto",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
]
DST_DAYS = [
    datetime(2024, 3, 10, tzinfo=UTC),
    datetime(2024, 3, 31, tzinfo=UTC),
    datetime(2024, 11, 3, tzinfo=UTC),
]


def random_policy(rng: random.Random) -> RateLimitPolicy:
    return RateLimitPolicy(
        requests_per_hour=rng.randint(1, 120),
        burst_limit=rng.randint(1, 20),
        burst_window_seconds=rng.choice([1.0, 10.0, 60.0, rng.uniform(0.5, 300.0)]),
        min_delay_seconds=rng.choice([0.0, 1.0, rng.uniform(0.0, 30.0)]),
        timezone=rng.choice(ZONES),
        respectful_start_hour=rng.randint(0, 23),
        respectful_end_hour=rng.randint(0, 24),
        respectful_factor=rng.choice([1.0, 0.5, 0.3, rng.uniform(0.05, 1.0)]),
    )


def simulate(
    policy: RateLimitPolicy, arrivals: list[datetime], rng: random.Random
) -> list[datetime]:
    """Concurrent requesters: each asks at its arrival, sleeps the wait (with a
    little overshoot) and asks again; the store grants in time order."""
    grants: list[datetime] = []
    pending = [(at, i) for i, at in enumerate(arrivals)]
    heapq.heapify(pending)
    while pending:
        now, i = heapq.heappop(pending)
        allowed = next_allowed_at(policy, recent(policy, grants, now), now)
        if allowed == now:
            grants.append(now)
            continue
        assert allowed > now
        # Nothing earlier was allowed: a request 10 ms before the answer breaks a
        # rule (checked on a sample of the answers, to keep the test fast).
        probe = allowed - timedelta(milliseconds=10)
        if probe >= now and rng.random() < 0.1:
            assert violations(policy, [*recent(policy, grants, probe), probe]).total > 0
        overshoot = timedelta(microseconds=rng.choice([0, 0, rng.randint(1, 50_000)]))
        heapq.heappush(pending, (allowed + overshoot, i))
    return grants


@pytest.mark.parametrize("seed", range(30))
def test_random_request_patterns_never_violate(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(4):
        policy = random_policy(rng)
        day = rng.choice([*DST_DAYS, datetime(2024, 7, 1, tzinfo=UTC)])
        origin = day + timedelta(seconds=rng.uniform(0, 86_400))
        span = rng.choice([0.0, 60.0, 3_600.0, 3 * 3_600.0])
        count = rng.randint(1, 80)
        arrivals = [origin + timedelta(seconds=rng.uniform(0, span)) for _ in range(count)]
        grants = simulate(policy, arrivals, rng)
        assert len(grants) == count
        assert violations(policy, grants) == Violations(), policy


# -- utilisation and settings --------------------------------------------------------------------


def test_utilisation_counts_only_the_last_hour() -> None:
    grants = [
        NIGHT - timedelta(minutes=m) for m in range(0, 90, 3)
    ]  # 30 grants, 20 within the hour
    assert utilisation(US, grants, NIGHT) == pytest.approx(20 / 60)
    assert utilisation(US, [], NIGHT) == 0.0
    assert utilisation(US, [NIGHT + seconds(1)], NIGHT) == 0.0


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("requests_per_hour", "80", 80),
        ("burst_limit", " 12 ", 12),
        ("burst_window_seconds", "30", 30.0),
        ("min_delay_seconds", "0", 0.0),
        ("min_delay_seconds", "2.5", 2.5),
        ("respectful_start_hour", "0", 0),
        ("respectful_end_hour", "24", 24),
        ("respectful_factor", "1", 1.0),
        ("respectful_factor", "0.25", 0.25),
        ("timezone", "Asia/Kolkata", "Asia/Kolkata"),
        ("enabled", "false", False),
        ("enabled", "YES", True),
    ],
)
def test_parse_setting_accepts_valid_values(name: str, text: str, value: object) -> None:
    assert parse_setting(name, text) == (name, value)
    assert type(parse_setting(name, text)[1]) is type(value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("requests_per_hour", "0"),
        ("requests_per_hour", "-5"),
        ("requests_per_hour", "eighty"),
        ("requests_per_hour", "80.5"),
        ("burst_limit", ""),
        ("burst_window_seconds", "0"),
        ("burst_window_seconds", "7200"),
        ("min_delay_seconds", "-1"),
        ("min_delay_seconds", "nan"),
        ("min_delay_seconds", "inf"),
        ("respectful_start_hour", "24"),
        ("respectful_end_hour", "25"),
        ("respectful_end_hour", "-1"),
        ("respectful_factor", "0"),
        ("respectful_factor", "1.5"),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "../etc/passwd"),
        ("enabled", "maybe"),
    ],
)
def test_parse_setting_rejects_bad_values_in_one_line(name: str, text: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        parse_setting(name, text)
    assert "\n" not in str(info.value)


def test_parse_setting_rejects_unknown_names_listing_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown setting 'per_hour'") as info:
        parse_setting("per_hour", "80")
    assert all(name in str(info.value) for name in SETTING_NAMES)
    assert set(SETTING_NAMES) == {f.name for f in dataclasses.fields(RateLimitPolicy)}


def test_validate_policy_accepts_the_defaults_and_rejects_bad_fields() -> None:
    for spec in SOURCES.values():
        validate_policy(spec.rate_limit)
    with pytest.raises(ValueError, match="requests_per_hour"):
        validate_policy(dataclasses.replace(US, requests_per_hour=0))
    with pytest.raises(ValueError, match="enabled"):
        validate_policy(dataclasses.replace(US, enabled=1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="burst_limit"):
        validate_policy(dataclasses.replace(US, burst_limit=True))
    with pytest.raises(ValueError, match="timezone"):
        validate_policy(dataclasses.replace(US, timezone="Nowhere"))


def test_lookback_covers_an_hour_and_a_slow_business_hours_delay() -> None:
    assert lookback(US) == HOUR
    slow = dataclasses.replace(US, min_delay_seconds=3000.0, respectful_factor=0.5)
    assert lookback(slow) == timedelta(seconds=6000)

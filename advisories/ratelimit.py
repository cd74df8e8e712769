"""Rate-limit arithmetic: pure functions of a policy, request times and a clock.

Nothing here reads a clock or touches a database: the caller passes ``now`` and
the times of earlier grants, so every rule is tested on a fake clock, and every
worker runs the same arithmetic on the database's one clock
(``store.ratelimits``).

The rules, for one source and every worker together (``RateLimitPolicy``):

* at most ``requests_per_hour`` requests in any rolling hour;
* at most ``burst_limit`` requests in any rolling ``burst_window_seconds``;
* at least ``min_delay_seconds`` between two consecutive requests;
* during the source's business hours (``[respectful_start_hour,
  respectful_end_hour)`` local time in ``timezone``) both budgets are multiplied
  by ``respectful_factor`` (rounded down, at least 1) and the minimum delay is
  divided by it.

A request at instant ``t`` is judged by the limits in force at ``t``, against
every earlier request. Two requests at ``r`` and ``t`` share a window of length
``w`` when ``t - r < w``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from advisories.sources import RateLimitPolicy

__all__ = [
    "CLOCK_TOLERANCE",
    "HOUR",
    "SETTING_NAMES",
    "EffectiveLimits",
    "Violations",
    "effective_policy",
    "in_business_hours",
    "lookback",
    "next_allowed_at",
    "parse_setting",
    "utilisation",
    "validate_policy",
    "violations",
]

#: The rolling window of the hourly budget.
HOUR = timedelta(hours=1)

#: Slack allowed by ``violations``: timestamps pass through microsecond rounding
#: (Python, PostgreSQL), so a gap short by less than this is not a violation.
CLOCK_TOLERANCE = timedelta(milliseconds=1)

#: Names accepted by ``parse_setting``: the fields of ``RateLimitPolicy``.
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RateLimitPolicy))

# Upper bound of the burst window and of the minimum delay: longer ones would be
# hourly limits in disguise, and the bound keeps the look-back of a grant short.
_MAX_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """The limits in force at one instant (business hours applied).

    Attributes:
        requests_per_hour: Budget of any rolling hour.
        burst_limit: Budget of any rolling burst window.
        burst_window_seconds: Length of the burst window.
        min_delay_seconds: Least gap between two consecutive requests.
        business_hours: Whether the source's business hours apply (slower pace).
        enabled: False when the policy is switched off (no limit at all).
    """

    requests_per_hour: int
    burst_limit: int
    burst_window_seconds: float
    min_delay_seconds: float
    business_hours: bool
    enabled: bool


@dataclass(frozen=True, slots=True)
class Violations:
    """How many requests of a sequence broke each rule.

    Attributes:
        min_delay: Requests sooner than the minimum delay after the previous one.
        burst: Requests beyond the burst budget of their window.
        hourly: Requests beyond the hourly budget of their rolling hour.
    """

    min_delay: int = 0
    burst: int = 0
    hourly: int = 0

    @property
    def total(self) -> int:
        """All violations together."""
        return self.min_delay + self.burst + self.hourly


def in_business_hours(policy: RateLimitPolicy, now: datetime) -> bool:
    """Whether ``now`` falls in the source's business hours, in its own time zone.

    ``start < end`` is a day range, ``start > end`` an overnight one (22 to 6)
    and ``start == end`` means no business hours at all.

    Raises:
        ValueError: if ``now`` is naive.
    """
    local_hour = _utc(now).astimezone(ZoneInfo(policy.timezone)).hour
    start, end = policy.respectful_start_hour, policy.respectful_end_hour
    if start <= end:
        return start <= local_hour < end
    return local_hour >= start or local_hour < end


def effective_policy(policy: RateLimitPolicy, now: datetime) -> EffectiveLimits:
    """The limits in force at ``now``.

    Raises:
        ValueError: if ``now`` is naive.
    """
    business = in_business_hours(policy, now)
    factor = policy.respectful_factor if business else 1.0
    return EffectiveLimits(
        requests_per_hour=_scaled_budget(policy.requests_per_hour, factor),
        burst_limit=_scaled_budget(policy.burst_limit, factor),
        burst_window_seconds=policy.burst_window_seconds,
        min_delay_seconds=policy.min_delay_seconds / factor,
        business_hours=business,
        enabled=policy.enabled,
    )


def lookback(policy: RateLimitPolicy) -> timedelta:
    """How far back the grant times given to ``next_allowed_at`` must reach.

    An hour, or longer when the business-hours minimum delay is longer.
    """
    slowest_delay = policy.min_delay_seconds / policy.respectful_factor
    return max(HOUR, _duration(max(policy.burst_window_seconds, slowest_delay)))


def next_allowed_at(policy: RateLimitPolicy, recent: Sequence[datetime], now: datetime) -> datetime:
    """The earliest instant, not before ``now``, at which one more request is allowed.

    Args:
        policy: The policy in force.
        recent: Times of the grants already made, in any order: at least those
            within ``lookback(policy)`` of ``now`` (the last hour, for every
            policy whose business-hours minimum delay is under an hour). Older
            ones are harmless.
        now: The current instant.

    Returns:
        ``now`` itself when a request may go now (always, for a disabled
        policy); else the earliest later instant, in UTC, at which the
        minimum-delay, burst and hourly rules of the limits in force at that
        instant all hold.

    Raises:
        ValueError: if a datetime is naive.
    """
    start = _utc(now)
    if not policy.enabled:
        return now
    newest_first = sorted(_utcs(recent), reverse=True)
    # The limits change only at business-hours boundaries, and within a stretch
    # of constant limits the allowed instants form a half-line: walk the
    # stretches from ``now`` until one contains its earliest allowed instant.
    while True:
        candidate = _earliest(effective_policy(policy, start), newest_first, start)
        boundary = _next_boundary(policy, start)
        if boundary is None or candidate < boundary:
            return now if candidate == now else candidate
        start = boundary


def violations(policy: RateLimitPolicy, times: Iterable[datetime]) -> Violations:
    """Count the requests of ``times`` that break a rule of ``policy``.

    Each request is judged by the limits in force at its own instant, against
    every earlier request of the sequence; a gap short by less than
    ``CLOCK_TOLERANCE`` is not counted. A disabled policy is never violated.

    Args:
        policy: The policy to check against.
        times: Request times, in any order.

    Raises:
        ValueError: if a datetime is naive.
    """
    ordered = sorted(_utcs(times))
    if not policy.enabled:
        return Violations()
    min_delay = burst = hourly = 0
    for i, at in enumerate(ordered):
        limits = effective_policy(policy, at)
        if i and at - ordered[i - 1] < _duration(limits.min_delay_seconds) - CLOCK_TOLERANCE:
            min_delay += 1
        if _count_within(ordered, i, _duration(limits.burst_window_seconds)) >= limits.burst_limit:
            burst += 1
        if _count_within(ordered, i, HOUR) >= limits.requests_per_hour:
            hourly += 1
    return Violations(min_delay=min_delay, burst=burst, hourly=hourly)


def utilisation(policy: RateLimitPolicy, recent: Iterable[datetime], now: datetime) -> float:
    """Requests in the hour up to ``now`` divided by the hourly budget in force at ``now``.

    1.0 is a fully used budget. It can exceed 1.0 just after business hours
    begin (the budget shrinks, the past hour does not), and when the policy is
    disabled (the budget is then reported, not enforced).

    Raises:
        ValueError: if a datetime is naive.
    """
    end = _utc(now)
    used = sum(1 for at in _utcs(recent) if end - HOUR < at <= end)
    return used / effective_policy(policy, end).requests_per_hour


def parse_setting(name: str, value: str) -> tuple[str, object]:
    """Validate one ``NAME=VALUE`` assignment of a policy field.

    Args:
        name: A field of ``RateLimitPolicy`` (one of ``SETTING_NAMES``).
        value: Its new value as typed on the command line.

    Returns:
        ``(name, typed value)``, ready for ``dataclasses.replace``.

    Raises:
        ValueError: with a one-line message, for an unknown name or a bad value.
    """
    rule = _RULES.get(name)
    if rule is None:
        raise ValueError(f"unknown setting {name!r}; allowed: {', '.join(SETTING_NAMES)}")
    try:
        typed = rule.parse(value.strip())
    except ValueError:
        typed = None
    if typed is None or not rule.check(typed):
        raise ValueError(f"{name} must be {rule.expected}, got {value!r}")
    return name, typed


def validate_policy(policy: RateLimitPolicy) -> None:
    """Check every field of ``policy`` by the rules of ``parse_setting``.

    Raises:
        ValueError: naming the first bad field.
    """
    for name in SETTING_NAMES:
        value = getattr(policy, name)
        rule = _RULES[name]
        if not rule.accepts(value) or not rule.check(value):
            raise ValueError(f"{name} must be {rule.expected}, got {value!r}")


# -- internals ---------------------------------------------------------------------------------


def _utc(at: datetime) -> datetime:
    # Arithmetic on aware datetimes sharing a ZoneInfo is wall-clock arithmetic
    # (wrong across DST changes): every computation here happens in UTC.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: rate limits need timezone-aware times")
    return at.astimezone(UTC)


def _utcs(times: Iterable[datetime]) -> list[datetime]:
    return [_utc(at) for at in times]


def _scaled_budget(budget: int, factor: float) -> int:
    # The epsilon keeps e.g. 10 × 0.3 = 2.9999999999999996 from rounding down to 2.
    return max(1, math.floor(budget * factor + 1e-9))


def _duration(seconds: float) -> timedelta:
    # Rounded up to the microsecond, so that a computed instant is never early.
    return timedelta(microseconds=math.ceil(seconds * 1_000_000))


def _earliest(
    limits: EffectiveLimits, newest_first: Sequence[datetime], start: datetime
) -> datetime:
    """Earliest instant from ``start`` on that ``limits`` alone allow."""
    earliest = start
    if newest_first:
        earliest = max(earliest, newest_first[0] + _duration(limits.min_delay_seconds))
    # With a full budget in the window, the next request may go once the oldest
    # of the newest ``budget`` grants has left the window.
    if len(newest_first) >= limits.burst_limit:
        window = _duration(limits.burst_window_seconds)
        earliest = max(earliest, newest_first[limits.burst_limit - 1] + window)
    if len(newest_first) >= limits.requests_per_hour:
        earliest = max(earliest, newest_first[limits.requests_per_hour - 1] + HOUR)
    return earliest


def _next_boundary(policy: RateLimitPolicy, after: datetime) -> datetime | None:
    """First instant after ``after`` (UTC) at which business hours may begin or end."""
    start, end = policy.respectful_start_hour, policy.respectful_end_hour
    if start % 24 == end % 24:
        # Never or always business hours: the limits never change.
        return None
    zone = ZoneInfo(policy.timezone)
    today = after.astimezone(zone).date()
    boundaries = []
    for days in range(3):
        midnight = datetime.combine(today + timedelta(days=days), datetime.min.time(), zone)
        for hour in (start, end):
            # Wall-clock addition on purpose: "hour o'clock" local time. An hour
            # skipped by a DST jump resolves to the instant the clock jumps to,
            # which is when the local hour changes anyway.
            at = (midnight + timedelta(hours=hour)).astimezone(UTC)
            if at > after:
                boundaries.append(at)
    return min(boundaries)


def _count_within(ordered: Sequence[datetime], index: int, window: timedelta) -> int:
    """How many requests before ``ordered[index]`` lie less than ``window`` before it."""
    first = bisect.bisect_right(ordered, ordered[index] - window + CLOCK_TOLERANCE, 0, index)
    return index - first


@dataclass(frozen=True, slots=True)
class _Rule:
    """How one policy field is parsed from text and checked."""

    kind: type
    expected: str
    check: Callable[[Any], bool]

    def parse(self, text: str) -> object:
        if self.kind is bool:
            return _BOOLEANS.get(text.lower())
        if self.kind is float:
            return float(text)
        return self.kind(text)

    def accepts(self, value: object) -> bool:
        # bool is an int subclass; a float field also takes an int.
        if isinstance(value, bool):
            return self.kind is bool
        if self.kind is float:
            return isinstance(value, int | float)
        return isinstance(value, self.kind)


def _zone_exists(name: str) -> bool:
    return name in zoneinfo.available_timezones()


_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLEANS |= {"false": False, "no": False, "off": False, "0": False}

_RULES: dict[str, _Rule] = {
    "requests_per_hour": _Rule(int, "an integer > 0", lambda v: v > 0),
    "burst_limit": _Rule(int, "an integer > 0", lambda v: v > 0),
    "min_delay_seconds": _Rule(
        float, f"a number of seconds from 0 to {_MAX_SECONDS:g}", lambda v: 0 <= v <= _MAX_SECONDS
    ),
    "timezone": _Rule(str, "an IANA time zone such as Europe/London", _zone_exists),
    "burst_window_seconds": _Rule(
        float, f"a number of seconds > 0 and <= {_MAX_SECONDS:g}", lambda v: 0 < v <= _MAX_SECONDS
    ),
    "respectful_start_hour": _Rule(int, "an hour from 0 to 23", lambda v: 0 <= v <= 23),
    "respectful_end_hour": _Rule(int, "an hour from 0 to 24", lambda v: 0 <= v <= 24),
    "respectful_factor": _Rule(float, "a number > 0 and <= 1", lambda v: 0 < v <= 1),
    "enabled": _Rule(bool, "true or false", lambda _: True),
}
assert set(_RULES) == set(SETTING_NAMES), "every policy field needs a rule"

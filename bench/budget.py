"""Rate-limit budgets and request counts: pure arithmetic over ``advisories.ratelimit``.

* :func:`allowed_requests` — how many requests a policy allows in a window when a client sends
  each as early as the policy allows (greedy, from an empty history at the window's start): the
  denominator of "share of the allowed budget used".
* :func:`daily_budget` — requests a policy allows in a day (business hours applied hour by hour).
* :func:`canada_change_rate` — how often a country's entry changes, from the real Canada index
  captures (the one source with several captures of its whole index).
* :func:`requests_per_day` — requests per day per source, change-driven (this design) against
  fetching every country every cycle (the older design).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from advisories.parsers import parser_for
from advisories.ratelimit import effective_policy, next_allowed_at
from advisories.sources import CANADA_TRAVEL, SOURCES, RateLimitPolicy

#: Bound on a simulated schedule (no window a bench uses comes near it).
_MAX_SIMULATED = 100_000


def greedy_times(policy: RateLimitPolicy, start: datetime, end: datetime) -> list[datetime]:
    """Instants of the requests a greedy client sends in ``[start, end]`` under ``policy``.

    Each request goes at ``next_allowed_at`` of the ones before it, the first at ``start``.
    """
    times: list[datetime] = []
    at = start
    while len(times) < _MAX_SIMULATED:
        at = next_allowed_at(policy, times, at)
        if at > end:
            break
        times.append(at)
    return times


def allowed_requests(policy: RateLimitPolicy, start: datetime, end: datetime) -> int:
    """How many requests ``policy`` allows in ``[start, end]`` (see :func:`greedy_times`)."""
    return len(greedy_times(policy, start, end))


def ideal_seconds(policy: RateLimitPolicy, count: int, start: datetime) -> float:
    """Seconds from the first to the ``count``-th request of a greedy client."""
    times: list[datetime] = []
    at = start
    for _ in range(min(count, _MAX_SIMULATED)):
        at = next_allowed_at(policy, times, at)
        times.append(at)
    return (times[-1] - start).total_seconds() if times else 0.0


def utilisation_of(policy: RateLimitPolicy, times: Sequence[datetime]) -> dict[str, Any]:
    """How much of the allowed budget a sequence of requests used, two ways.

    ``used_percent``: requests made / requests a greedy client would have been allowed in the
    same window (first to last request). ``pace_percent``: the time a greedy client needs for
    the same number of requests / the time they took.
    """
    if len(times) < 2:
        return {"requests": len(times), "allowed": None, "used_percent": None}
    ordered = sorted(times)
    start, end = ordered[0], ordered[-1]
    allowed = allowed_requests(policy, start, end)
    ideal = ideal_seconds(policy, len(ordered), start)
    actual = (end - start).total_seconds()
    return {
        "requests": len(ordered),
        "window_seconds": round(actual, 2),
        "allowed": allowed,
        "used_percent": round(100 * len(ordered) / allowed, 1),
        "ideal_seconds": round(ideal, 2),
        "pace_percent": round(100 * ideal / actual, 1) if actual > 0 else None,
    }


def daily_budget(policy: RateLimitPolicy, day: datetime) -> int:
    """Requests ``policy`` allows in the 24 hours from ``day`` (hourly budget, hour by hour)."""
    return sum(
        effective_policy(policy, day + timedelta(hours=h, minutes=30)).requests_per_hour
        for h in range(24)
    )


@dataclass(frozen=True, slots=True)
class ChangeRate:
    """How often a country's index entry changes, measured over real captures."""

    changed: int
    countries: int
    days: float
    intervals: list[dict[str, Any]]

    @property
    def per_country_per_day(self) -> float:
        return self.changed / (self.countries * self.days) if self.countries and self.days else 0.0


def canada_change_rate(files: Sequence[Path]) -> ChangeRate:
    """Entries whose hash changed between consecutive captures of the Canada index.

    The captures' own ``metadata.generated`` times give the days between them.
    """
    parser = parser_for(CANADA_TRAVEL.id)
    captures = []
    for file in sorted(files):
        body = file.read_bytes()
        generated = json.loads(body)["metadata"]["generated"]["timestamp"]
        entries = parser.parse_index(body, url=str(file), fetched_at=datetime.now(UTC))
        captures.append(
            (
                datetime.fromtimestamp(int(generated), UTC),
                {e.country: e.entry_hash for e in entries},
                file.name,
            )
        )
    changed = 0
    days = 0.0
    intervals = []
    for (t0, before, name0), (t1, after, name1) in itertools.pairwise(captures):
        n = sum(1 for c in after if before.get(c) != after[c])
        span = (t1 - t0).total_seconds() / 86400
        intervals.append({"from": name0, "to": name1, "changed": n, "days": round(span, 2)})
        changed += n
        days += span
    countries = len(captures[-1][1]) if captures else 0
    return ChangeRate(changed=changed, countries=countries, days=days, intervals=intervals)


def requests_per_day(
    *,
    intervals: Mapping[str, timedelta],
    countries: Mapping[str, int],
    policies: Mapping[str, RateLimitPolicy],
    change_rate: float,
    unchanged_cycle_requests: Mapping[str, int],
    day: datetime,
) -> dict[str, Any]:
    """Requests per day per source, change-driven against every country every cycle.

    Change-driven: per cycle the requests of an unchanged cycle (measured: one conditional
    index request), robots.txt once a day, and one document per changed country (a source whose
    index carries the advisories, the US or Australia, fetches no documents: its changed index
    costs the same single request). Every cycle, the older design: one document per country
    per cycle, capped at what the rate limit allows in a day.
    """
    out: dict[str, Any] = {}
    for source, spec in SOURCES.items():
        interval = intervals[source]
        cycles = timedelta(days=1) / interval
        n = countries[source]
        has_documents = spec.document_path is not None
        changed_documents = n * change_rate if has_documents else 0.0
        per_cycle = unchanged_cycle_requests.get(source, 1)
        new = cycles * per_cycle + 1 + changed_documents
        old_demand = cycles * n
        budget = daily_budget(policies[source], day)
        old = min(old_demand, budget)
        out[source] = {
            "interval_seconds": interval.total_seconds(),
            "cycles_per_day": round(cycles, 2),
            "countries": n,
            "unchanged_cycle_requests": per_cycle,
            "changed_documents_per_day": round(changed_documents, 2),
            "change_driven_per_day": round(new, 1),
            "every_country_per_day": round(old_demand, 1),
            "every_country_per_day_within_limit": round(old, 1),
            "daily_budget": budget,
            "fewer_times": round(old_demand / new, 1),
            "fewer_times_within_limit": round(old / new, 1),
        }
    return out

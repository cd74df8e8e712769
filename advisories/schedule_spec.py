"""Schedule timing from configuration, the one place it is decided (pure).

A timing is an interval ("15m", "2h") or a cron string; ``schedule_timing`` applies the
``schedule_overrides`` setting to a schedule's default, ``scrape_intervals`` gives the expected
gap between scrapes that freshness checks use. ``starter.schedules`` turns a timing into a
Temporal schedule spec.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from advisories.sources import SourceSpec

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Timing:
    """Exactly one of ``every`` and ``cron`` is set."""

    every: timedelta | None = None
    cron: str | None = None

    def describe(self) -> str:
        """Human form: ``every 2:00:00`` or ``cron 0 * * * *``."""
        return f"every {self.every}" if self.every is not None else f"cron {self.cron}"


def parse_timing(text: str) -> Timing:
    """Parse ``"30m"``-style durations or 5-field cron strings.

    Raises:
        ValueError: with a one-line reason.
    """
    match = _DURATION.match(text)
    if match:
        seconds = float(match[1]) * _UNITS[match[2]]
        if seconds < 60:
            raise ValueError(f"schedule interval {text!r} is shorter than one minute")
        return Timing(every=timedelta(seconds=seconds))
    fields = text.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[\d*/,\-A-Za-z]+", f) for f in fields):
        raise ValueError(
            f"schedule timing {text!r} is neither a duration like '30m'/'2h' nor a 5-field cron"
        )
    return Timing(cron=" ".join(fields))


# ------------------------------------------------------------------------ the project's schedules

#: Schedule ids of the periodic (non-scrape) workflows.
HEALTH_SCHEDULE = "health"
PROCESS_DLQ_SCHEDULE = "process-dlq"
REPORT_SCHEDULE = "report"
CLEANUP_SCHEDULE = "cleanup"

#: Default interval of each periodic schedule (``schedule_overrides`` replaces it).
PERIODIC_INTERVALS: dict[str, timedelta] = {
    HEALTH_SCHEDULE: timedelta(minutes=30),
    PROCESS_DLQ_SCHEDULE: timedelta(hours=1),
    REPORT_SCHEDULE: timedelta(hours=6),
    CLEANUP_SCHEDULE: timedelta(days=1),
}


def schedule_timing(
    schedule_id: str, default: timedelta, overrides: Mapping[str, str] | None = None
) -> Timing:
    """When schedule ``schedule_id`` fires: its override (interval or cron), else ``default``."""
    override = (overrides or {}).get(schedule_id)
    return parse_timing(override) if override else Timing(every=default)


def source_timing(spec: SourceSpec, overrides: Mapping[str, str] | None = None) -> Timing:
    """When the scrape of ``spec`` fires: its override, else its priority's interval."""
    return schedule_timing(spec.schedule_id, spec.priority.interval, overrides)


def scrape_intervals(overrides: Mapping[str, str] | None = None) -> dict[str, float]:
    """Each registered source's expected seconds between scrapes (freshness checks).

    A cron override has no single interval; the priority's is used for it.
    """
    from advisories.sources import SOURCES  # the registry imports settings, which import us

    out: dict[str, float] = {}
    for spec in SOURCES.values():
        timing = source_timing(spec, overrides)
        every = timing.every if timing.every is not None else spec.priority.interval
        out[spec.id] = every.total_seconds()
    return out

"""The registry of advisory sources: one entry per source, one name everywhere.

A source id (``us_state_dept``, ``uk_foreign_office``, ``canada_travel``) is the
same string in configuration, database rows, task queues, CLI flags, metric
labels and span attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final

from advisories.errors import UnknownSourceError
from advisories.queues import SCRAPING, SCRAPING_HIGH_PRIORITY


class Priority(StrEnum):
    """Scheduling priority of a source."""

    HIGH = "high"
    REGULAR = "regular"

    @property
    def interval(self) -> timedelta:
        """Default scrape interval for this priority."""
        return timedelta(hours=2) if self is Priority.HIGH else timedelta(hours=12)

    @property
    def task_queue(self) -> str:
        """Task queue that runs this priority's scrape activities."""
        return SCRAPING_HIGH_PRIORITY if self is Priority.HIGH else SCRAPING

    @property
    def priority_key(self) -> int:
        """Temporal task priority key (1 is the most urgent, 5 the least)."""
        return 1 if self is Priority.HIGH else 3


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """How fast one source may be asked for documents, by every worker together.

    Attributes:
        requests_per_hour: At most this many requests in any rolling hour.
        burst_limit: At most this many requests in any rolling ``burst_window_seconds``.
        burst_window_seconds: The burst window.
        min_delay_seconds: At least this long between two consecutive requests.
        respectful_start_hour: Start (inclusive) of the source's business hours, local time.
        respectful_end_hour: End (exclusive) of the business hours, local time.
        respectful_factor: During business hours the hourly and burst budgets are
            multiplied by this and the minimum delay divided by it (slower pace).
        timezone: The source's own IANA time zone.
        enabled: False switches the limit off (benchmarks, offline demo).
    """

    requests_per_hour: int
    burst_limit: int
    min_delay_seconds: float
    timezone: str
    burst_window_seconds: float = 60.0
    respectful_start_hour: int = 9
    respectful_end_hour: int = 17
    respectful_factor: float = 0.5
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Static facts about one source.

    Attributes:
        id: The source id used everywhere.
        name: Human name of the publisher.
        priority: Scheduling priority (decides interval and task queue).
        default_base_url: Origin of the real site; overridable per source in settings.
        index_path: Path of the cheap index document under the base URL.
        allowed_hosts: Hosts a redirect may lead to.
        rate_limit: Default rate limits (the database holds the ones in force).
    """

    id: str
    name: str
    priority: Priority
    default_base_url: str
    index_path: str
    allowed_hosts: tuple[str, ...]
    rate_limit: RateLimitPolicy

    @property
    def schedule_id(self) -> str:
        """Id of the Temporal schedule that scrapes this source."""
        return f"scrape-{self.id}"


US_STATE_DEPT: Final = SourceSpec(
    id="us_state_dept",
    name="US Department of State",
    priority=Priority.HIGH,
    default_base_url="https://travel.state.gov",
    index_path="/_res/rss/TAsTWs.xml",
    allowed_hosts=("travel.state.gov",),
    rate_limit=RateLimitPolicy(60, 10, 1.5, "America/New_York"),
)

UK_FOREIGN_OFFICE: Final = SourceSpec(
    id="uk_foreign_office",
    name="UK Foreign, Commonwealth & Development Office",
    priority=Priority.HIGH,
    default_base_url="https://www.gov.uk",
    index_path="/api/content/foreign-travel-advice",
    allowed_hosts=("www.gov.uk",),
    rate_limit=RateLimitPolicy(120, 15, 1.0, "Europe/London"),
)

CANADA_TRAVEL: Final = SourceSpec(
    id="canada_travel",
    name="Global Affairs Canada",
    priority=Priority.REGULAR,
    default_base_url="https://data.international.gc.ca",
    index_path="/travel-voyage/index-updated.json",
    allowed_hosts=("data.international.gc.ca", "travel.gc.ca"),
    rate_limit=RateLimitPolicy(100, 12, 1.2, "America/Toronto"),
)

SOURCES: Final[dict[str, SourceSpec]] = {
    s.id: s for s in (US_STATE_DEPT, UK_FOREIGN_OFFICE, CANADA_TRAVEL)
}


def source_ids() -> list[str]:
    """All registered source ids, sorted."""
    return sorted(SOURCES)


def get_source(source: str) -> SourceSpec:
    """Look a source up by id.

    Raises:
        UnknownSourceError: if ``source`` is not registered.
    """
    try:
        return SOURCES[source]
    except KeyError:
        raise UnknownSourceError(source, source_ids()) from None

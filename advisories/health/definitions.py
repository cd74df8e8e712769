"""What each health check means, where it turns bad, and what the figures count (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from advisories.changes import ChangeKind

__all__ = [
    "CHECKS",
    "FAILED_STATUSES",
    "FINISHED_STATUSES",
    "NOTABLE_CHANGE_KINDS",
    "CheckDefinition",
    "CheckName",
    "Thresholds",
]

#: Change kinds people are notified of (``ChangeKind.notable``).
NOTABLE_CHANGE_KINDS: Final[tuple[str, ...]] = tuple(k.value for k in ChangeKind if k.notable)

#: Job statuses of a fetch that ended (the denominator of the success rate).
FINISHED_STATUSES: Final = frozenset({"success", "failure", "dead_letter"})
#: Statuses of an index fetch that did not get a usable index.
FAILED_STATUSES: Final = frozenset({"failure", "dead_letter", "retry"})


class CheckName(StrEnum):
    """Every check, one name everywhere (rows, alerts, payloads, CLI)."""

    DATABASE = "database"
    TEMPORAL = "temporal"
    SUCCESS_RATE = "success_rate"
    INDEX_FETCH = "index_fetch"
    FRESHNESS = "freshness"
    INDEX_CANARY = "index_canary"
    RATE_LIMIT = "rate_limit_utilisation"
    QUEUE_BACKLOG = "queue_backlog"
    QUEUE_WORKERS = "queue_workers"
    WORKER_MEMORY = "worker_memory"


@dataclass(frozen=True, slots=True)
class CheckDefinition:
    """What one check means.

    Attributes:
        name: The check.
        subject: What it is evaluated per: ``system``, ``source``, ``queue`` or ``worker``.
        description: One line for people (also in alert payloads).
        unit: Unit of ``value`` and ``threshold``.
        bad_when: ``below`` or ``above`` the threshold (``None``: pass/fail only).
        threshold_field: The :class:`Thresholds` field holding the threshold, if any.
    """

    name: CheckName
    subject: str
    description: str
    unit: str = ""
    bad_when: str | None = None
    threshold_field: str | None = None


CHECKS: Final[dict[CheckName, CheckDefinition]] = {
    d.name: d
    for d in (
        CheckDefinition(CheckName.DATABASE, "system", "PostgreSQL answers"),
        CheckDefinition(CheckName.TEMPORAL, "system", "the Temporal frontend answers"),
        CheckDefinition(
            CheckName.SUCCESS_RATE,
            "source",
            "share of finished fetches (index and country jobs) that succeeded",
            "%",
            "below",
            "success_rate_min",
        ),
        CheckDefinition(
            CheckName.INDEX_FETCH, "source", "the latest index fetch of the source succeeded"
        ),
        CheckDefinition(
            CheckName.FRESHNESS,
            "source",
            "hours since the last successful index fetch, against the freshness"
            " factor times the scrape interval",
            "h",
            "above",
        ),
        CheckDefinition(
            CheckName.INDEX_CANARY,
            "source",
            "countries in the latest full index, against a share of the previous one"
            " (an empty or unparseable index fails too)",
            "countries",
            "below",
        ),
        CheckDefinition(
            CheckName.RATE_LIMIT,
            "source",
            "requests in the last hour as a share of the hourly budget in force",
            "%",
            "above",
            "rate_limit_utilisation_max",
        ),
        CheckDefinition(
            CheckName.QUEUE_BACKLOG,
            "queue",
            "tasks waiting on the task queue (workflow + activity)",
            "tasks",
            "above",
            "backlog_max",
        ),
        CheckDefinition(
            CheckName.QUEUE_WORKERS,
            "queue",
            "workers polling the task queue for both workflow and activity tasks",
            "workers",
            "below",
        ),
        CheckDefinition(
            CheckName.WORKER_MEMORY,
            "worker",
            "resident memory of a worker process",
            "MB",
            "above",
            "worker_memory_max_mb",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where each check turns bad (see :data:`CHECKS`).

    Attributes:
        success_rate_min: Fetch success rate (percent) below which a source fails.
        success_min_jobs: Finished fetches needed before the rate is judged.
        backlog_max: Tasks waiting on one queue (workflow + activity) above which it fails.
        worker_memory_max_mb: RSS above which a worker fails.
        rate_limit_utilisation_max: Percent of the hourly budget above which a source fails.
        poller_stale_seconds: A poller not seen for longer is not a live worker.
        freshness_factor: A source fails when its last successful index fetch is
            older than this many scrape intervals.
        canary_min_ratio: An index listing fewer than this share of the countries
            of the previous full index is an incident.
    """

    success_rate_min: float = 80.0
    success_min_jobs: int = 10
    backlog_max: int = 100
    worker_memory_max_mb: float = 500.0
    rate_limit_utilisation_max: float = 90.0
    poller_stale_seconds: float = 90.0
    freshness_factor: float = 2.0
    canary_min_ratio: float = 0.8

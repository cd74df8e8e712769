"""Inputs and results of workflows and activities: one object each, small.

Kept free of I/O imports so workflow code can import them through the sandbox.
Raw documents never travel through workflow history; only ids and counts do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from advisories.models import RetryConfig

__all__ = [
    "RetryConfig",
    "ScrapeIndexInput",
    "ScrapeIndexResult",
    "ScrapeSourceInput",
    "ScrapeSourceResult",
]


@dataclass(frozen=True)
class ScrapeSourceInput:
    """Input of ``ScrapeSourceWorkflow``."""

    source: str
    retry: RetryConfig = field(default_factory=RetryConfig)


@dataclass(frozen=True)
class ScrapeSourceResult:
    """Result of one source cycle."""

    source: str
    not_modified: bool
    items_seen: int
    versions_created: int
    requests_made: int


@dataclass(frozen=True)
class ScrapeIndexInput:
    """Input of the index activity.

    Attributes:
        source: Source id.
        job_key: Idempotency key of the job row this activity reports to.
        is_last_attempt_at: Attempt number after which no retry follows.
    """

    source: str
    job_key: str
    is_last_attempt_at: int = 4


@dataclass(frozen=True)
class ScrapeIndexResult:
    """What the index activity did."""

    source: str
    http_status: int
    not_modified: bool
    items_seen: int
    versions_created: int
    requests_made: int

"""Temporal task-queue names: the one place they are spelled."""

from __future__ import annotations

from typing import Final

SCRAPING_HIGH_PRIORITY: Final = "scraping_high_priority"
SCRAPING: Final = "scraping"
MONITORING: Final = "monitoring"
MAINTENANCE: Final = "maintenance"
REPORTING: Final = "reporting"

ALL_QUEUES: Final[tuple[str, ...]] = (
    SCRAPING_HIGH_PRIORITY,
    SCRAPING,
    MONITORING,
    MAINTENANCE,
    REPORTING,
)

"""Temporal workflow definitions (deterministic; no I/O)."""

from workflows.cleanup import CleanupWorkflow
from workflows.maintenance import DeadLetterProcessingWorkflow
from workflows.monitoring import HealthWorkflow
from workflows.quarantine import QuarantineWorkflow
from workflows.reporting import ReportWorkflow
from workflows.scrape import ScrapeSourceWorkflow

#: Every workflow a worker registers.
ALL_WORKFLOWS = [
    ScrapeSourceWorkflow,
    QuarantineWorkflow,
    DeadLetterProcessingWorkflow,
    HealthWorkflow,
    ReportWorkflow,
    CleanupWorkflow,
]

__all__ = [
    "ALL_WORKFLOWS",
    "CleanupWorkflow",
    "DeadLetterProcessingWorkflow",
    "HealthWorkflow",
    "QuarantineWorkflow",
    "ReportWorkflow",
    "ScrapeSourceWorkflow",
]

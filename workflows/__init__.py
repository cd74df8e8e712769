"""Temporal workflow definitions (deterministic; no I/O)."""

from workflows.maintenance import DeadLetterProcessingWorkflow
from workflows.quarantine import QuarantineWorkflow
from workflows.scrape import ScrapeSourceWorkflow

#: Every workflow a worker registers.
ALL_WORKFLOWS = [ScrapeSourceWorkflow, QuarantineWorkflow, DeadLetterProcessingWorkflow]

__all__ = [
    "ALL_WORKFLOWS",
    "DeadLetterProcessingWorkflow",
    "QuarantineWorkflow",
    "ScrapeSourceWorkflow",
]

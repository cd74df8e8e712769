"""Temporal workflow definitions (deterministic; no I/O)."""

from workflows.scrape import ScrapeSourceWorkflow

#: Every workflow a worker registers.
ALL_WORKFLOWS = [ScrapeSourceWorkflow]

__all__ = ["ALL_WORKFLOWS", "ScrapeSourceWorkflow"]

"""Temporal workflow definitions (deterministic; no I/O).

The names below are loaded on first use (PEP 562), not when the package is imported: the
workflow sandbox imports a workflow's module afresh for every workflow run, package first,
and an eager ``__init__`` would re-run all six workflow modules each time instead of one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.cleanup import CleanupWorkflow
    from workflows.maintenance import DeadLetterProcessingWorkflow
    from workflows.monitoring import HealthWorkflow
    from workflows.quarantine import QuarantineWorkflow
    from workflows.reporting import ReportWorkflow
    from workflows.scrape import ScrapeSourceWorkflow

#: Where each workflow class is defined.
_MODULES = {
    "CleanupWorkflow": "workflows.cleanup",
    "DeadLetterProcessingWorkflow": "workflows.maintenance",
    "HealthWorkflow": "workflows.monitoring",
    "QuarantineWorkflow": "workflows.quarantine",
    "ReportWorkflow": "workflows.reporting",
    "ScrapeSourceWorkflow": "workflows.scrape",
}

__all__ = [
    "ALL_WORKFLOWS",
    "CleanupWorkflow",
    "DeadLetterProcessingWorkflow",
    "HealthWorkflow",
    "QuarantineWorkflow",
    "ReportWorkflow",
    "ScrapeSourceWorkflow",
]


def __getattr__(name: str) -> Any:
    if name == "ALL_WORKFLOWS":
        #: Every workflow a worker registers.
        return [getattr(importlib.import_module(module), cls) for cls, module in _MODULES.items()]
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""ScrapeSourceWorkflow: one cycle of one source (orchestration only, no I/O)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.scrape import ScrapeActivities
    from activities.types import (
        ScrapeIndexInput,
        ScrapeSourceInput,
        ScrapeSourceResult,
    )
    from advisories.sources import get_source

#: Error types that no retry can fix: the document itself is wrong.
NON_RETRYABLE_ERRORS = ["ParseError", "ContractError"]


@workflow.defn
class ScrapeSourceWorkflow:
    """Fetch a source's index and store what changed."""

    @workflow.run
    async def run(self, inp: ScrapeSourceInput) -> ScrapeSourceResult:
        """Run one cycle of ``inp.source``."""
        spec = get_source(inp.source)
        info = workflow.info()
        retry = inp.retry
        index = await workflow.execute_activity_method(
            ScrapeActivities.scrape_index,
            ScrapeIndexInput(
                source=spec.id,
                job_key=f"{info.workflow_id}/{info.run_id}/index",
                is_last_attempt_at=retry.maximum_attempts,
            ),
            task_queue=spec.priority.task_queue,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=retry.initial_seconds),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=retry.maximum_seconds),
                maximum_attempts=retry.maximum_attempts,
                non_retryable_error_types=NON_RETRYABLE_ERRORS,
            ),
            priority=Priority(priority_key=spec.priority.priority_key),
        )
        return ScrapeSourceResult(
            source=spec.id,
            not_modified=index.not_modified,
            items_seen=index.items_seen,
            versions_created=index.versions_created,
            requests_made=index.requests_made,
        )

"""CleanupWorkflow: daily removal of old operational data (orchestration only, no I/O)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.retry_policies import MAINTENANCE_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.cleanup import CleanupActivities, CleanupInput, CleanupResult


@workflow.defn
class CleanupWorkflow:
    """Delete old operational rows and raw documents past retention.

    Jobs, requests, health checks, reports, finished webhook deliveries,
    resolved alerts and closed dead letters (see ``activities.cleanup``).

    Task queue ``maintenance``. The activity deletes in small batches and
    heartbeats after each; a retry after a lost worker simply goes on, since
    deleting what is already gone deletes nothing.
    """

    @workflow.run
    async def run(self, inp: CleanupInput) -> CleanupResult:
        """Run the ``cleanup`` activity."""
        return await workflow.execute_activity_method(
            CleanupActivities.cleanup,
            inp,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=MAINTENANCE_RETRY,
        )

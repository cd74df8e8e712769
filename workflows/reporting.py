"""ReportWorkflow: the operations report every 6 h (orchestration only, no I/O)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.retry_policies import REPORT_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.reports import ReportActivities, ReportInput, ReportResult


@workflow.defn
class ReportWorkflow:
    """Generate and store a report of the last ``hours`` (task queue ``reporting``)."""

    @workflow.run
    async def run(self, inp: ReportInput) -> ReportResult:
        """Run the ``generate_report`` activity; its result is the report's id and counts."""
        return await workflow.execute_activity_method(
            ReportActivities.generate_report,
            inp,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=REPORT_RETRY,
        )

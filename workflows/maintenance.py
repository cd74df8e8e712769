"""Maintenance workflows: automatic reprocessing of the dead-letter queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.retry_policies import UNTIL_DONE_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.quarantine import QuarantineActivities
    from activities.types import DeadLetterQuery
    from advisories.retry import RECOVERABLE


@dataclass(frozen=True)
class ProcessDeadLettersInput:
    """Input of ``DeadLetterProcessingWorkflow``.

    Attributes:
        batch_size: Quarantines requeued together.
        stagger_seconds: Pause between two batches, so a recovering source is not
            hit by every requeue at once.
        limit: At most this many requeues per run.
    """

    batch_size: int = 10
    stagger_seconds: float = 30.0
    limit: int = 500


@dataclass(frozen=True)
class ProcessDeadLettersResult:
    """What a run requeued."""

    requeued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@workflow.defn
class DeadLetterProcessingWorkflow:
    """Requeue recoverable quarantines (network, 5xx, rate limited) of healthy sources.

    Parse and contract failures wait for a person (``requeue``/``resolve``).
    """

    @workflow.run
    async def run(self, inp: ProcessDeadLettersInput) -> ProcessDeadLettersResult:
        """Signal ``requeue`` to each candidate, in staggered batches."""
        rows = await workflow.execute_activity_method(
            QuarantineActivities.recoverable_dead_letters,
            DeadLetterQuery(kinds=sorted(k.value for k in RECOVERABLE), limit=inp.limit),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=UNTIL_DONE_RETRY,
        )
        requeued: list[str] = []
        skipped: list[str] = []
        for start in range(0, len(rows), inp.batch_size):
            if start:
                await workflow.sleep(timedelta(seconds=inp.stagger_seconds))
            for row in rows[start : start + inp.batch_size]:
                handle = workflow.get_external_workflow_handle(row.workflow_id)
                try:
                    await handle.signal("requeue", "process-dlq")
                except ApplicationError:
                    skipped.append(row.workflow_id)  # closed meanwhile
                    continue
                requeued.append(row.workflow_id)
        return ProcessDeadLettersResult(requeued=requeued, skipped=skipped)

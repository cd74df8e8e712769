"""ScrapeSourceWorkflow: one cycle of one source (orchestration only, no I/O).

index → plan changed countries → batches on the source's priority task queue →
single-country retries of the retryable failures (jittered backoff, computed by
the activity) → a QuarantineWorkflow child for every country that finally failed.

When the cycle stored a raise to the follow-up level (``advisories.followup``), it starts
a follow-up run of every other source listing the country: a child ScrapeSourceWorkflow
(``parent_close_policy=ABANDON``) restricted to those countries and forced, which itself
never starts follow-ups.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

from workflows.retry_policies import INFRA_RETRY, UNTIL_DONE_RETRY, scrape_retry

with workflow.unsafe.imports_passed_through():
    from activities.scrape import BATCH_HEARTBEAT_TIMEOUT_SECONDS, ScrapeActivities
    from activities.types import (
        BatchInput,
        BatchResult,
        CountryOutcome,
        CountryResult,
        CountryTask,
        CycleSummary,
        FailureInfo,
        FollowUpTargetsInput,
        IndexInput,
        IndexResult,
        JobStatusInput,
        QuarantineInput,
        RaisedCountry,
        ScrapeSourceInput,
        ScrapeSourceResult,
    )
    from advisories.followup import plan_followups
    from advisories.queues import MAINTENANCE
    from advisories.retry import FailureKind
    from advisories.sources import SOURCES, SourceSpec, get_source
    from workflows.common import (
        even_batches,
        failure_from_error,
        scrape_one_country,
    )
    from workflows.quarantine import (
        INDEX_COUNTRY,
        SOURCE_KEY,
        QuarantineWorkflow,
        quarantine_search_attributes,
    )


#: ``workflow.patched`` id: index quarantines are named by the whole run id, not its prefix.
WHOLE_RUN_ID_PATCH = "quarantine-id-whole-run-id"
#: ``workflow.patched`` id: a cycle's plan is cut into even batches (``even_batches``).
EVEN_BATCHES_PATCH = "even-batches"
#: ``workflow.patched`` id: raises to the follow-up level start follow-ups of other sources.
FOLLOWUP_PATCH = "cross-source-followup"
#: ``workflow.patched`` id: the index activity heartbeats, so a killed worker's index is retried
#: after the heartbeat timeout instead of the 5 min start-to-close timeout.
INDEX_HEARTBEAT_PATCH = "index-heartbeat"


@workflow.defn
class ScrapeSourceWorkflow:
    """Fetch a source's index, then every country whose document changed."""

    def __init__(self) -> None:
        self._progress: dict[str, int] = {"planned": 0, "stored": 0, "failed": 0, "quarantined": 0}

    @workflow.query
    def progress(self) -> dict[str, int]:
        """Countries planned, stored, failed and quarantined so far."""
        return dict(self._progress)

    @workflow.run
    async def run(self, inp: ScrapeSourceInput) -> ScrapeSourceResult:
        """Run one cycle of ``inp.source``."""
        spec = get_source(inp.source)
        info = workflow.info()
        prefix = f"{info.workflow_id}/{info.run_id}"
        index = await self._index(spec, inp, prefix)
        stored_versions = index.versions_created
        requests = index.requests_made
        self._progress["planned"] = len(index.tasks)
        raised = list(index.raised)

        outcomes = await self._fetch_batches(spec, inp, index.tasks)
        by_country = {t.country: t for t in index.tasks}
        quarantined: list[str] = []
        retry_jobs = []
        for outcome in outcomes:
            requests += outcome.requests_made
            if outcome.status == "ok":
                stored_versions += outcome.versions_created
                raised.extend(outcome.raised)
                self._progress["stored"] += 1
            elif outcome.retryable:
                retry_jobs.append(
                    self._retry_country(spec, inp, by_country[outcome.country], outcome)
                )
            else:
                self._progress["failed"] += 1
                await self._quarantine(spec, inp, by_country[outcome.country], _failure(outcome))
                quarantined.append(outcome.country)
        # Before the retries, which wait minutes: the other sources hear of it now.
        followups = await self._follow_up(spec, inp, raised)
        raised = []
        for result in await asyncio.gather(*retry_jobs):
            if isinstance(result, CountryResult):
                stored_versions += result.versions_created
                requests += result.requests_made
                raised.extend(result.raised)
                self._progress["stored"] += 1
            else:
                quarantined.append(result)
        followups += await self._follow_up(spec, inp, raised)

        await workflow.execute_activity_method(
            ScrapeActivities.finish_cycle,
            CycleSummary(
                source=spec.id,
                job_key=f"{prefix}/cycle",
                status="success" if not quarantined else "failure",
                items_seen=index.items_seen,
                versions_created=stored_versions,
                requests_made=requests,
                error=f"quarantined: {', '.join(sorted(quarantined))}" if quarantined else None,
                started_at=info.start_time.isoformat(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=UNTIL_DONE_RETRY,
        )
        return ScrapeSourceResult(
            source=spec.id,
            not_modified=index.not_modified,
            items_seen=index.items_seen,
            versions_created=stored_versions,
            requests_made=requests,
            countries_planned=len(index.tasks),
            countries_stored=self._progress["stored"],
            countries_quarantined=sorted(quarantined),
            followups=followups,
        )

    async def _index(self, spec: SourceSpec, inp: ScrapeSourceInput, prefix: str) -> IndexResult:
        """The index activity, waiting on a durable timer while the rate limit says so."""
        job_key = f"{prefix}/index"
        while True:
            try:
                index = await workflow.execute_activity_method(
                    ScrapeActivities.fetch_index,
                    IndexInput(
                        source=spec.id,
                        job_key=job_key,
                        job_prefix=prefix,
                        retry=inp.retry,
                        countries=inp.countries,
                        followup=inp.followup_of is not None,
                    ),
                    task_queue=spec.priority.task_queue,
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=(
                        timedelta(seconds=BATCH_HEARTBEAT_TIMEOUT_SECONDS)
                        if workflow.patched(INDEX_HEARTBEAT_PATCH)
                        else None
                    ),
                    retry_policy=scrape_retry(inp.retry),
                    priority=Priority(priority_key=spec.priority.priority_key),
                )
            except ActivityError as err:
                now = workflow.now().isoformat()
                failure = failure_from_error(err, attempts=inp.retry.maximum_attempts, now=now)
                task = CountryTask(country=INDEX_COUNTRY, document_path=None, job_key=job_key)
                await self._quarantine(spec, inp, task, failure)
                raise ApplicationError(
                    f"{spec.id}: index failed ({failure.kind}): {failure.message}",
                    type=failure.kind,
                    non_retryable=True,
                ) from err
            if index.deferred_seconds <= 0:
                return index
            await workflow.sleep(timedelta(seconds=index.deferred_seconds))

    async def _fetch_batches(
        self, spec: SourceSpec, inp: ScrapeSourceInput, tasks: list[CountryTask]
    ) -> list[CountryOutcome]:
        """All tasks through batch activities; deferred countries go round again."""
        final: list[CountryOutcome] = []
        pending = list(tasks)
        limit = asyncio.Semaphore(inp.max_parallel_batches)
        by_country = {t.country: t for t in tasks}

        async def run_batch(batch: list[CountryTask]) -> BatchResult:
            async with limit:
                try:
                    return await workflow.execute_activity_method(
                        ScrapeActivities.scrape_countries,
                        BatchInput(source=spec.id, tasks=batch, concurrency=inp.batch_concurrency),
                        task_queue=spec.priority.task_queue,
                        start_to_close_timeout=timedelta(minutes=15),
                        # The activity heartbeats every few seconds while it runs, so a lost
                        # worker is noticed within this, not minutes later.
                        heartbeat_timeout=timedelta(seconds=BATCH_HEARTBEAT_TIMEOUT_SECONDS),
                        retry_policy=INFRA_RETRY,
                        priority=Priority(priority_key=spec.priority.priority_key),
                    )
                except ActivityError as err:
                    if isinstance(err.cause, CancelledError):
                        raise
                    # Still failing: every country of the batch goes the per-country way
                    # (retries, then quarantine) instead of failing the whole cycle and
                    # leaving its jobs pending with nothing quarantined.
                    now = workflow.now().isoformat()
                    failure = failure_from_error(err, attempts=1, now=now)
                    return BatchResult(
                        [
                            CountryOutcome(
                                task.country,
                                "failed",
                                failure_kind=FailureKind.INTERNAL.value,
                                message=f"batch failed: {failure.message}",
                                traceback=failure.traceback,
                                retryable=True,
                                failed_at=now,
                            )
                            for task in batch
                        ]
                    )

        while pending:
            if workflow.patched(EVEN_BATCHES_PATCH):
                batches = even_batches(
                    pending, max_size=inp.batch_size, parallel=inp.max_parallel_batches
                )
            else:  # cycles started before even batches replay as they ran
                size = inp.batch_size
                batches = [pending[i : i + size] for i in range(0, len(pending), size)]
            results = await asyncio.gather(*(run_batch(b) for b in batches))
            pending = []
            wait = 0.0
            for result in results:
                for outcome in result.outcomes:
                    if outcome.status == "deferred":
                        pending.append(by_country[outcome.country])
                        wait = max(wait, outcome.wait_seconds)
                    else:
                        final.append(outcome)
            if pending:
                await workflow.sleep(timedelta(seconds=max(wait, 1.0)))
        return final

    async def _retry_country(
        self, spec: SourceSpec, inp: ScrapeSourceInput, task: CountryTask, first: CountryOutcome
    ) -> CountryResult | str:
        """Retry one country under the retry policy; quarantine it if it finally fails."""
        first_failure = _failure(first)
        retry = inp.retry
        if retry.maximum_attempts <= 1:
            await self._quarantine(spec, inp, task, first_failure)
            return task.country
        # The batch try was attempt 1: wait the first backoff (jittered here, as
        # the activity does for later attempts), then attempts 2..max.
        jitter = 1.0 + 0.2 * (2.0 * workflow.random().random() - 1.0)
        await workflow.sleep(timedelta(seconds=retry.initial_seconds * jitter))
        try:
            result = await scrape_one_country(spec, task, inp.retry, attempts_before=1)
        except ActivityError as err:
            failure = failure_from_error(
                err, attempts=retry.maximum_attempts, now=workflow.now().isoformat()
            )
            failure.first_failure_at = first_failure.first_failure_at
            self._progress["failed"] += 1
            await self._quarantine(spec, inp, task, failure)
            return task.country
        return result

    async def _follow_up(
        self, spec: SourceSpec, inp: ScrapeSourceInput, raised: Sequence[RaisedCountry]
    ) -> list[str]:
        """Start a follow-up of every other source listing a raised country; their ids."""
        # A follow-up run never starts follow-ups (no ping-pong between sources).
        if not raised or inp.followup_of is not None or not workflow.patched(FOLLOWUP_PATCH):
            return []
        targets = await workflow.execute_activity_method(
            ScrapeActivities.followup_targets,
            FollowUpTargetsInput(source=spec.id, countries=sorted({r.country for r in raised})),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=UNTIL_DONE_RETRY,
        )
        # Only registered sources: the database may remember one the registry has dropped.
        listed = {s: countries for s, countries in targets.listed.items() if s in SOURCES}
        started: list[str] = []
        for plan in plan_followups(spec.id, raised, listed):
            target = get_source(plan.source)
            try:
                await workflow.start_child_workflow(
                    ScrapeSourceWorkflow.run,
                    dataclasses.replace(
                        inp, source=target.id, countries=list(plan.countries), followup_of=spec.id
                    ),
                    id=plan.workflow_id,
                    task_queue=target.priority.task_queue,
                    # It is a cycle of its own: it must outlive this one.
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    search_attributes=TypedSearchAttributes(
                        [SearchAttributePair(SOURCE_KEY, target.id)]
                    ),
                )
            except WorkflowAlreadyStartedError:
                workflow.logger.info("follow-up %s already started", plan.workflow_id)
            started.append(plan.workflow_id)
        return started

    async def _quarantine(
        self, spec: SourceSpec, inp: ScrapeSourceInput, task: CountryTask, failure: FailureInfo
    ) -> None:
        """Start the country's QuarantineWorkflow (it outlives this cycle)."""
        self._progress["quarantined"] += 1
        # A job without an id (a failed index) is named by the cycle's whole run id. Its first
        # 8 digits were used before, but run ids are UUIDv7: those digits are a timestamp that
        # every run started within the same ~65 s shares, so a second index quarantine of the
        # source in that window collided with the first and was never started.
        run_id = workflow.info().run_id
        job = task.job_id or (run_id if workflow.patched(WHOLE_RUN_ID_PATCH) else run_id[:8])
        country = "index" if task.country == INDEX_COUNTRY else task.country
        workflow_id = f"quarantine-{spec.id}-{country}-{job}"
        try:
            await workflow.start_child_workflow(
                QuarantineWorkflow.run,
                QuarantineInput(source=spec.id, task=task, failure=failure, retry=inp.retry),
                id=workflow_id,
                task_queue=MAINTENANCE,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=quarantine_search_attributes(spec.id, task.country, failure.kind),
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.warning("quarantine %s already exists", workflow_id)
        await workflow.execute_activity_method(
            ScrapeActivities.set_job_status,
            JobStatusInput(job_keys=[task.job_key], status="dead_letter"),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=UNTIL_DONE_RETRY,
        )


def _failure(outcome: CountryOutcome) -> FailureInfo:
    when = outcome.failed_at or ""
    return FailureInfo(
        kind=outcome.failure_kind or FailureKind.INTERNAL.value,
        message=outcome.message or "",
        attempts=1,
        first_failure_at=when,
        last_failure_at=when,
        http_status=outcome.http_status,
        traceback=outcome.traceback,
    )


__all__ = ["ScrapeSourceWorkflow"]

"""Pieces shared by the workflows (deterministic helpers only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.retry_policies import scrape_retry

with workflow.unsafe.imports_passed_through():
    from activities.scrape import ScrapeActivities
    from activities.types import CountryInput, CountryResult, CountryTask, FailureInfo, RetryConfig
    from advisories.retry import FailureKind
    from advisories.sources import SourceSpec

_T = TypeVar("_T")


def even_batches(items: Sequence[_T], *, max_size: int, parallel: int) -> list[list[_T]]:
    """``items`` in order, cut into batches of (nearly) equal size.

    As few batches as ``max_size`` allows, but at least ``parallel`` (when there are that
    many items): the batches that run at once then end at about the same time, and no
    slot idles through a short last batch or waits for one more round trip.
    """
    if max_size < 1 or parallel < 1:
        raise ValueError(f"max_size and parallel must be >= 1, got {max_size}, {parallel}")
    if not items:
        return []
    count = max(-(-len(items) // max_size), min(parallel, len(items)))
    size, extra = divmod(len(items), count)
    batches, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        batches.append(list(items[start:end]))
        start = end
    return batches


def failure_from_error(err: BaseException, *, attempts: int, now: str) -> FailureInfo:
    """What a final activity (or child workflow) failure says, for the quarantine."""
    cause: BaseException | None = err
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        details: dict[str, Any] = {}
        if cause.details and isinstance(cause.details[0], dict):
            details = cause.details[0]
        return FailureInfo(
            kind=str(details.get("kind") or _known_kind(cause.type)),
            message=cause.message,
            attempts=int(details.get("attempt") or attempts),
            first_failure_at=now,
            last_failure_at=str(details.get("failed_at") or now),
            http_status=details.get("http_status"),
            traceback=details.get("traceback"),
        )
    # Timeouts (a killed worker, a hung request) and anything else unexpected.
    return FailureInfo(
        kind=FailureKind.INTERNAL.value,
        message=f"{type(cause).__name__}: {cause}",
        attempts=attempts,
        first_failure_at=now,
        last_failure_at=now,
    )


def _known_kind(kind: str | None) -> str:
    values = {k.value for k in FailureKind}
    return kind if kind in values else FailureKind.INTERNAL.value


async def scrape_one_country(
    spec: SourceSpec, task: CountryTask, retry: RetryConfig, *, attempts_before: int
) -> CountryResult:
    """One country under the retry policy, waiting on durable timers for rate-limit budget.

    Raises:
        ActivityError: when the country finally fails.
    """
    while True:
        result = await workflow.execute_activity_method(
            ScrapeActivities.scrape_country,
            CountryInput(source=spec.id, task=task, retry=retry, attempts_before=attempts_before),
            task_queue=spec.priority.task_queue,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=scrape_retry(retry, attempts_before=attempts_before),
            priority=Priority(priority_key=spec.priority.priority_key),
        )
        if result.deferred_seconds <= 0:
            return result
        await workflow.sleep(timedelta(seconds=result.deferred_seconds))

"""The workflows' activity retry policies, by name: the one place they are written.

Every ``execute_activity`` in ``workflows/`` passes one of these. Backoff jitter for the
scrape activities is added by the activities themselves (``advisories.retry``), since
Temporal's retry policy has none.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.types import RetryConfig
    from advisories.retry import FailureKind

#: Error types no retry can fix: the document or the request itself is wrong.
NON_RETRYABLE_ERRORS = [
    FailureKind.PARSE.value,
    FailureKind.CONTRACT.value,
    FailureKind.HTTP_4XX.value,
]

#: Bookkeeping writes (job status, cycle summary, quarantine mirror, dead-letter reads) that
#: must land once the database is back: Temporal's default, 1 s doubling to 100 s, no limit.
UNTIL_DONE_RETRY = RetryPolicy()

#: Infrastructure failures only (a lost worker, the database away) fail a scrape batch; the
#: countries' own failures are handled inside it. 2 s doubling to 60 s, ~5 min in all.
INFRA_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=10,
)

#: Health metrics and checks: quick, the next run is never far away.
QUICK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=3)

#: The report: a few tries; a bad input is not retried.
REPORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=3,
    non_retryable_error_types=["InvalidInput"],
)

#: Cleanup: a few slow tries; a bad input is not retried.
MAINTENANCE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=30),
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=3,
    non_retryable_error_types=["InvalidInput"],
)


def scrape_retry(retry: RetryConfig, *, attempts_before: int = 0) -> RetryPolicy:
    """The scrape activities' policy, from settings (``attempts_before`` already spent)."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=retry.initial_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=retry.maximum_seconds),
        maximum_attempts=max(1, retry.maximum_attempts - attempts_before),
        non_retryable_error_types=NON_RETRYABLE_ERRORS,
    )


def webhook_retry(*, initial_seconds: float, maximum_seconds: float, attempts: int) -> RetryPolicy:
    """Webhook delivery, as the health run's input asks."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=initial_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=maximum_seconds),
        maximum_attempts=attempts,
    )

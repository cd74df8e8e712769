"""HealthWorkflow: collect → check and store → notify (orchestration only, no I/O).

Runs every 30 minutes from the ``health`` schedule on the ``monitoring`` queue.
Webhook delivery is retried with exponential backoff by Temporal; what a run
could not deliver stays queued in PostgreSQL for the next run.

While PostgreSQL is down the ``database`` alert cannot be deduplicated there,
so its state travels from run to run as this workflow's result (the schedule
hands each run the last completion result).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.retry_policies import QUICK_RETRY, webhook_retry

with workflow.unsafe.imports_passed_through():
    from activities.health import (
        CarriedAlert,
        ChangeNotificationInput,
        CheckInput,
        DeliverInput,
        HealthActivities,
        MetricsInput,
    )

    # Imported here too so the sandbox can resolve the type hints of the results: the
    # converter looks up each dataclass's module, so name the modules that define them.
    from advisories.health.checks import CheckResult  # noqa: F401
    from advisories.health.metrics import MetricsSnapshot
    from advisories.health.webhooks import WebhookMessage  # noqa: F401


@dataclass(frozen=True)
class HealthInput:
    """Input of ``HealthWorkflow``.

    Attributes:
        hours: Window of the success rate and other job figures (None: ``HEALTH_WINDOW_HOURS``).
        queues: Task queues checked for backlog and live workers (None: ``HEALTH_QUEUES``).
        notify: Send alerts and change notifications to the webhooks.
        delivery_initial_seconds: First retry delay of a failed webhook delivery.
        delivery_maximum_seconds: Longest retry delay.
        delivery_attempts: Attempts of the delivery activity in one run.
    """

    hours: float | None = None
    queues: list[str] | None = None
    notify: bool = True
    delivery_initial_seconds: float = 10.0
    delivery_maximum_seconds: float = 300.0
    delivery_attempts: int = 6


@dataclass(frozen=True)
class HealthSummary:
    """Result of one health run.

    Attributes:
        healthy: True when every check passed.
        failing: Dedup keys of the failing checks (``index_fetch:us_state_dept``).
        checks: Checks evaluated.
        stored: Whether the checks were stored (False: the database is down).
        alerts_queued: Alert notifications queued this run.
        changes_queued: Change notifications queued this run.
        delivered: Webhook requests answered 2xx this run.
        delivery_error: Why delivery finally failed this run, if it did.
        carried: Alert state for the next run while the database is down.
    """

    healthy: bool
    failing: list[str]
    checks: int = 0
    stored: bool = True
    alerts_queued: int = 0
    changes_queued: int = 0
    delivered: int = 0
    delivery_error: str | None = None
    carried: list[CarriedAlert] = field(default_factory=list)


@workflow.defn
class HealthWorkflow:
    """Check the system's health, store the verdicts, alert and notify."""

    @workflow.run
    async def run(self, inp: HealthInput) -> HealthSummary:
        """One health run."""
        carried: list[CarriedAlert] = []
        if workflow.has_last_completion_result():
            last = workflow.get_last_completion_result(HealthSummary)
            if isinstance(last, HealthSummary):
                carried = last.carried
        snapshot: MetricsSnapshot = await workflow.execute_activity_method(
            HealthActivities.collect_metrics,
            MetricsInput(hours=inp.hours, queues=inp.queues),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=QUICK_RETRY,
        )
        report = await workflow.execute_activity_method(
            HealthActivities.run_health_checks,
            CheckInput(snapshot=snapshot, run_id=workflow.info().run_id, carried=carried),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=QUICK_RETRY,
        )
        changes_queued = delivered = 0
        delivery_error: str | None = None
        if inp.notify:
            if report.stored:
                changes = await workflow.execute_activity_method(
                    HealthActivities.queue_change_notifications,
                    ChangeNotificationInput(),
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=QUICK_RETRY,
                )
                changes_queued = changes.queued
            if report.stored or report.direct:
                try:
                    delivery = await workflow.execute_activity_method(
                        HealthActivities.deliver_webhooks,
                        DeliverInput(direct=report.direct),
                        start_to_close_timeout=timedelta(minutes=5),
                        retry_policy=webhook_retry(
                            initial_seconds=inp.delivery_initial_seconds,
                            maximum_seconds=inp.delivery_maximum_seconds,
                            attempts=inp.delivery_attempts,
                        ),
                    )
                    delivered = delivery.delivered
                except ActivityError as err:
                    # Undelivered notifications stay queued for the next run; the
                    # health verdict itself is not lost because a receiver is down.
                    delivery_error = str(err.cause or err)
                    workflow.logger.warning("webhook delivery failed: %s", delivery_error)
        if not report.healthy:
            workflow.logger.warning("unhealthy: %s", ", ".join(report.failing))
        return HealthSummary(
            healthy=report.healthy,
            failing=report.failing,
            checks=len(report.results),
            stored=report.stored,
            alerts_queued=report.queued,
            changes_queued=changes_queued,
            delivered=delivered,
            delivery_error=delivery_error,
            carried=report.carried,
        )


__all__ = ["HealthInput", "HealthSummary", "HealthWorkflow"]

"""Alert deduplication: fire once, remind after a cool-down, resolve once (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from advisories.health.checks import CheckResult

__all__ = ["Alert", "AlertDecision", "Event", "reconcile"]


class Event(StrEnum):
    """What a webhook request announces."""

    FIRING = "firing"
    REMINDER = "reminder"
    RESOLVED = "resolved"
    CHANGE = "change"


@dataclass(frozen=True)
class Alert:
    """The alert state of one check and subject, across health runs.

    Attributes:
        key: Dedup key (:attr:`CheckResult.key`).
        check: The check name.
        state: ``firing`` or ``resolved``.
        first_seen_at: When it turned bad (this time).
        last_seen_at: The last run that saw it (bad, or the recovery).
        last_sent_at: When a notification about it last went out.
        resolved_at: When it recovered (None while firing).
        notifications: Notifications sent about it this time.
    """

    key: str
    check: str
    state: str
    first_seen_at: datetime
    last_seen_at: datetime
    last_sent_at: datetime | None = None
    resolved_at: datetime | None = None
    notifications: int = 0

    @property
    def firing(self) -> bool:
        """Whether the check is currently bad."""
        return self.state == "firing"


@dataclass(frozen=True)
class AlertDecision:
    """What to do about one alert this run.

    Attributes:
        alert: Its new state (to store).
        event: The notification to send, or None (deduplicated, or nothing new).
        result: The check result behind it (None when its subject vanished).
    """

    alert: Alert
    event: Event | None
    result: CheckResult | None


def reconcile(
    previous: Mapping[str, Alert],
    results: Sequence[CheckResult],
    *,
    now: datetime,
    cooldown: timedelta,
) -> list[AlertDecision]:
    """Decide the alerts of this run, given the stored alert states.

    * a check that turns bad fires once (``firing``);
    * one that stays bad is quiet until ``cooldown`` has passed since the last
      notification, then reminds (``reminder``);
    * one that recovers sends ``resolved`` once;
    * a firing alert whose subject is no longer reported (a worker that went
      away) while its check still ran is resolved, so nothing fires forever;
      one whose check did not run at all (its data source is down) is left alone.

    Returns:
        One decision per alert that changed, in the order of ``results``
        (vanished subjects last). Unchanged, already resolved alerts are omitted.
    """
    decisions: list[AlertDecision] = []
    seen: set[str] = set()
    for result in results:
        seen.add(result.key)
        decision = _decide(previous.get(result.key), result, now=now, cooldown=cooldown)
        if decision is not None:
            decisions.append(decision)
    checks_run = {r.name for r in results}
    for key in sorted(set(previous) - seen):
        alert = previous[key]
        if alert.firing and alert.check in checks_run:
            decisions.append(AlertDecision(_resolved(alert, now), Event.RESOLVED, None))
    return decisions


def _decide(
    alert: Alert | None, result: CheckResult, *, now: datetime, cooldown: timedelta
) -> AlertDecision | None:
    if result.ok:
        if alert is None or not alert.firing:
            return None
        return AlertDecision(_resolved(alert, now), Event.RESOLVED, result)
    if alert is None or not alert.firing:
        fired = Alert(
            key=result.key,
            check=result.name,
            state="firing",
            first_seen_at=now,
            last_seen_at=now,
            last_sent_at=now,
            notifications=1,
        )
        return AlertDecision(fired, Event.FIRING, result)
    due = alert.last_sent_at is None or now - alert.last_sent_at >= cooldown
    updated = Alert(
        key=alert.key,
        check=alert.check,
        state="firing",
        first_seen_at=alert.first_seen_at,
        last_seen_at=now,
        last_sent_at=now if due else alert.last_sent_at,
        notifications=alert.notifications + (1 if due else 0),
    )
    return AlertDecision(updated, Event.REMINDER if due else None, result)


def _resolved(alert: Alert, now: datetime) -> Alert:
    return Alert(
        key=alert.key,
        check=alert.check,
        state="resolved",
        first_seen_at=alert.first_seen_at,
        last_seen_at=now,
        last_sent_at=now,
        resolved_at=now,
        notifications=alert.notifications + 1,
    )

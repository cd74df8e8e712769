"""Health checks, alert deduplication and signed webhooks (pure).

Everything here is a function of plain inputs: a :class:`MetricsSnapshot`
collected by ``activities.health`` (jobs, requests, changes and dead letters
from PostgreSQL; backlog and pollers from Temporal; worker heartbeats), the
thresholds, and a clock passed in. Nothing reads a clock, a database or the
network, so every rule is tested without a server.

* :data:`CHECKS` defines each check as data (what it means, its unit, which
  side of the threshold is bad); :func:`evaluate` turns a snapshot into one
  :class:`CheckResult` per check and subject (source, queue or worker).
* :func:`reconcile` is the alert deduplication: an alert fires once when a
  check turns bad, reminds only after a cool-down, and is resolved (and says
  so) when the check recovers.
* :func:`sign` / :func:`verify` are the webhook signature: HMAC-SHA256 over
  ``<timestamp>.<raw body>``; the timestamp travels in its own header and is
  covered by the signature, so a captured request cannot be replayed later.

One module per part: ``settings`` (:class:`HealthSettings`), ``definitions``
(the checks, their thresholds and what the figures count), ``metrics`` (the
snapshot), ``checks`` (the rules), ``alerts`` (deduplication) and ``webhooks``
(bodies, signatures, target names). This package re-exports their public names.
"""

from advisories.health.alerts import Alert, AlertDecision, Event, reconcile
from advisories.health.checks import CheckResult, check_freshness, evaluate, failing
from advisories.health.definitions import (
    CHECKS,
    FINISHED_STATUSES,
    NOTABLE_CHANGE_KINDS,
    CheckDefinition,
    CheckName,
    Thresholds,
)
from advisories.health.metrics import (
    MetricsSnapshot,
    PollerMetrics,
    QueueMetrics,
    SourceMetrics,
    WorkerMetrics,
    poller_live,
)
from advisories.health.settings import HealthSettings
from advisories.health.webhooks import (
    DEFAULT_TOLERANCE_SECONDS,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookMessage,
    alert_message,
    change_message,
    encode_body,
    redact_target,
    sign,
    signed_headers,
    target_key,
    verify,
)

__all__ = [
    "CHECKS",
    "DEFAULT_TOLERANCE_SECONDS",
    "FINISHED_STATUSES",
    "ID_HEADER",
    "NOTABLE_CHANGE_KINDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Alert",
    "AlertDecision",
    "CheckDefinition",
    "CheckName",
    "CheckResult",
    "Event",
    "HealthSettings",
    "MetricsSnapshot",
    "PollerMetrics",
    "QueueMetrics",
    "SourceMetrics",
    "Thresholds",
    "WebhookMessage",
    "WorkerMetrics",
    "alert_message",
    "change_message",
    "check_freshness",
    "encode_body",
    "evaluate",
    "failing",
    "poller_live",
    "reconcile",
    "redact_target",
    "sign",
    "signed_headers",
    "target_key",
    "verify",
]

"""Webhook notifications: their bodies, the HMAC-SHA256 signature and safe target names (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from advisories.health.alerts import AlertDecision, Event
from advisories.health.definitions import CHECKS, CheckDefinition, CheckName

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookMessage",
    "alert_message",
    "change_message",
    "encode_body",
    "redact_target",
    "sign",
    "signed_headers",
    "target_key",
    "verify",
]

#: Header carrying ``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<raw body>``.
SIGNATURE_HEADER: Final = "X-Signature-SHA256"
#: Header carrying the Unix time (seconds) the request was signed at.
TIMESTAMP_HEADER: Final = "X-Signature-Timestamp"
#: Header carrying the delivery id: the same on every retry, so receivers can dedupe.
ID_HEADER: Final = "X-Webhook-Id"
#: How old a signed request a receiver accepts by default (seconds).
DEFAULT_TOLERANCE_SECONDS: Final = 300


@dataclass(frozen=True)
class WebhookMessage:
    """One notification: its delivery id, what it announces and its JSON body."""

    delivery_id: str
    event: str
    dedup_key: str
    body: dict[str, Any]


def alert_message(decision: AlertDecision) -> tuple[str, dict[str, Any]]:
    """Delivery id and JSON body of the notification of ``decision``.

    The id names the alert and the instant of the decision, so every retry of
    one notification carries the same id and two notifications never share one.

    Raises:
        ValueError: for a decision that sends nothing.
    """
    if decision.event is None:
        raise ValueError(f"alert {decision.alert.key} sends nothing this run")
    alert, result = decision.alert, decision.result
    at = _iso(alert.last_seen_at)
    delivery_id = f"alert:{alert.key}:{decision.event.value}:{at}"
    check = _definition(alert.check)
    body: dict[str, Any] = {
        "id": delivery_id,
        "type": "alert",
        "event": decision.event.value,
        "alert": alert.key,
        "check": alert.check,
        "description": check.description if check else "",
        "state": alert.state,
        "first_seen_at": _iso(alert.first_seen_at),
        "at": at,
        "source": result.source if result else None,
        "queue": result.queue if result else None,
        "worker": result.worker if result else None,
        "value": result.value if result else None,
        "threshold": result.threshold if result else None,
        "unit": check.unit if check else "",
        "detail": result.detail if result else "no longer reported",
    }
    return delivery_id, body


def change_message(change: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Delivery id and JSON body of the notification of one advisory change.

    Args:
        change: A change row: ``id``, ``source``, ``country``, ``country_name``,
            ``kind``, ``level_before``, ``level_after``, ``regional_before``,
            ``regional_after``, ``source_updated_at``, ``detected_at``, ``title``, ``url``.
    """
    delivery_id = f"change:{change['id']}"
    body = {
        "id": delivery_id,
        "type": "change",
        "event": Event.CHANGE.value,
        "change_id": change["id"],
        "source": change["source"],
        "country": change["country"],
        "country_name": change.get("country_name"),
        "kind": change["kind"],
        "level_before": change.get("level_before"),
        "level_after": change.get("level_after"),
        "regional_before": change.get("regional_before"),
        "regional_after": change.get("regional_after"),
        "title": change.get("title"),
        "url": change.get("url"),
        "source_updated_at": _iso_or_none(change.get("source_updated_at")),
        "detected_at": _iso_or_none(change.get("detected_at")),
    }
    return delivery_id, body


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted JSON in UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 keyed by ``secret`` over ``<timestamp>.<body>``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, timestamp: int, delivery_id: str) -> dict[str, str]:
    """The headers of one signed webhook request."""
    return {
        "Content-Type": "application/json",
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: a valid signature on a request signed recently.

    Args:
        secret: The shared secret.
        body: The raw request body, as received.
        timestamp: The ``X-Signature-Timestamp`` header.
        signature: The ``X-Signature-SHA256`` header.
        now: The receiver's Unix time.
        tolerance_seconds: Oldest (and furthest in the future) timestamp accepted.
    """
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def target_key(url: str) -> str:
    """A stable key of a webhook URL that reveals nothing of it (stored with deliveries)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def redact_target(url: str) -> str:
    """What may be logged of a webhook URL: scheme, host and port only.

    Paths and queries of webhook URLs are often secrets themselves (chat
    services put the token there).
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/… ({target_key(url)[:8]})"


def _definition(name: str) -> CheckDefinition | None:
    try:
        return CHECKS[CheckName(name)]
    except ValueError:
        return None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _iso_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return _iso(value) if isinstance(value, datetime) else str(value)

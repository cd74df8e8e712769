"""Webhook delivery: POST the pending notifications to every configured target, signed.

:class:`WebhookDelivery` is the sending behind ``HealthActivities.deliver_webhooks``:
messages handed over directly (the database is down) go to every target; otherwise the
outbox's pending deliveries go out per target, in order, stopping at a target's first
failure so that the rest waits for the activity's retry. Each body is signed with
HMAC-SHA256 (``advisories.health.signed_headers``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from advisories.health import (
    HealthSettings,
    WebhookMessage,
    encode_body,
    redact_target,
    signed_headers,
    target_key,
)
from advisories.settings import Settings
from store.health import WebhookOutbox

__all__ = ["DeliveryOutcome", "WebhookDelivery"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one delivery round did.

    Attributes:
        delivered: Requests a receiver answered 2xx.
        abandoned: Outbox deliveries given up (their target is no longer configured).
        errors: One line per failed target (``<redacted target>: <error>``).
    """

    delivered: int = 0
    abandoned: int = 0
    errors: list[str] = field(default_factory=list)


class WebhookDelivery:
    """Sends notifications to the configured webhooks (constructed once, with the activities).

    Args:
        pool: The process's pool (None when the CLI could not create one).
        settings: The project settings (User-Agent).
        health: Webhook targets, secret, timeout and attempts.
    """

    def __init__(
        self, *, pool: asyncpg.Pool | None, settings: Settings, health: HealthSettings
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._health = health

    async def deliver(self, direct: Sequence[WebhookMessage], *, limit: int) -> DeliveryOutcome:
        """POST ``direct`` (or else at most ``limit`` pending outbox deliveries) to every target.

        What was delivered stays delivered; a failed target's errors are in the outcome.
        """
        urls = {target_key(url): url for url in self._health.webhook_urls}
        if not urls:
            return DeliveryOutcome()
        secret = self._health.webhook_secret
        assert secret is not None  # HealthSettings refuses URLs without a secret
        errors: list[str] = []
        delivered = abandoned = 0
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self._health.webhook_timeout_seconds),
            follow_redirects=False,
            headers={"User-Agent": self._settings.http_user_agent},
        ) as http:
            sender = _Sender(http, secret.get_secret_value())
            for message in direct:
                for url in urls.values():
                    _, error = await sender.post(url, message.delivery_id, message.body)
                    if error:
                        log.warning(
                            "webhook %s: %s (%s) not delivered: %s",
                            redact_target(url),
                            message.event,
                            message.dedup_key,
                            error,
                        )
                        errors.append(f"{redact_target(url)}: {error}")
                    else:
                        delivered += 1
            # Without the database (direct messages), the outbox is out of reach too.
            if self._pool is not None and not direct:
                outbox = WebhookOutbox(self._pool)
                rows = await outbox.pending(limit=limit)
                gone = [r["id"] for r in rows if r["target_key"] not in urls]
                if gone:
                    await outbox.abandon(gone)
                    abandoned = len(gone)
                by_target: dict[str, list[asyncpg.Record]] = {}
                for row in rows:
                    if row["target_key"] in urls:
                        by_target.setdefault(row["target_key"], []).append(row)
                outcomes = await asyncio.gather(
                    *(
                        self._deliver_target(sender, outbox, urls[key], target_rows)
                        for key, target_rows in by_target.items()
                    )
                )
                for sent, error in outcomes:
                    delivered += sent
                    if error:
                        errors.append(error)
        return DeliveryOutcome(delivered=delivered, abandoned=abandoned, errors=errors)

    async def _deliver_target(
        self, sender: _Sender, outbox: WebhookOutbox, url: str, rows: list[asyncpg.Record]
    ) -> tuple[int, str | None]:
        """Send one target's deliveries in order; stop at its first failure."""
        sent = 0
        for row in rows:
            status, error = await sender.post(url, row["delivery_id"], json.loads(row["body"]))
            await outbox.attempted(
                row["id"],
                status_code=status,
                error=error,
                max_attempts=self._health.webhook_max_attempts,
            )
            if error:
                log.warning(
                    "webhook %s: %s (%s) not delivered: %s",
                    row["target"],
                    row["event"],
                    row["dedup_key"],
                    error,
                )
                # Keep the target's order (firing before resolved) and spare a
                # receiver that is down: the rest waits for the retry.
                return sent, f"{row['target']}: {error}"
            sent += 1
        return sent, None


class _Sender:
    """Signs and POSTs one JSON body; answers (status, error)."""

    def __init__(self, http: httpx.AsyncClient, secret: str) -> None:
        self._http = http
        self._secret = secret

    async def post(
        self, url: str, delivery_id: str, body: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        raw = encode_body(body)
        headers = signed_headers(
            self._secret, raw, timestamp=int(time.time()), delivery_id=delivery_id
        )
        try:
            response = await self._http.post(url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            # The exception's text may quote the URL (whose path can be a token).
            return None, type(exc).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

"""Health settings: thresholds, webhooks and alerting policy, read from the environment."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from advisories.health.definitions import Thresholds
from advisories.health.webhooks import redact_target
from advisories.queues import ALL_QUEUES

__all__ = ["HealthSettings"]


class HealthSettings(BaseSettings):
    """Thresholds, webhooks and alerting policy, from the environment (or ``.env``).

    Environment variable names are the upper-cased field names
    (``WEBHOOK_URLS``, ``WEBHOOK_SECRET``, ``HEALTH_SUCCESS_RATE_MIN`` ...).
    """

    # Inputs stay out of validation errors: they may hold the secret or a token URL.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    webhook_urls: list[str] = Field(
        default_factory=list,
        # Webhook paths are often tokens: kept out of repr (and so out of logs).
        repr=False,
        description='JSON list of URLs that receive alerts and change notifications, e.g. ["https://hooks.example.org/advisories"]',
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key signing every webhook request"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(
        default=20,
        ge=1,
        description="Attempts (over all health runs) before a delivery is marked failed",
    )
    alert_cooldown_hours: float = Field(
        default=6.0, gt=0, description="A still-failing check is re-sent after this long"
    )

    health_window_hours: float = Field(default=6.0, gt=0, le=24 * 30)
    health_success_rate_min: float = Field(default=80.0, ge=0, le=100)
    health_success_min_jobs: int = Field(
        default=10,
        ge=1,
        # A source that is idle between cycles finishes one index fetch per cycle:
        # one failure among three is noise, not a rate.
        description="Fewer finished fetches than this in the window: no success-rate verdict",
    )
    health_backlog_max: int = Field(default=100, ge=0)
    health_worker_memory_max_mb: float = Field(default=500.0, gt=0)
    health_rate_limit_utilisation_max: float = Field(default=90.0, gt=0)
    health_poller_stale_seconds: float = Field(
        default=90.0,
        ge=10,
        description="An idle worker re-polls about every 60 s: a poller not seen for"
        " longer than this is gone",
    )
    health_freshness_factor: float = Field(default=2.0, gt=0)
    health_canary_min_ratio: float = Field(default=0.8, gt=0, le=1)
    health_queues: list[str] = Field(
        default_factory=lambda: list(ALL_QUEUES),
        description="Task queues that must have a live worker (and a backlog under the limit)",
    )
    health_database_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                # Never echo the URL: its path or query may be a secret token.
                raise ValueError(f"WEBHOOK_URLS: not an http(s) URL: {redact_target(url)}")
        return value

    @model_validator(mode="after")
    def _secret_with_urls(self) -> HealthSettings:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("WEBHOOK_URLS is set but WEBHOOK_SECRET is not: webhooks are signed")
        return self

    @property
    def alert_cooldown(self) -> timedelta:
        """How long a still-failing check stays quiet after a notification."""
        return timedelta(hours=self.alert_cooldown_hours)

    def thresholds(self) -> Thresholds:
        """The check thresholds as a plain object."""
        return Thresholds(
            success_rate_min=self.health_success_rate_min,
            success_min_jobs=self.health_success_min_jobs,
            backlog_max=self.health_backlog_max,
            worker_memory_max_mb=self.health_worker_memory_max_mb,
            rate_limit_utilisation_max=self.health_rate_limit_utilisation_max,
            poller_stale_seconds=self.health_poller_stale_seconds,
            freshness_factor=self.health_freshness_factor,
            canary_min_ratio=self.health_canary_min_ratio,
        )

    def safe_summary(self) -> dict[str, object]:
        """What may be printed: webhook targets redacted, the secret only as set/unset."""
        return {
            "webhook_urls": [redact_target(url) for url in self.webhook_urls],
            "webhook_secret": "set" if self.webhook_secret else "unset",
            "alert_cooldown_hours": self.alert_cooldown_hours,
            "thresholds": dataclasses.asdict(self.thresholds()),
            "health_queues": self.health_queues,
        }

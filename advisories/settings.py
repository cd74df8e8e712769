"""Configuration: one settings object, read from the environment and ``.env``.

Every process (worker, starter, dev stack, tests) builds its configuration
here. Secrets are ``SecretStr`` so they never show up in a log line or repr;
:meth:`Settings.safe_summary` is what may be printed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from advisories.models import RetryConfig
from advisories.schedule_spec import parse_timing
from advisories.sources import SourceSpec, get_source, source_ids

#: Port the dev stack's PostgreSQL listens on (loopback only).
DEV_POSTGRES_PORT = 54329
DEFAULT_DATABASE_URL = f"postgresql://postgres@127.0.0.1:{DEV_POSTGRES_PORT}/advisories"


class Settings(BaseSettings):
    """All configuration of the project.

    Environment variable names are the upper-cased field names
    (``TEMPORAL_ADDRESS``, ``DATABASE_URL``, ``SOURCE_BASE_URLS`` ...).
    """

    # ``.state/demo.env`` is written by ``make demo`` (replay server, rate limits off) and
    # removed by ``make down``; the environment itself always wins over both files.
    model_config = SettingsConfigDict(
        env_file=(".env", ".state/demo.env"), extra="ignore", frozen=True
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: SecretStr | None = None
    temporal_ui_url: str = "http://127.0.0.1:8233"

    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    database_pool_size: int = Field(default=10, ge=1, le=100)

    source_base_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Per-source origin overrides, e.g. {'us_state_dept': 'http://127.0.0.1:8765/us_state_dept'}",
    )
    replay_base_url: str | None = Field(
        default=None,
        description="Point every source at a replay server: <replay_base_url>/<source id>",
    )

    user_agent: str = "travel-advisory-scheduler/0.1"
    contact_url: str = "https://example.org/travel-advisory-scheduler/contact"
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    max_response_bytes: int = Field(default=10 * 1024 * 1024, gt=0)

    retry_initial_seconds: float = Field(default=60.0, gt=0)
    retry_maximum_seconds: float = Field(default=600.0, gt=0)
    retry_maximum_attempts: int = Field(default=4, ge=1, le=20)

    worker_max_concurrent_activities: int = Field(default=50, ge=1)
    #: Long polls a worker keeps open per task queue, for workflow and for activity tasks
    #: each (the SDK's default is 5: 50 open polls over the five queues cost memory and
    #: server work, and a scrape cycle's few dozen tasks a second need no more than 2).
    worker_task_polls: int = Field(default=2, ge=1, le=20)

    rate_limits_enabled: bool = Field(
        default=True, description="False switches every source's rate limit off (benchmarks)"
    )
    rate_limit_max_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Longest wait for rate-limit budget inside an activity; longer waits"
        " give the slot back and sleep on a durable workflow timer",
    )
    robots_txt_enabled: bool = True
    scrape_batch_size: int = Field(default=100, ge=1, le=500)
    scrape_batch_concurrency: int = Field(default=8, ge=1, le=100)
    scrape_max_parallel_batches: int = Field(default=4, ge=1, le=100)
    scrape_worker_max_documents: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Documents one worker process fetches, parses and stores at once, over"
        " all its batches and sources (a slot is taken after the request's rate-limit budget)",
    )
    followup_enabled: bool = Field(
        default=True,
        description="A cycle that raises a country to FOLLOWUP_MIN_LEVEL or above starts a"
        " forced follow-up run of every other source listing it (advisories/followup.py)",
    )
    followup_min_level: int = Field(default=3, ge=1, le=4)

    api_workers: int = Field(
        default=1, ge=1, le=16, description="uvicorn worker processes of `python -m api`"
    )
    api_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often the API checks the data version when no notification came",
    )

    log_level: str = "INFO"
    state_dir: Path = Path(".state")

    schedule_overrides: dict[str, str] = Field(
        default_factory=dict,
        description="Schedule id → interval ('15m', '2h') or cron ('0 * * * *'),"
        " e.g. {'scrape-us_state_dept': '30m'}",
    )
    schedule_jitter_seconds: float = Field(default=120.0, ge=0)
    schedule_catchup_window_seconds: float = Field(default=3600.0, ge=60)

    @field_validator("source_base_urls")
    @classmethod
    def _known_sources(cls, value: dict[str, str]) -> dict[str, str]:
        for source in value:
            get_source(source)
        return value

    @field_validator("schedule_overrides")
    @classmethod
    def _timings(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            parse_timing(text)
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"invalid log level {value!r}")
        return upper

    def base_url(self, source: str | SourceSpec) -> str:
        """Origin (scheme://host[:port][/prefix]) that ``source``'s paths hang off.

        Args:
            source: The source's id, or its spec when the caller holds it already.
        """
        spec = _spec(source)
        if spec.id in self.source_base_urls:
            return self.source_base_urls[spec.id].rstrip("/")
        if self.replay_base_url:
            return f"{self.replay_base_url.rstrip('/')}/{spec.id}"
        return spec.default_base_url

    def index_url(self, source: str | SourceSpec) -> str:
        """Full URL of ``source``'s index document (with the source's index query, if any).

        Args:
            source: The source's id, or its spec when the caller holds it already.
        """
        spec = _spec(source)
        query = f"?{spec.index_query}" if spec.index_query else ""
        return self.base_url(spec) + spec.index_path + query

    def retry_config(self) -> RetryConfig:
        """Activity retry parameters."""
        return RetryConfig(
            initial_seconds=self.retry_initial_seconds,
            maximum_seconds=self.retry_maximum_seconds,
            maximum_attempts=self.retry_maximum_attempts,
        )

    def workflow_url(self, workflow_id: str) -> str:
        """Web UI link to a workflow."""
        return (
            f"{self.temporal_ui_url}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"
        )

    @property
    def http_user_agent(self) -> str:
        """User-Agent header: project name and a contact URL."""
        return f"{self.user_agent} (+{self.contact_url})"

    def safe_summary(self) -> dict[str, object]:
        """What may be printed or logged: secrets removed, passwords masked."""
        return {
            "temporal_address": self.temporal_address,
            "temporal_namespace": self.temporal_namespace,
            "temporal_tls": self.temporal_tls,
            "temporal_api_key": "set" if self.temporal_api_key else "unset",
            "database_url": redact_url(self.database_url.get_secret_value()),
            "sources": {s: self.base_url(s) for s in source_ids()},
            "user_agent": self.http_user_agent,
            "log_level": self.log_level,
        }


def _spec(source: str | SourceSpec) -> SourceSpec:
    """The spec of ``source``: looked up by id, or the spec itself."""
    return source if isinstance(source, SourceSpec) else get_source(source)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def config_errors(exc: ValidationError) -> str:
    """A pydantic validation error as one line: ``FIELD: message; FIELD: message``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
        for err in exc.errors()
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()

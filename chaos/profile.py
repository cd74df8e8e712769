"""How big and how hard a chaos run is: the full run for people, ``--short`` for CI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Profile:
    """Sizes, pacing and fault strength of one run.

    Attributes:
        name: ``full`` or ``short``.
        uk_countries: GOV.UK countries in the catalogue (None: the full 225).
        canada_destinations: Canada destinations (None: all 229).
        latency_ms: Latency the replay server adds to every document request.
        batch_size: ``SCRAPE_BATCH_SIZE`` (countries per batch activity).
        batch_concurrency: ``SCRAPE_BATCH_CONCURRENCY`` (documents at once in a batch).
        max_parallel_batches: ``SCRAPE_MAX_PARALLEL_BATCHES``.
        http_timeout_seconds: ``HTTP_TIMEOUT_SECONDS`` of the workers.
        retry_initial_seconds: ``RETRY_INITIAL_SECONDS``.
        retry_maximum_seconds: ``RETRY_MAXIMUM_SECONDS``.
        retry_maximum_attempts: ``RETRY_MAXIMUM_ATTEMPTS``.
        workers: Worker processes running at once.
        postgres_down_seconds: How long PostgreSQL stays stopped.
        fault_rate: Share of replay requests that fail while faults are on (all kinds together).
        fault_hang_seconds: How long a ``timeout`` fault hangs (more than the HTTP timeout).
        trigger_fraction: Share of a wave's documents stored before a fault lands.
        phase_wait_seconds: How long a phase waits for its own cycles before the next phase.
        settle_seconds: How long the end waits for every cycle of the run to close.
        max_rounds: Rounds of process-dlq + fresh cycles at the end, at most.
        deadline_seconds: The whole run, at most (a late run stops and reports).
    """

    name: str
    uk_countries: int | None
    canada_destinations: int | None
    latency_ms: float
    batch_size: int
    batch_concurrency: int
    max_parallel_batches: int
    http_timeout_seconds: float
    retry_initial_seconds: float
    retry_maximum_seconds: float
    retry_maximum_attempts: int
    workers: int
    postgres_down_seconds: float
    fault_rate: float
    fault_hang_seconds: float
    trigger_fraction: float
    phase_wait_seconds: float
    settle_seconds: float
    max_rounds: int
    deadline_seconds: float

    def settings_env(self) -> dict[str, str]:
        """The project settings of the workers and the CLI (environment variables)."""
        return {
            "RATE_LIMITS_ENABLED": "false",
            # Every wave raises countries everywhere: follow-up runs would be cycles the harness
            # neither started nor waits for (tests/integration/test_followup.py covers them).
            "FOLLOWUP_ENABLED": "false",
            "RETRY_INITIAL_SECONDS": str(self.retry_initial_seconds),
            "RETRY_MAXIMUM_SECONDS": str(self.retry_maximum_seconds),
            "RETRY_MAXIMUM_ATTEMPTS": str(self.retry_maximum_attempts),
            "SCRAPE_BATCH_SIZE": str(self.batch_size),
            "SCRAPE_BATCH_CONCURRENCY": str(self.batch_concurrency),
            "SCRAPE_MAX_PARALLEL_BATCHES": str(self.max_parallel_batches),
            "HTTP_TIMEOUT_SECONDS": str(self.http_timeout_seconds),
            "SCHEDULE_JITTER_SECONDS": "0",
            "LOG_LEVEL": "INFO",
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FULL = Profile(
    name="full",
    uk_countries=None,
    canada_destinations=None,
    latency_ms=20,
    batch_size=25,
    batch_concurrency=1,
    max_parallel_batches=2,
    http_timeout_seconds=3,
    retry_initial_seconds=1,
    retry_maximum_seconds=4,
    retry_maximum_attempts=4,
    workers=2,
    postgres_down_seconds=30,
    fault_rate=0.3,
    fault_hang_seconds=5,
    trigger_fraction=0.25,
    phase_wait_seconds=90,
    settle_seconds=360,
    max_rounds=5,
    deadline_seconds=1500,
)

SHORT = Profile(
    name="short",
    uk_countries=20,
    canada_destinations=20,
    latency_ms=60,
    batch_size=5,
    batch_concurrency=1,
    max_parallel_batches=1,
    http_timeout_seconds=2,
    retry_initial_seconds=1,
    retry_maximum_seconds=4,
    retry_maximum_attempts=4,
    workers=2,
    postgres_down_seconds=5,
    fault_rate=0.3,
    fault_hang_seconds=3,
    trigger_fraction=0.2,
    phase_wait_seconds=30,
    settle_seconds=170,
    max_rounds=4,
    deadline_seconds=225,
)

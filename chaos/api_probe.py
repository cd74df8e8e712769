"""The advisory service under chaos: a reader that keeps asking it questions through every phase.

While the scenario kills workers, restarts Temporal, stops PostgreSQL and breaks the sources, a
probe asks the service (``python -m api``) for ``/healthz``, ``/v1/sources`` and one country,
a few times a second, and keeps what came back per phase. The verdict: the service answered every
request (no connection error, no timeout, no 5xx but a 503), said 503 with ``Retry-After`` and a
one-line JSON error while PostgreSQL was down, served 200s again within ``recovery_limit`` seconds
of PostgreSQL being back, without a restart, and kept answering while crawls ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

#: What the probe asks, in turn.
PATHS = ("/healthz", "/v1/sources", "/v1/countries/FR")
#: Seconds between two rounds of questions.
INTERVAL_SECONDS = 0.25
#: A request slower than this counts as a timeout.
TIMEOUT_SECONDS = 5.0


@dataclass
class PhaseCounts:
    """What the service answered during one phase."""

    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    max_latency_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": dict(sorted(self.statuses.items())),
            "errors": dict(self.errors),
            "max_latency_ms": round(self.max_latency_ms, 1),
        }


@dataclass
class ApiProbe:
    """Asks the service its questions until :meth:`stop`; see the module docstring.

    Attributes:
        base_url: The service, e.g. ``http://127.0.0.1:8000``.
        recovery_limit: Seconds the service may take to serve 200s after PostgreSQL is back.
    """

    base_url: str
    recovery_limit: float = 30.0
    phase: str = "setup"
    phases: dict[str, PhaseCounts] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    db_down_at: float | None = None
    db_up_at: float | None = None
    #: During the outage: 503 answers, and those with Retry-After and a one-line JSON error.
    outage_503: int = 0
    outage_503_well_formed: int = 0
    outage_other: Counter[str] = field(default_factory=Counter)
    recovered_after: float | None = None
    _recovered: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    # ------------------------------------------------------------------ the scenario's side

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="api-probe")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def enter(self, phase: str) -> None:
        """Count what follows under ``phase``."""
        self.phase = phase

    def database_down(self) -> None:
        self.db_down_at = time.monotonic()

    def database_up(self) -> None:
        self.db_up_at = time.monotonic()

    async def wait_recovered(self) -> float | None:
        """Seconds from PostgreSQL's restart to the first 200 of every path (or None)."""
        if self.db_up_at is None:
            return None
        left = self.db_up_at + self.recovery_limit - time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._recovered.wait(), timeout=max(0.0, left))
        return self.recovered_after

    # ------------------------------------------------------------------ the probe's side

    async def _loop(self) -> None:
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=TIMEOUT_SECONDS, limits=limits
        ) as http:
            while not self._stopping:
                round_ok = True
                for path in PATHS:
                    round_ok &= await self._ask(http, path)
                if (
                    round_ok
                    and self.db_up_at is not None
                    and self.recovered_after is None
                    and time.monotonic() > self.db_up_at
                ):
                    self.recovered_after = time.monotonic() - self.db_up_at
                    self._recovered.set()
                await asyncio.sleep(INTERVAL_SECONDS)

    def _outage(self) -> bool:
        return self.db_down_at is not None and self.db_up_at is None

    async def _ask(self, http: httpx.AsyncClient, path: str) -> bool:
        counts = self.phases.setdefault(self.phase, PhaseCounts())
        counts.requests += 1
        started = time.monotonic()
        try:
            response = await http.get(path)
        except httpx.HTTPError as exc:
            kind = type(exc).__name__
            counts.errors[kind] += 1
            self.problems.append(f"{self.phase}: GET {path}: {kind}: {exc}")
            return False
        finally:
            counts.max_latency_ms = max(counts.max_latency_ms, (time.monotonic() - started) * 1000)
        status = response.status_code
        counts.statuses[str(status)] += 1
        if self._outage():
            if status == 503:
                self.outage_503 += 1
                if _well_formed_503(response):
                    self.outage_503_well_formed += 1
                else:
                    self.problems.append(
                        f"{self.phase}: GET {path}: 503 without Retry-After or JSON error"
                    )
            else:
                self.outage_other[str(status)] += 1
        elif status >= 500 and status != 503:
            self.problems.append(f"{self.phase}: GET {path}: {status} {response.text[:200]!r}")
        return status == 200

    # ------------------------------------------------------------------ the verdict

    def failures(self) -> list[str]:
        """What the service did wrong (empty when it held up)."""
        found = []
        errors = sum(sum(c.errors.values()) for c in self.phases.values())
        if errors:
            found.append(f"api: {errors} requests got no answer")
        if any(
            int(status) >= 500 and status != "503"
            for counts in self.phases.values()
            for status in counts.statuses
        ):
            found.append("api: answered 5xx other than 503")
        if self.db_down_at is not None:
            if self.outage_503 == 0:
                found.append("api: no 503 while PostgreSQL was down")
            if self.outage_503_well_formed < self.outage_503:
                found.append("api: a 503 without Retry-After or a one-line JSON error")
            if self.recovered_after is None:
                found.append(
                    f"api: not serving 200s within {self.recovery_limit:.0f} s of PostgreSQL"
                )
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "paths": list(PATHS),
            "phases": {name: counts.to_json() for name, counts in self.phases.items()},
            "outage": {
                "answers_503": self.outage_503,
                "answers_503_with_retry_after_and_json_error": self.outage_503_well_formed,
                "other_answers": dict(self.outage_other),
            },
            "recovered_after_seconds": (
                None if self.recovered_after is None else round(self.recovered_after, 2)
            ),
            "problems": self.problems[:50],
            "failures": self.failures(),
        }


def _well_formed_503(response: httpx.Response) -> bool:
    """A 503 that tells the client when to come back and why, in one line of JSON."""
    if not response.headers.get("retry-after", "").strip().isdigit():
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, str) and bool(error) and "\n" not in error

"""Request counts per (source, path, status), for tests and benchmarks."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

#: Status recorded for a request that got no response at all (a ``timeout`` fault).
NO_RESPONSE: Final = 0


@dataclass(frozen=True, slots=True)
class RequestCount:
    """How many requests for one document got one status.

    Attributes:
        source: Source id (first URL path segment; ``""`` if there was none).
        path: Path on the real site.
        status: HTTP status sent, or ``NO_RESPONSE`` (0) if none was sent.
        count: Number of requests.
    """

    source: str
    path: str
    status: int
    count: int


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """A snapshot of the request counters (control requests under ``/_replay`` excluded).

    Attributes:
        requests: One entry per (source, path, status) seen, sorted.
        faults: Failures injected, per fault kind.
    """

    requests: tuple[RequestCount, ...] = ()
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Number of document requests."""
        return sum(entry.count for entry in self.requests)

    def count(
        self, *, source: str | None = None, path: str | None = None, status: int | None = None
    ) -> int:
        """Number of requests matching every filter given."""
        return sum(
            entry.count
            for entry in self.requests
            if (source is None or entry.source == source)
            and (path is None or entry.path == path)
            and (status is None or entry.status == status)
        )

    def to_json(self) -> dict[str, object]:
        """The JSON body of ``GET /_replay/stats``."""
        return {
            "total": self.total,
            "requests": [
                {"source": e.source, "path": e.path, "status": e.status, "count": e.count}
                for e in self.requests
            ],
            "faults": dict(self.faults),
        }


class StatsRecorder:
    """Thread-safe counters behind :class:`ReplayStats`."""

    def __init__(self) -> None:
        self._requests: Counter[tuple[str, str, int]] = Counter()
        self._faults: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, source: str, path: str, status: int, *, fault: str | None = None) -> None:
        """Count one request, and the fault injected into it if any."""
        with self._lock:
            self._requests[(source, path, status)] += 1
            if fault is not None:
                self._faults[fault] += 1

    def snapshot(self) -> ReplayStats:
        """The counts so far."""
        with self._lock:
            requests = sorted(self._requests.items())
            faults = dict(sorted(self._faults.items()))
        return ReplayStats(
            requests=tuple(RequestCount(s, p, status, n) for (s, p, status), n in requests),
            faults=faults,
        )

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

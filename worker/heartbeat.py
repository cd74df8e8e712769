"""The worker heartbeat: a background task that records the process's memory and queues."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import psutil

from activities.health import error_line
from store.health import WorkerHeartbeatStore
from store.pool import DATABASE_ERRORS

__all__ = ["WorkerHeartbeat", "default_identity"]

log = logging.getLogger(__name__)


def default_identity() -> str:
    """The identity Temporal gives a client by default: the same as the worker's pollers."""
    return f"{os.getpid()}@{socket.gethostname()}"


class WorkerHeartbeat:
    """Records a worker process's memory and queues every ``interval_seconds``.

    Run it as a background task of the worker process::

        heartbeat = asyncio.create_task(WorkerHeartbeat(pool, queues=queues).run())
        ...
        heartbeat.cancel()  # on shutdown: records the clean stop, then ends

    Its identity is the one Temporal gives the process's pollers by default
    (``pid@host``), so ``worker status`` joins memory to pollers, and a clean
    stop makes those pollers count as gone at once instead of after
    ``HEALTH_POLLER_STALE_SECONDS``.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        queues: Sequence[str],
        interval_seconds: float = 30.0,
        identity: str | None = None,
    ) -> None:
        self._store = WorkerHeartbeatStore(pool)
        self._queues = list(queues)
        self._interval = interval_seconds
        self.identity = identity or default_identity()
        self._started_at = datetime.now(UTC)
        self._peak_mb = 0.0

    async def beat(self) -> None:
        """Record one heartbeat now."""
        rss_mb = psutil.Process().memory_info().rss / (1024 * 1024)
        self._peak_mb = max(self._peak_mb, rss_mb, _max_rss_mb())
        await self._store.beat(
            identity=self.identity,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self._queues,
            rss_mb=rss_mb,
            peak_rss_mb=self._peak_mb,
            started_at=self._started_at,
        )

    async def run(self) -> None:
        """Beat until cancelled; then record the clean stop and re-raise the cancellation."""
        try:
            while True:
                try:
                    await self.beat()
                except DATABASE_ERRORS as exc:
                    # A database hiccup must not take the worker down.
                    log.warning("worker heartbeat not recorded: %s", error_line(exc))
                await asyncio.sleep(self._interval)
        except asyncio.CancelledError:
            with contextlib.suppress(*DATABASE_ERRORS):
                await asyncio.wait_for(self._store.stopped(self.identity), timeout=5)
            raise


def _max_rss_mb() -> float:
    """Peak RSS of the process so far (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

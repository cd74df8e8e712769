"""The service's state: the pool, the in-memory snapshot and the response cache, kept current.

One background task per process keeps three things true without a request waiting on it:

* the pool exists once PostgreSQL answers (the service starts, and answers 503, while it
  does not, and recovers by itself when it is back);
* the snapshot of current advisories is the data version's: a ``LISTEN`` on
  ``advisory_data`` (notified by V005's triggers) wakes it within milliseconds of a
  commit, and a cheap version query every ``API_POLL_SECONDS`` is the fallback when
  notifications are lost (a dropped listener connection, a database without V005);
* :attr:`Service.available` says whether PostgreSQL answered the last check, so every
  data endpoint can answer 503 at once instead of serving data it cannot vouch for.

An outage is logged twice: one WARNING with the reason when PostgreSQL stops answering and
one INFO when it is back; every failed retry in between is DEBUG (asyncpg's pool, which
logs a traceback each time it fails to restore its connection floor, included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

import asyncpg

from advisories.text import one_line
from api.http import ResponseCache
from store.pool import DATABASE_ERRORS, create_pool
from store.read import ReadStore, Snapshot

__all__ = ["DB_ERRORS", "NOTIFY_CHANNEL", "Service", "Unavailable"]

log = logging.getLogger(__name__)

#: Channel V005's triggers notify on every write to the advisory tables.
NOTIFY_CHANNEL: Final = "advisory_data"
#: Errors that mean PostgreSQL is not there (the health check's list, plus a connection
#: the pool or listener lost mid-operation, and a pooled connection the server's shutdown left
#: busy: asyncpg's "cannot switch to state …; another operation is in progress").
DB_ERRORS: Final = (*DATABASE_ERRORS, asyncpg.InterfaceError, asyncpg.InternalClientError)
# Notifications come in bursts during a crawl (one per storing transaction): coalesce them.
_MIN_REFRESH_GAP: Final = 0.25
_CONNECT_TIMEOUT: Final = 5.0
#: What asyncpg's pool logs, with a traceback, each time it fails to reconnect its floor.
_POOL_RETRY_MESSAGE: Final = "Failed to restore the pool connection floor"


def _reason(exc: BaseException) -> str:
    return one_line(str(exc) or type(exc).__name__, limit=300)


class _PoolRetries(logging.Filter):
    """Turns asyncpg's per-retry pool warning (a traceback each time) into one DEBUG line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(_POOL_RETRY_MESSAGE):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        log.debug("pool reconnect failed: %s", "unknown" if exc is None else _reason(exc))
        return False


_POOL_RETRIES: Final = _PoolRetries()


class Unavailable(Exception):
    """PostgreSQL cannot be reached: the request gets 503 with ``Retry-After``."""


class Service:
    """Pool, snapshot and response cache of one API process."""

    def __init__(
        self, dsn: str, *, pool_size: int, poll_seconds: float, retry_seconds: float = 1.0
    ) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._poll = poll_seconds
        self._retry = retry_seconds
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.store: ReadStore | None = None
        self.snapshot: Snapshot | None = None
        self.cache = ResponseCache(version=())
        self.available = False
        # Whether the current outage has been logged (its WARNING once, then DEBUG).
        self._outage_logged = False
        #: Snapshot reloads since start (the tests and the bench read it).
        self.reloads = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the background task (returns at once, whether or not PostgreSQL is up)."""
        logging.getLogger("asyncpg.pool").addFilter(_POOL_RETRIES)  # once: same instance
        self._task = asyncio.create_task(self._run(), name="api-data-version")

    async def stop(self) -> None:
        """Stop the task, close the listener and the pool."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_listener()
        if self._pool is not None:
            with contextlib.suppress(*DB_ERRORS):
                await asyncio.wait_for(self._pool.close(), timeout=5)
            self._pool = None

    def wake(self) -> None:
        """Check the data version now (a notification, or a request that saw an error)."""
        self._wake.set()

    def require(self) -> tuple[ReadStore, Snapshot]:
        """The store and snapshot, or :class:`Unavailable` while PostgreSQL is not answering."""
        if not self.available or self.store is None or self.snapshot is None:
            raise Unavailable
        return self.store, self.snapshot

    def lost(self, exc: BaseException) -> Unavailable:
        """Record that a query found PostgreSQL gone; the caller raises what this returns."""
        if self._outage_logged:
            log.debug("database still unavailable: %s", _reason(exc))
        else:
            log.warning("database unavailable: %s", _reason(exc))
            self._outage_logged = True
        self.available = False
        self.wake()
        return Unavailable()

    async def ping(self) -> bool:
        """Whether PostgreSQL answers now; brings the snapshot up to date when it does."""
        try:
            if self._pool is None:
                await self._connect()
            assert self.store is not None
            await self.store.ping(seconds=_CONNECT_TIMEOUT)
            if not self.available:
                await self.refresh()
        except DB_ERRORS as exc:
            self.lost(exc)
            return False
        return True

    # ------------------------------------------------------------------ keeping current

    async def refresh(self) -> None:
        """Reload the snapshot if the data version moved; mark the service available."""
        async with self._lock:
            if self.store is None:
                await self._connect()
            assert self.store is not None
            version = await self.store.version()
            if self.snapshot is None or version != self.snapshot.version:
                snapshot = await self.store.snapshot()
                self.snapshot = snapshot
                self.cache = ResponseCache(version=snapshot.version.key())
                self.reloads += 1
            self.available = True
            if self._outage_logged:
                log.info("database available again")
                self._outage_logged = False

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self._connect()
                await self._listen()
                await self.refresh()
            except DB_ERRORS as exc:
                self.lost(exc)
                self._wake.clear()
                await self._drop_listener()
            except Exception:
                # A bug must not stop the service from ever refreshing again.
                log.exception("refreshing the advisory snapshot failed")
            timeout = self._poll if self.available else self._retry
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            await asyncio.sleep(max(0.0, _MIN_REFRESH_GAP - (time.monotonic() - started)))

    async def _connect(self) -> None:
        if self._pool is None:
            self._pool = await asyncio.wait_for(
                create_pool(self._dsn, max_size=self._pool_size), timeout=_CONNECT_TIMEOUT * 2
            )
            self.store = ReadStore(self._pool)

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        conn = await asyncpg.connect(self._dsn, timeout=_CONNECT_TIMEOUT)
        await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        conn.add_termination_listener(self._terminated)
        self._listener = conn

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _terminated(self, *_: object) -> None:
        # The database went away (or the connection was cut): check at once.
        self._listener = None
        self._wake.set()

    async def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

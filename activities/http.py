"""HTTP access to the sources: one client per worker, polite by construction.

Identifies itself with a User-Agent carrying a contact URL, sends conditional
requests, follows redirects only within a source's allowed hosts, caps response
size and turns every failure into a :class:`~advisories.errors.FetchError`.
"""

from __future__ import annotations

import asyncio
import time
import urllib.robotparser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx

from advisories.errors import FetchError
from advisories.settings import Settings
from advisories.sources import get_source
from worker.telemetry import TracedTransport

_MAX_REDIRECTS = 5
#: How long a robots.txt answer is trusted.
ROBOTS_TTL_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A response worth keeping: 200 with a body, or 304 without one."""

    url: str
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    fetched_at: datetime
    requests_made: int

    @property
    def not_modified(self) -> bool:
        """True for a 304 answer to a conditional request."""
        return self.status == 304


class SourceHttpClient:
    """Fetches source documents with the project's manners."""

    def __init__(self, settings: Settings, *, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.http_timeout_seconds),
            headers={"User-Agent": settings.http_user_agent},
            follow_redirects=False,
            transport=TracedTransport(
                settings, limits=httpx.Limits(max_connections=50, max_keepalive_connections=20)
            ),
        )
        self._robots: dict[str, tuple[float, urllib.robotparser.RobotFileParser]] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def check_robots(
        self,
        source: str,
        url: str,
        *,
        take_budget: Callable[..., Awaitable[int | None]],
        record: Callable[[int | None, int | None], Awaitable[None]],
    ) -> None:
        """Raise if the source's robots.txt disallows ``url`` for our User-Agent.

        The robots.txt is fetched at most once a day per source and worker
        (taking rate-limit budget like any request; ``record`` gets the request id
        and the HTTP status, None when no answer came). A 4xx answer allows
        everything; a 5xx or network failure is a retryable failure (RFC 9309
        says to assume a complete disallow while the file is unreachable).
        """
        async with self._robots_locks.setdefault(source, asyncio.Lock()):
            cached = self._robots.get(source)
            if cached is None or time.monotonic() - cached[0] > ROBOTS_TTL_SECONDS:
                robots_url = self._settings.base_url(source) + "/robots.txt"
                request_id = await take_budget(source, kind="robots", url=robots_url)
                try:
                    parser, status = await self._fetch_robots(source, robots_url)
                except FetchError as exc:
                    await record(request_id, exc.status)
                    raise
                await record(request_id, status)
                cached = (time.monotonic(), parser)
                self._robots[source] = cached
        if not cached[1].can_fetch(self._settings.user_agent, url):
            raise FetchError(source, url, "robots", "disallowed by robots.txt")

    async def _fetch_robots(
        self, source: str, robots_url: str
    ) -> tuple[urllib.robotparser.RobotFileParser, int]:
        parser = urllib.robotparser.RobotFileParser(robots_url)
        try:
            response = await self._client.get(robots_url)
        except httpx.HTTPError as exc:
            raise FetchError(source, robots_url, "network", f"robots.txt: {exc}") from exc
        if response.status_code >= 500:
            raise FetchError(
                source,
                robots_url,
                "http_5xx",
                f"robots.txt: HTTP {response.status_code}",
                status=response.status_code,
            )
        if response.status_code >= 400:
            parser.parse([])  # no robots.txt: everything is allowed
        else:
            parser.parse(response.text[:500_000].splitlines())
        return parser, response.status_code

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._client.aclose()

    def _allowed_hosts(self, source: str) -> set[str]:
        hosts = set(get_source(source).allowed_hosts)
        configured = urlsplit(self._settings.base_url(source)).hostname
        if configured:
            hosts.add(configured)
        return hosts

    async def fetch(
        self,
        source: str,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """GET ``url`` for ``source``.

        Raises:
            FetchError: on network failure, a 4xx/5xx/429 answer, a redirect off
                the allowed hosts, or a body over the size cap.
        """
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        allowed = self._allowed_hosts(source)
        current = url
        for requests_made in range(1, _MAX_REDIRECTS + 2):
            host = urlsplit(current).hostname
            if host not in allowed:
                raise FetchError(source, current, "redirect", f"host {host!r} is not allowed")
            try:
                async with self._client.stream("GET", current, headers=headers) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    _raise_for_status(source, current, response)
                    body = (
                        b""
                        if response.status_code == 304
                        else await self._read(source, current, response)
                    )
                    return FetchResult(
                        url=current,
                        status=response.status_code,
                        body=body,
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                        fetched_at=datetime.now(UTC),
                        requests_made=requests_made,
                    )
            except httpx.HTTPError as exc:
                raise FetchError(
                    source, current, "network", f"{type(exc).__name__}: {exc}"
                ) from exc
        raise FetchError(source, url, "redirect", f"more than {_MAX_REDIRECTS} redirects")

    async def _read(self, source: str, url: str, response: httpx.Response) -> bytes:
        cap = self._settings.max_response_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise FetchError(source, url, "too_large", f"{declared} bytes > cap {cap}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise FetchError(source, url, "too_large", f"body exceeds cap {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _raise_for_status(source: str, url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    retry_after = _retry_after(response.headers.get("retry-after"))
    if (status in (429, 503) and retry_after is not None) or status == 429:
        raise FetchError(
            source, url, "rate_limited", f"HTTP {status}", status=status, retry_after=retry_after
        )
    kind = "http_5xx" if status >= 500 else "http_4xx"
    raise FetchError(source, url, kind, f"HTTP {status}", status=status, retry_after=retry_after)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())

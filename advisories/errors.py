"""Domain errors: a small hierarchy that carries data.

Activities turn these into ``ApplicationError(type=..., non_retryable=...)``.
"""

from __future__ import annotations

from typing import Final

from advisories.text import one_line

# Longest reason an error carries (on one line).
_REASON_LIMIT: Final = 400


class AdvisoryError(Exception):
    """Base class of every error this project raises on purpose."""


class UnknownSourceError(AdvisoryError, ValueError):
    """A source id that is not in the registry."""

    def __init__(self, source: str, valid: list[str]) -> None:
        self.source = source
        self.valid = valid
        super().__init__(f"unknown source {source!r}; valid sources: {', '.join(valid)}")


class ParseError(AdvisoryError):
    """A document that cannot be parsed: a malformed document, not a transient failure."""

    def __init__(self, source: str, url: str, reason: str) -> None:
        self.source = source
        self.url = url
        # One line, bounded: reasons often quote a library's multi-line message.
        self.reason = one_line(reason, limit=_REASON_LIMIT)
        super().__init__(f"{source}: cannot parse {url}: {self.reason}")


class ContractError(ParseError):
    """A document that parses but breaks what we rely on (e.g. an empty index)."""


class FetchError(AdvisoryError):
    """A request to a source that did not give us a usable document.

    Attributes:
        source: Source id.
        url: The URL requested.
        kind: ``network``, ``http_4xx``, ``http_5xx``, ``rate_limited``,
            ``too_large``, ``redirect`` or ``robots`` (disallowed by robots.txt).
        status: HTTP status, if a response arrived.
        retry_after: Seconds the server asked us to wait, if it said.
    """

    def __init__(
        self,
        source: str,
        url: str,
        kind: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.source = source
        self.url = url
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{source}: {kind} fetching {url}: {reason}")

    @property
    def retryable(self) -> bool:
        """Whether trying again later can help."""
        return self.kind in {"network", "http_5xx", "rate_limited"}

"""Retry arithmetic and failure classification (pure).

Temporal's retry policy has no jitter, so activities compute the next delay
here and hand it to ``ApplicationError(next_retry_delay=...)``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from advisories.errors import ContractError, FetchError, ParseError

#: Share of the delay added or removed at random (±20 %).
DEFAULT_JITTER: Final = 0.2


class FailureKind(StrEnum):
    """Why a scrape failed for good (the dead-letter queue's classification)."""

    NETWORK = "network"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    RATE_LIMITED = "rate_limited"
    PARSE = "parse"
    CONTRACT = "contract"
    INTERNAL = "internal"

    @property
    def recoverable(self) -> bool:
        """Whether requeueing later can help without a person (``process-dlq`` does these)."""
        return self in RECOVERABLE

    @property
    def retryable(self) -> bool:
        """Whether the activity retry policy should try again."""
        return self in RECOVERABLE or self is FailureKind.INTERNAL


RECOVERABLE: Final = frozenset(
    {FailureKind.NETWORK, FailureKind.HTTP_5XX, FailureKind.RATE_LIMITED}
)

_FETCH_KINDS: Final = {
    "network": FailureKind.NETWORK,
    "http_4xx": FailureKind.HTTP_4XX,
    "http_5xx": FailureKind.HTTP_5XX,
    "rate_limited": FailureKind.RATE_LIMITED,
    # A body over the cap or a redirect off the allowed hosts breaks what we
    # rely on from the source: a person has to look.
    "too_large": FailureKind.CONTRACT,
    "redirect": FailureKind.CONTRACT,
    "robots": FailureKind.CONTRACT,
}


def classify_failure(exc: BaseException) -> FailureKind:
    """The failure kind of an exception raised while scraping."""
    if isinstance(exc, ContractError):
        return FailureKind.CONTRACT
    if isinstance(exc, ParseError):
        return FailureKind.PARSE
    if isinstance(exc, FetchError):
        return _FETCH_KINDS.get(exc.kind, FailureKind.INTERNAL)
    return FailureKind.INTERNAL


def backoff_seconds(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    rand: float,
    jitter: float = DEFAULT_JITTER,
    retry_after: float | None = None,
) -> float:
    """Delay before the retry that follows failed attempt ``attempt`` (1-based).

    Exponential from ``initial`` (initial, 2×, 4× …) capped at ``maximum``,
    then spread by ±``jitter`` using ``rand`` (a uniform number in [0, 1)),
    never below what the server asked for in ``Retry-After``.

    Raises:
        ValueError: for an attempt below 1 or a ``rand`` outside [0, 1).
    """
    if attempt < 1:
        raise ValueError(f"attempt must be ≥ 1, got {attempt}")
    if not 0.0 <= rand < 1.0:
        raise ValueError(f"rand must be in [0, 1), got {rand}")
    base = min(initial * 2 ** (attempt - 1), maximum)
    delay = base * (1.0 + jitter * (2.0 * rand - 1.0))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay

"""Pure retry arithmetic, failure classification and change classification."""

from __future__ import annotations

import random

import pytest

from advisories.changes import ChangeKind, LevelState, classify_change
from advisories.errors import ContractError, FetchError, ParseError
from advisories.retry import FailureKind, backoff_seconds, classify_failure


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 60.0), (2, 120.0), (3, 240.0), (4, 480.0), (5, 600.0), (9, 600.0)]
)
def test_backoff_without_jitter_doubles_from_60_and_caps_at_600(
    attempt: int, expected: float
) -> None:
    assert backoff_seconds(attempt, initial=60, maximum=600, rand=0.5) == expected


def test_backoff_jitter_stays_within_twenty_percent_and_varies() -> None:
    rng = random.Random(7)
    delays = [backoff_seconds(2, initial=60, maximum=600, rand=rng.random()) for _ in range(500)]
    assert min(delays) >= 96.0 and max(delays) <= 144.0
    assert max(delays) - min(delays) > 40.0
    assert backoff_seconds(2, initial=60, maximum=600, rand=0.0) == pytest.approx(96.0)


def test_backoff_honours_retry_after_and_rejects_bad_input() -> None:
    assert backoff_seconds(1, initial=60, maximum=600, rand=0.5, retry_after=300) == 300
    assert backoff_seconds(1, initial=60, maximum=600, rand=0.5, retry_after=5) == 60
    with pytest.raises(ValueError, match="attempt"):
        backoff_seconds(0, initial=60, maximum=600, rand=0.5)
    with pytest.raises(ValueError, match="rand"):
        backoff_seconds(1, initial=60, maximum=600, rand=1.0)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ParseError("s", "u", "bad"), FailureKind.PARSE),
        (ContractError("s", "u", "empty"), FailureKind.CONTRACT),
        (FetchError("s", "u", "network", "reset"), FailureKind.NETWORK),
        (FetchError("s", "u", "http_5xx", "500", status=500), FailureKind.HTTP_5XX),
        (FetchError("s", "u", "http_4xx", "404", status=404), FailureKind.HTTP_4XX),
        (FetchError("s", "u", "rate_limited", "429", status=429), FailureKind.RATE_LIMITED),
        (FetchError("s", "u", "too_large", "big"), FailureKind.CONTRACT),
        (RuntimeError("boom"), FailureKind.INTERNAL),
    ],
)
def test_failure_classification(exc: Exception, kind: FailureKind) -> None:
    assert classify_failure(exc) is kind


def test_only_network_5xx_and_rate_limited_are_recoverable() -> None:
    assert {k for k in FailureKind if k.recoverable} == {
        FailureKind.NETWORK,
        FailureKind.HTTP_5XX,
        FailureKind.RATE_LIMITED,
    }
    assert not FailureKind.PARSE.retryable and FailureKind.INTERNAL.retryable


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        (None, LevelState(2, None), ChangeKind.NEW),
        (LevelState(2, None), LevelState(3, None), ChangeKind.RAISED),
        (LevelState(3, 4), LevelState(2, 4), ChangeKind.LOWERED),
        (LevelState(2, None), LevelState(2, 4), ChangeKind.REGIONAL),
        (LevelState(2, 4), LevelState(2, 3), ChangeKind.REGIONAL),
        (LevelState(2, 4), LevelState(2, 4), ChangeKind.TEXT),
        (LevelState(2, None), LevelState(2, None, withdrawn=True), ChangeKind.WITHDRAWN),
        (LevelState(2, None), LevelState(4, None, withdrawn=True), ChangeKind.WITHDRAWN),
        (LevelState(2, None, withdrawn=True), LevelState(2, None), ChangeKind.TEXT),
    ],
)
def test_change_classification(
    before: LevelState | None, after: LevelState, kind: ChangeKind
) -> None:
    assert classify_change(before, after) is kind


def test_notable_changes() -> None:
    assert {k for k in ChangeKind if k.notable} == {"raised", "lowered", "regional", "withdrawn"}

"""Health checks as pure functions of a metrics snapshot and thresholds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from advisories.health import (
    CHECKS,
    CheckName,
    CheckResult,
    HealthSettings,
    MetricsSnapshot,
    PollerMetrics,
    QueueMetrics,
    SourceMetrics,
    Thresholds,
    WorkerMetrics,
    evaluate,
    failing,
    poller_live,
)
from advisories.queues import ALL_QUEUES, MONITORING, REPORTING, SCRAPING
from advisories.schedule_spec import scrape_intervals

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TWO_HOURS = 7200.0


def iso(at: datetime) -> str:
    return at.isoformat()


def healthy_source(name: str = "us_state_dept", **changes: object) -> SourceMetrics:
    values: dict[str, object] = {
        "source": name,
        "interval_seconds": TWO_HOURS,
        "jobs_by_status": {"success": 10},
        "fetches_finished": 10,
        "fetches_succeeded": 10,
        "utilisation_percent": 12.5,
        "last_success_at": iso(NOW - timedelta(minutes=30)),
        "last_index_status": "success",
        "index_count_latest": 213,
        "index_count_previous": 213,
    }
    values.update(changes)
    return SourceMetrics(**values)  # type: ignore[arg-type]


def live_queue(name: str, **changes: object) -> QueueMetrics:
    pollers = [
        PollerMetrics("1@host", kind, iso(NOW - timedelta(seconds=5)), 5.0, True)
        for kind in ("workflow", "activity")
    ]
    values: dict[str, object] = {"queue": name, "pollers": pollers}
    values.update(changes)
    return QueueMetrics(**values)  # type: ignore[arg-type]


def snapshot(**changes: object) -> MetricsSnapshot:
    values: dict[str, object] = {
        "collected_at": iso(NOW),
        "hours": 6.0,
        "database_ok": True,
        "temporal_ok": True,
        "sources": [healthy_source()],
        "queues": [live_queue(q) for q in ALL_QUEUES],
        "workers": [],
    }
    values.update(changes)
    return MetricsSnapshot(**values)  # type: ignore[arg-type]


def by_key(results: list[CheckResult]) -> dict[str, CheckResult]:
    keys = [r.key for r in results]
    assert len(keys) == len(set(keys)), keys
    return {r.key: r for r in results}


def only(results: list[CheckResult], key: str) -> CheckResult:
    return by_key(results)[key]


def test_a_healthy_snapshot_passes_every_check_and_covers_each_subject() -> None:
    results = evaluate(snapshot(), Thresholds())
    assert failing(results) == []
    assert set(by_key(results)) == {
        "database",
        "temporal",
        "success_rate:us_state_dept",
        "index_fetch:us_state_dept",
        "freshness:us_state_dept",
        "index_canary:us_state_dept",
        "rate_limit_utilisation:us_state_dept",
        *(f"queue_backlog:{q}" for q in ALL_QUEUES),
        *(f"queue_workers:{q}" for q in ALL_QUEUES),
    }


def test_every_check_is_defined_as_data_with_a_real_threshold_field() -> None:
    assert set(CHECKS) == set(CheckName)
    fields = {f.name for f in dataclasses.fields(Thresholds)}
    for definition in CHECKS.values():
        assert definition.subject in {"system", "source", "queue", "worker"}
        assert definition.bad_when in {None, "below", "above"}
        assert definition.threshold_field is None or definition.threshold_field in fields


@pytest.mark.parametrize(
    ("succeeded", "finished", "ok", "value"),
    [(8, 10, True, 80.0), (7, 10, False, 70.0), (0, 12, False, 0.0), (79, 100, False, 79.0)],
)
def test_success_rate_fails_below_80_percent(
    succeeded: int, finished: int, ok: bool, value: float
) -> None:
    source = healthy_source(fetches_succeeded=succeeded, fetches_finished=finished)
    result = only(evaluate(snapshot(sources=[source]), Thresholds()), "success_rate:us_state_dept")
    assert (result.ok, result.value, result.threshold) == (ok, value, 80.0)
    assert f"{succeeded} of {finished}" in result.detail


def test_success_rate_without_enough_finished_fetches_is_not_judged() -> None:
    source = healthy_source(fetches_succeeded=0, fetches_finished=9)
    result = only(evaluate(snapshot(sources=[source]), Thresholds()), "success_rate:us_state_dept")
    assert result.ok and result.value == 0.0 and "9 finished fetches in 6 h" in result.detail
    lenient = Thresholds(success_min_jobs=3)
    result = only(evaluate(snapshot(sources=[source]), lenient), "success_rate:us_state_dept")
    assert not result.ok and result.value == 0.0
    empty = healthy_source(fetches_succeeded=0, fetches_finished=0)
    result = only(evaluate(snapshot(sources=[empty]), Thresholds()), "success_rate:us_state_dept")
    assert result.ok and result.value is None


@pytest.mark.parametrize(
    ("status", "ok"),
    [("success", True), ("failure", False), ("dead_letter", False), ("retry", False), (None, True)],
)
def test_index_fetch_fails_while_the_latest_one_failed(status: str | None, ok: bool) -> None:
    source = healthy_source(last_index_status=status, last_index_error="HTTP 503\nmore")
    result = only(evaluate(snapshot(sources=[source]), Thresholds()), "index_fetch:us_state_dept")
    assert result.ok is ok
    if not ok:
        assert result.detail == f"latest index fetch: {status}: HTTP 503 more"


@pytest.mark.parametrize(
    ("age", "interval", "ok"),
    [
        (timedelta(hours=3, minutes=59), TWO_HOURS, True),
        (timedelta(hours=4, minutes=1), TWO_HOURS, False),
        (timedelta(hours=23), 12 * 3600.0, True),
        (timedelta(hours=25), 12 * 3600.0, False),
    ],
)
def test_freshness_fails_past_twice_the_interval(age: timedelta, interval: float, ok: bool) -> None:
    source = healthy_source(interval_seconds=interval, last_success_at=iso(NOW - age))
    result = only(evaluate(snapshot(sources=[source]), Thresholds()), "freshness:us_state_dept")
    assert result.ok is ok
    assert result.threshold == 2 * interval / 3600
    assert result.value == round(age.total_seconds() / 3600, 2)


def test_a_source_never_fetched_successfully_is_not_fresh() -> None:
    source = healthy_source(last_success_at=None)
    result = only(evaluate(snapshot(sources=[source]), Thresholds()), "freshness:us_state_dept")
    assert not result.ok and result.value is None and "no successful" in result.detail


@pytest.mark.parametrize(
    ("latest", "previous", "ok", "threshold"),
    [
        (213, 213, True, 170.4),
        (171, 213, True, 170.4),
        (170, 213, False, 170.4),
        (20, 213, False, 170.4),
        (0, 213, False, None),
        (213, None, True, None),
        (None, None, True, None),
    ],
)
def test_index_canary_fails_when_the_index_suddenly_lists_far_fewer_countries(
    latest: int | None, previous: int | None, ok: bool, threshold: float | None
) -> None:
    source = healthy_source(index_count_latest=latest, index_count_previous=previous)
    result = only(evaluate(snapshot(sources=[source]), Thresholds()), "index_canary:us_state_dept")
    assert (result.ok, result.threshold) == (ok, threshold)


def test_index_canary_fails_on_an_open_contract_quarantine() -> None:
    source = healthy_source(index_contract_failure="us_state_dept: the index lists no countries")
    result = only(evaluate(snapshot(sources=[source]), Thresholds()), "index_canary:us_state_dept")
    assert not result.ok and result.value == 0
    assert result.detail == "index quarantined: us_state_dept: the index lists no countries"


@pytest.mark.parametrize(
    ("used", "enforced", "ok"),
    [(90.0, True, True), (90.1, True, False), (250.0, False, True), (None, True, True)],
)
def test_rate_limit_utilisation_fails_above_90_percent_when_enforced(
    used: float | None, enforced: bool, ok: bool
) -> None:
    source = healthy_source(utilisation_percent=used, rate_limit_enforced=enforced)
    results = evaluate(snapshot(sources=[source]), Thresholds())
    result = only(results, "rate_limit_utilisation:us_state_dept")
    assert result.ok is ok and result.value == used


def test_backlog_above_100_on_any_queue_fails() -> None:
    queues = [live_queue(q) for q in ALL_QUEUES]
    queues[1] = live_queue(ALL_QUEUES[1], workflow_backlog=60, activity_backlog=41)
    queues[2] = live_queue(ALL_QUEUES[2], workflow_backlog=50, activity_backlog=50)
    results = evaluate(snapshot(queues=queues), Thresholds())
    assert failing(results) == [f"queue_backlog:{ALL_QUEUES[1]}"]
    assert only(results, f"queue_backlog:{ALL_QUEUES[1]}").value == 101


def test_a_queue_needs_a_live_poller_of_both_task_types() -> None:
    recent, old = iso(NOW - timedelta(seconds=5)), iso(NOW - timedelta(minutes=3))
    only_workflows = live_queue(
        SCRAPING, pollers=[PollerMetrics("1@host", "workflow", recent, 5.0, True)]
    )
    stale = live_queue(
        MONITORING,
        pollers=[
            PollerMetrics("1@host", "workflow", old, 180.0, False),
            PollerMetrics("1@host", "activity", old, 180.0, False),
        ],
    )
    nobody = live_queue(REPORTING, pollers=[])
    results = evaluate(snapshot(queues=[only_workflows, stale, nobody]), Thresholds())
    assert failing(results) == [
        "queue_workers:monitoring",
        "queue_workers:reporting",
        "queue_workers:scraping",
    ]
    assert only(results, "queue_workers:reporting").detail == "no live worker polls this queue"
    assert only(results, "queue_workers:monitoring").value == 0


def test_a_queue_that_cannot_be_described_fails_with_the_reason() -> None:
    broken = QueueMetrics(queue=SCRAPING, error="RPCError: boom")
    results = by_key(evaluate(snapshot(queues=[broken]), Thresholds()))
    assert "queue_backlog:scraping" not in results
    assert not results["queue_workers:scraping"].ok
    assert "RPCError: boom" in results["queue_workers:scraping"].detail


def test_poller_liveness_is_judged_by_last_access_and_a_clean_stop() -> None:
    seen = NOW - timedelta(seconds=60)
    assert poller_live(seen, NOW, stale_seconds=90)
    assert not poller_live(seen, NOW, stale_seconds=59)
    assert not poller_live(seen, NOW, stale_seconds=90, stopped_at=seen + timedelta(seconds=1))
    # A process restarted under the same identity polls after its old stop.
    assert poller_live(seen, NOW, stale_seconds=90, stopped_at=seen - timedelta(seconds=1))


def test_worker_memory_fails_above_500_mb_for_live_workers_and_recent_jobs() -> None:
    seen = iso(NOW - timedelta(seconds=10))

    def worker(identity: str, rss: float, **changes: object) -> WorkerMetrics:
        values: dict[str, object] = {
            "identity": identity,
            "host": "h",
            "pid": 1,
            "queues": [SCRAPING],
            "rss_mb": rss,
            "peak_rss_mb": rss,
            "started_at": seen,
            "seen_at": seen,
            "age_seconds": 10.0,
        }
        values.update(changes)
        return WorkerMetrics(**values)  # type: ignore[arg-type]

    workers = [
        worker("1@a", 120.0),
        worker("2@b", 512.0),
        worker("3@c", 900.0, stopped_at=seen),  # stopped: not judged
        worker("4@d", 900.0, age_seconds=600.0),  # no heartbeat for 10 min: not judged
    ]
    sources = [healthy_source(recent_peak_rss_mb=480.0)]
    results = by_key(evaluate(snapshot(workers=workers, sources=sources), Thresholds()))
    memory = {k: (r.ok, r.value) for k, r in results.items() if k.startswith("worker_memory")}
    assert memory == {
        "worker_memory:1@a": (True, 120.0),
        "worker_memory:2@b": (False, 512.0),
        "worker_memory:jobs": (True, 480.0),
    }


def test_down_backends_speak_only_through_their_own_check() -> None:
    results = evaluate(
        snapshot(database_ok=False, database_error="OSError: refused", sources=[]),
        Thresholds(),
    )
    assert failing(results) == ["database"]
    assert only(results, "database").detail == "unreachable: OSError: refused"
    results = evaluate(snapshot(temporal_ok=False, temporal_error="gone", queues=[]), Thresholds())
    assert failing(results) == ["temporal"]
    assert not any(r.name.startswith("queue") for r in results)


def test_thresholds_are_configurable() -> None:
    source = healthy_source(fetches_succeeded=9, fetches_finished=10, utilisation_percent=50.0)
    strict = Thresholds(success_rate_min=95.0, rate_limit_utilisation_max=40.0, backlog_max=0)
    queue = live_queue(SCRAPING, activity_backlog=1)
    results = evaluate(snapshot(sources=[source], queues=[queue]), strict)
    assert failing(results) == [
        "queue_backlog:scraping",
        "rate_limit_utilisation:us_state_dept",
        "success_rate:us_state_dept",
    ]


def test_scrape_intervals_follow_an_interval_override_only() -> None:
    assert scrape_intervals()["us_state_dept"] == timedelta(hours=2).total_seconds()
    assert scrape_intervals({"scrape-us_state_dept": "30m"})["us_state_dept"] == 1800.0
    assert scrape_intervals({"scrape-us_state_dept": "0 * * * *"})["us_state_dept"] == 7200.0
    assert scrape_intervals({"scrape-us_state_dept": "30m"})["canada_travel"] == 43200.0


def test_health_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_URLS", '["https://hooks.example.org/T0K3N/abc"]')
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret-value")
    monkeypatch.setenv("HEALTH_SUCCESS_RATE_MIN", "95")
    monkeypatch.setenv("HEALTH_QUEUES", '["scraping", "monitoring"]')
    monkeypatch.setenv("ALERT_COOLDOWN_HOURS", "2")
    settings = HealthSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.webhook_urls == ["https://hooks.example.org/T0K3N/abc"]
    assert settings.thresholds().success_rate_min == 95.0
    assert settings.health_queues == [SCRAPING, MONITORING]
    assert settings.alert_cooldown == timedelta(hours=2)
    summary = repr(settings.safe_summary()) + repr(settings)
    assert "s3cret-value" not in summary and "T0K3N" not in summary


def test_health_settings_refuse_unsigned_webhooks_and_bad_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_URLS", '["https://hooks.example.org/x"]')
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        HealthSettings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("WEBHOOK_SECRET", "k")
    monkeypatch.setenv("WEBHOOK_URLS", '["ftp://files.example.org/T0K3N"]')
    with pytest.raises(ValidationError) as caught:
        HealthSettings(_env_file=None)  # type: ignore[call-arg]
    assert "not an http(s) URL" in str(caught.value) and "T0K3N" not in str(caught.value)

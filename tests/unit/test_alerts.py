"""Alert deduplication, webhook payloads and their HMAC signature (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from advisories.health import (
    Alert,
    CheckResult,
    Event,
    alert_message,
    change_message,
    encode_body,
    reconcile,
    redact_target,
    sign,
    signed_headers,
    target_key,
    verify,
)
from advisories.queues import MONITORING, SCRAPING

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
COOLDOWN = timedelta(hours=6)
BAD = CheckResult("queue_workers", False, 0, 1, "no live worker polls this queue", queue=SCRAPING)
GOOD = CheckResult("queue_workers", True, 1, 1, "live: 1@host", queue=SCRAPING)


def run(
    state: dict[str, Alert], results: list[CheckResult], at: datetime
) -> list[tuple[str, Event | None]]:
    """One health run: apply the decisions to ``state``; return (key, event) pairs."""
    decisions = reconcile(state, results, now=at, cooldown=COOLDOWN)
    for decision in decisions:
        state[decision.alert.key] = decision.alert
    return [(d.alert.key, d.event) for d in decisions]


def test_a_failing_check_fires_once_then_stays_quiet_within_the_cooldown() -> None:
    state: dict[str, Alert] = {}
    assert run(state, [BAD], T0) == [("queue_workers:scraping", Event.FIRING)]
    for minutes in (30, 60, 90, 359):
        assert run(state, [BAD], T0 + timedelta(minutes=minutes)) == [
            ("queue_workers:scraping", None)
        ]
    alert = state["queue_workers:scraping"]
    assert alert.firing and alert.notifications == 1
    assert alert.first_seen_at == T0 and alert.last_sent_at == T0
    assert alert.last_seen_at == T0 + timedelta(minutes=359)


def test_a_still_failing_check_reminds_after_the_cooldown() -> None:
    state: dict[str, Alert] = {}
    run(state, [BAD], T0)
    assert run(state, [BAD], T0 + COOLDOWN) == [("queue_workers:scraping", Event.REMINDER)]
    assert run(state, [BAD], T0 + COOLDOWN + timedelta(minutes=30)) == [
        ("queue_workers:scraping", None)
    ]
    alert = state["queue_workers:scraping"]
    assert (alert.notifications, alert.last_sent_at, alert.first_seen_at) == (2, T0 + COOLDOWN, T0)


def test_a_recovered_check_sends_resolved_once_and_can_fire_again() -> None:
    state: dict[str, Alert] = {}
    run(state, [BAD], T0)
    assert run(state, [GOOD], T0 + timedelta(minutes=30)) == [
        ("queue_workers:scraping", Event.RESOLVED)
    ]
    assert state["queue_workers:scraping"].resolved_at == T0 + timedelta(minutes=30)
    assert run(state, [GOOD], T0 + timedelta(minutes=60)) == []
    assert run(state, [BAD], T0 + timedelta(minutes=90)) == [
        ("queue_workers:scraping", Event.FIRING)
    ]
    again = state["queue_workers:scraping"]
    assert again.first_seen_at == T0 + timedelta(minutes=90) and again.notifications == 1


def test_healthy_checks_never_notify() -> None:
    state: dict[str, Alert] = {}
    assert run(state, [GOOD, CheckResult("database", True)], T0) == []
    assert state == {}


def test_a_vanished_subject_is_resolved_only_if_its_check_still_ran() -> None:
    worker_bad = CheckResult("worker_memory", False, 600.0, 500.0, worker="1@a")
    other_worker = CheckResult("worker_memory", True, 100.0, 500.0, worker="2@b")
    state: dict[str, Alert] = {}
    run(state, [worker_bad, BAD], T0)
    # Temporal down: no queue check ran, so the queue alert stays as it was;
    # the worker went away while memory was still checked: resolved.
    later = T0 + timedelta(minutes=30)
    assert run(state, [other_worker, CheckResult("temporal", False)], later) == [
        ("temporal", Event.FIRING),
        ("worker_memory:1@a", Event.RESOLVED),
    ]
    assert state["queue_workers:scraping"].firing


def test_each_alert_is_deduplicated_by_check_and_subject() -> None:
    other_queue = CheckResult("queue_workers", False, 0, 1, queue=MONITORING)
    state: dict[str, Alert] = {}
    assert run(state, [BAD, other_queue], T0) == [
        ("queue_workers:scraping", Event.FIRING),
        ("queue_workers:monitoring", Event.FIRING),
    ]


def test_alert_messages_carry_a_stable_delivery_id_and_the_check() -> None:
    state: dict[str, Alert] = {}
    [fired] = reconcile(state, [BAD], now=T0, cooldown=COOLDOWN)
    delivery_id, body = alert_message(fired)
    assert delivery_id == "alert:queue_workers:scraping:firing:2026-11-28T12:00:00+00:00"
    assert body["id"] == delivery_id
    assert (body["type"], body["event"], body["state"]) == ("alert", "firing", "firing")
    assert (body["queue"], body["value"], body["threshold"], body["unit"]) == (
        SCRAPING,
        0,
        1,
        "workers",
    )
    assert body["detail"] == "no live worker polls this queue"
    state[fired.alert.key] = fired.alert
    [resolved] = reconcile(state, [GOOD], now=T0 + timedelta(minutes=30), cooldown=COOLDOWN)
    resolved_id, resolved_body = alert_message(resolved)
    assert resolved_id != delivery_id and resolved_body["event"] == "resolved"
    assert resolved_body["first_seen_at"] == "2026-11-28T12:00:00+00:00"


def test_change_messages_are_identified_by_change_id() -> None:
    row = {
        "id": 42,
        "source": "uk_foreign_office",
        "country": "TR",
        "country_name": "Turkey",
        "kind": "raised",
        "level_before": 1,
        "level_after": 4,
        "regional_before": None,
        "regional_after": None,
        "title": "Turkey travel advice",
        "url": "https://www.gov.uk/foreign-travel-advice/turkey",
        "source_updated_at": datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
        "detected_at": datetime(2026, 11, 28, 9, 5, tzinfo=UTC),
    }
    delivery_id, body = change_message(row)
    assert delivery_id == "change:42"
    assert body["type"] == "change" and body["change_id"] == 42
    assert (body["kind"], body["level_before"], body["level_after"]) == ("raised", 1, 4)
    assert body["source_updated_at"] == "2026-11-28T09:00:00+00:00"
    assert json.loads(encode_body(body)) == body


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = encode_body({"b": 1, "a": "é"})
    assert body == '{"a":"é","b":1}'.encode()
    expected = hmac.new(b"k3y", b"1764331200." + body, hashlib.sha256).hexdigest()
    assert sign("k3y", 1764331200, body) == f"sha256={expected}"
    headers = signed_headers("k3y", body, timestamp=1764331200, delivery_id="change:1")
    assert headers == {
        "Content-Type": "application/json",
        "X-Webhook-Id": "change:1",
        "X-Signature-Timestamp": "1764331200",
        "X-Signature-SHA256": f"sha256={expected}",
    }


def test_verify_rejects_tampering_other_keys_and_replays() -> None:
    body = encode_body({"id": "change:1"})
    ts = 1764331200
    good = sign("k3y", ts, body)
    assert verify("k3y", body, timestamp=str(ts), signature=good, now=ts + 10)
    assert not verify("k3y", body + b" ", timestamp=str(ts), signature=good, now=ts)
    assert not verify("other", body, timestamp=str(ts), signature=good, now=ts)
    # The timestamp is signed: moving it forward to dodge the replay window breaks it.
    assert not verify("k3y", body, timestamp=str(ts + 600), signature=good, now=ts + 600)
    assert not verify("k3y", body, timestamp=str(ts), signature=good, now=ts + 301)
    assert not verify("k3y", body, timestamp=None, signature=good, now=ts)
    assert not verify("k3y", body, timestamp="soon", signature=good, now=ts)


def test_webhook_targets_are_redacted_to_scheme_host_and_port() -> None:
    url = "https://hooks.example.org:8443/services/T0K3N?key=S3CR3T"
    shown = redact_target(url)
    assert shown.startswith("https://hooks.example.org:8443/… (")
    assert "T0K3N" not in shown and "S3CR3T" not in shown
    assert target_key(url) == target_key(url) != target_key(url + "x")
    assert len(target_key(url)) == 16

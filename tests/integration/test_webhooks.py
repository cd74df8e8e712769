"""Signed alerts and change notifications received by a real local HTTP server.

The receiver is a ``ThreadingHTTPServer`` on 127.0.0.1 that checks nothing
itself: the tests verify each request's signature the way a receiver would.
Retries are Temporal's, against real HTTP 500s.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.health import CheckInput, DeliverInput, HealthActivities
from advisories.health import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from advisories.sources import source_ids
from replay.server import ReplayServer
from replay.synthetic import set_level
from store.pool import create_pool
from tests.conftest import make_settings
from tests.integration.health_helpers import health_settings, health_worker
from tests.integration.helpers import crawl, running_worker, unique
from workflows.monitoring import HealthInput, HealthSummary, HealthWorkflow

pytestmark = pytest.mark.integration
SECRET = "webhook-s3cret"


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    raw: bytes
    status: int
    at: float

    @property
    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw)
        return data

    def signed(self) -> bool:
        return verify(
            SECRET,
            self.raw,
            timestamp=self.headers.get(TIMESTAMP_HEADER),
            signature=self.headers.get(SIGNATURE_HEADER),
            now=int(time.time()),
        )


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST, answers from a plan (then 200)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._plan: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = receiver._plan.pop(0) if receiver._plan else 200
                    receiver.requests.append(
                        Received(dict(self.headers.items()), raw, status, time.monotonic())
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        # A path that stands for the token many webhook services put in their URLs.
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/T0K3N"

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with ``statuses``, then 200 again."""
        with self._lock:
            self._plan = list(statuses)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def names() -> tuple[str, str]:
    return unique("health"), f"{unique('worker')}@test"


async def test_alerts_are_signed_retried_sent_once_and_resolved(
    temporal_env: WorkflowEnvironment, database_url: str, receiver: Receiver
) -> None:
    client = temporal_env.client
    settings = make_settings(database_url=database_url)
    queue, identity = names()
    empty = f"{queue}-unpolled"
    health = health_settings(webhook_urls=[receiver.url], webhook_secret=SECRET)
    inp = HealthInput(
        queues=[queue, empty],
        delivery_initial_seconds=1.0,
        delivery_maximum_seconds=2.0,
        delivery_attempts=4,
    )
    runs = iter(range(100))

    async def check() -> HealthSummary:
        return await client.execute_workflow(
            HealthWorkflow.run, inp, id=f"test-alerts-{queue}-{next(runs)}", task_queue=queue
        )

    # A fresh database: no source was ever fetched, and nobody polls ``empty``.
    expected = [*(f"freshness:{s}" for s in source_ids()), f"queue_workers:{empty}"]
    alerts = len(expected)
    conn = await asyncpg.connect(database_url)
    try:
        async with health_worker(client, settings, health, queue=queue, identity=identity):
            receiver.answer(500, 500)
            first = await check()
            assert first.failing == expected
            assert (first.alerts_queued, first.delivered, first.delivery_error) == (
                alerts,
                alerts,
                None,
            )
            got = receiver.requests
            assert [r.status for r in got] == [500, 500] + [200] * alerts
            assert all(r.signed() for r in got)
            assert [r.body["alert"] for r in got[2:]] == expected
            assert {r.body["event"] for r in got} == {"firing"}
            # The same notification each time, after Temporal's growing backoff (1 s, 2 s).
            assert got[0].raw == got[1].raw == got[2].raw
            ids = {r.headers[ID_HEADER] for r in got[:3]}
            assert ids == {got[2].body["id"]}
            assert 0.8 <= got[1].at - got[0].at < got[2].at - got[1].at
            rows = await conn.fetch(
                "SELECT dedup_key, event, status, status_code, attempts, target"
                " FROM webhook_deliveries ORDER BY id"
            )
            assert [(r["dedup_key"], r["status"], r["attempts"]) for r in rows] == [
                (expected[0], "delivered", 3),
                *((key, "delivered", 1) for key in expected[1:]),
            ]
            assert all("T0K3N" not in r["target"] and r["status_code"] == 200 for r in rows)

            # Still failing half an hour later: nothing is sent again.
            second = await check()
            assert second.failing == expected
            assert (second.alerts_queued, second.delivered) == (0, 0)
            assert len(receiver.requests) == 2 + alerts

            # A worker polls the empty queue now: exactly one "resolved".
            _, other = names()
            async with health_worker(client, settings, health, queue=empty, identity=other):
                for _ in range(20):
                    third = await check()
                    if f"queue_workers:{empty}" not in third.failing:
                        break
            assert third.failing == expected[:-1] and third.alerts_queued == 1
            [resolved] = receiver.requests[2 + alerts :]
            assert resolved.signed()
            body = resolved.body
            assert (body["alert"], body["event"], body["state"]) == (
                f"queue_workers:{empty}",
                "resolved",
                "resolved",
            )
            assert (body["value"], body["threshold"]) == (1, 1)
        states = {
            r["dedup_key"]: r["state"]
            for r in await conn.fetch("SELECT dedup_key, state FROM alerts")
        }
        assert states == {**dict.fromkeys(expected[:-1], "firing"), expected[-1]: "resolved"}
    finally:
        await conn.close()


async def test_change_notifications_are_signed_and_sent_once_per_change(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    served: tuple[ReplayServer, Path],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, root = served
    client = temporal_env.client
    settings = make_settings(
        database_url=database_url, replay_base_url=server.base_url, rate_limits_enabled=False
    )
    queue, identity = names()
    health = health_settings(
        webhook_urls=[receiver.url], webhook_secret=SECRET, health_queues=[queue]
    )
    runs = iter(range(100))

    async def check() -> HealthSummary:
        return await client.execute_workflow(
            HealthWorkflow.run,
            HealthInput(),
            id=f"test-changes-{queue}-{next(runs)}",
            task_queue=queue,
        )

    caplog.set_level(logging.INFO, logger="activities.health")
    conn = await asyncpg.connect(database_url)
    try:
        async with (
            running_worker(client, settings),
            health_worker(client, settings, health, queue=queue, identity=identity),
        ):
            await crawl(client, settings, f"first-{queue}")
            first = await check()
            # Every country is new: nothing notable, and the system is healthy.
            assert (first.healthy, first.changes_queued, receiver.requests) == (True, 0, [])

            uk = await conn.fetchval(
                "SELECT country FROM advisories WHERE source = 'uk_foreign_office' AND level = 1"
                " ORDER BY country LIMIT 1"
            )
            canada = await conn.fetchval(
                "SELECT country FROM advisories WHERE source = 'canada_travel' AND level >= 2"
                " ORDER BY country LIMIT 1"
            )
            set_level(root, "uk_foreign_office", uk, 4)
            set_level(root, "canada_travel", canada, 1)
            await crawl(client, settings, f"second-{queue}")
            second = await check()
            assert (second.healthy, second.changes_queued, second.delivered) == (True, 2, 2)
            changes = await conn.fetch(
                "SELECT id, source, country, kind, level_before, level_after FROM changes"
                " WHERE kind IN ('raised', 'lowered') ORDER BY id"
            )
            got = receiver.requests
            assert len(got) == 2 and all(r.signed() and r.status == 200 for r in got)
            received = sorted(
                (
                    r.body["change_id"],
                    r.body["source"],
                    r.body["country"],
                    r.body["kind"],
                    r.body["level_before"],
                    r.body["level_after"],
                )
                for r in got
            )
            assert received == [tuple(c) for c in changes]
            assert {(c["source"], c["country"], c["kind"]) for c in changes} == {
                ("uk_foreign_office", uk, "raised"),
                ("canada_travel", canada, "lowered"),
            }
            assert {r.headers[ID_HEADER] for r in got} == {f"change:{c['id']}" for c in changes}
            assert all(r.body["type"] == "change" and r.body["title"] for r in got)

            # The next run finds nothing new: each change is sent once.
            third = await check()
            assert (third.changes_queued, len(receiver.requests)) == (0, 2)
            cursor = await conn.fetchval(
                "SELECT last_id FROM notification_cursors WHERE name = 'changes'"
            )
            assert cursor == max(c["id"] for c in changes)
    finally:
        await conn.close()
    logged = [r.getMessage() for r in caplog.records]
    assert any(f"uk_foreign_office {uk} raised" in m for m in logged), logged
    assert not any(SECRET in m or "T0K3N" in m for m in logged)


async def test_the_database_alert_is_carried_while_postgres_is_down(
    temporal_env: WorkflowEnvironment, database_url: str, receiver: Receiver
) -> None:
    settings = make_settings(database_url=database_url)
    health = health_settings(webhook_urls=[receiver.url], webhook_secret=SECRET)
    client = temporal_env.client
    down = HealthActivities(pool=None, client=client, settings=settings, health=health)

    async def check(activities: HealthActivities, run: str, carried: list[Any]) -> Any:
        snapshot = await activities.collect(queues=[])
        return await activities.check(CheckInput(snapshot=snapshot, run_id=run, carried=carried))

    first = await check(down, "down-1", [])
    assert (first.failing, first.stored) == (["database"], False)
    [message] = first.direct
    assert (message.event, message.dedup_key) == ("firing", "database")
    await down.deliver_webhooks(DeliverInput(direct=first.direct))
    assert [r.body["alert"] for r in receiver.requests] == ["database"]
    assert receiver.requests[0].signed()

    second = await check(down, "down-2", first.carried)
    assert (second.direct, second.carried) == ([], first.carried)

    pool = await create_pool(database_url)
    try:
        up = HealthActivities(pool=pool, client=client, settings=settings, health=health)
        back = await check(up, "up-1", second.carried)
        assert back.stored and back.carried == [] and "database" not in back.failing
        report = await up.deliver_webhooks(DeliverInput())
        # "resolved", and every source never fresh.
        assert report.delivered == back.queued == 1 + len(source_ids())
        first_after = receiver.requests[1].body
        assert (first_after["alert"], first_after["event"]) == ("database", "resolved")
        state = await pool.fetchval("SELECT state FROM alerts WHERE dedup_key = 'database'")
        assert state == "resolved"
    finally:
        await pool.close()

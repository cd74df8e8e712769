"""Traces of real scrape cycles, received over OTLP/HTTP on a local port.

The real dev server, PostgreSQL and the replay server; the project's workers
(``tests.integration.helpers.running_worker``: the worker process's pool, whose
``init`` hook gives SQL spans, and HTTP client, whose transport gives HTTP spans)
on a client carrying the tracing interceptor of ``worker.telemetry``; the spans
exported by ``setup_tracing``'s OTLP exporter to a tiny receiver in this process,
decoded with ``opentelemetry-proto``.

What the trees look like (temporalio 1.35 ``TracingInterceptor``):

* started by a traced client (what ``python -m starter schedule`` does)::

      StartWorkflow:ScrapeSourceWorkflow           root, in the caller's trace
      ├── RunWorkflow:ScrapeSourceWorkflow
      ├── StartActivity:fetch_index                (siblings: the SDK parents
      │   └── RunActivity:fetch_index               workflow-side spans to the
      │       ├── HTTP GET   .../robots.txt         workflow's incoming context)
      │       ├── HTTP GET   .../TAsTWs.xml  200 / 304
      │       └── SQL INSERT / SELECT / UPDATE ... one per statement
      ├── StartActivity:finish_cycle → RunActivity:finish_cycle → SQL ...
      └── CompleteWorkflow:ScrapeSourceWorkflow

* started by a Temporal schedule: the server starts the run, so there is no
  caller's span (the SDK has no span for creating or triggering a schedule, and
  a schedule's action carries no trace header). The stock interceptor would
  give such runs no workflow spans at all, or one separate trace per activity;
  ``WorkflowTracingInterceptor`` makes ``RunWorkflow`` the root of one trace
  whose id is the run id, with every other span of the run below it.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.types import ScrapeSourceResult
from advisories.settings import Settings
from advisories.sources import get_source
from replay.server import ReplayServer
from starter.schedules import scrape_input, scrape_schedule
from tests.integration.helpers import replay_settings, running_worker, unique
from worker.client import connect
from worker.telemetry import (
    client_interceptors,
    run_trace_id,
    setup_tracing,
    shutdown_tracing,
    traced_pool_init,
)
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration

SOURCE = "us_state_dept"
SPEC = get_source(SOURCE)


# ----------------------------------------------------------------------------- receiver


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived at the receiver."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    attributes: dict[str, Any] = field(hash=False)
    error: bool


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


class OtlpReceiver:
    """A minimal OTLP/HTTP (protobuf) trace receiver: ``POST /v1/traces`` on 127.0.0.1."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._add(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The value for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _add(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex() or None,
                            name=span.name,
                            service=str(resource.get("service.name")),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            error=span.status.code == span.status.STATUS_CODE_ERROR,
                        )
                    )
        with self._lock:
            self.spans.extend(received)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """Every span received for ``trace_id``."""
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def find(self, name: str | None = None, **attributes: Any) -> list[ReceivedSpan]:
        """Spans (called ``name``, if given) whose attributes include ``attributes``."""
        with self._lock:
            return [
                s
                for s in self.spans
                if name in (None, s.name)
                and all(s.attributes.get(k) == v for k, v in attributes.items())
            ]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tracer_provider(receiver: OtlpReceiver) -> Iterator[TracerProvider]:
    """The process-wide provider, exporting to ``receiver`` (set once per process)."""
    provider = setup_tracing(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}, service_name="advisory-test"
    )
    assert provider is not None
    try:
        yield provider
    finally:
        shutdown_tracing(provider)


# ----------------------------------------------------------------------------- wiring


@pytest.fixture
def settings(
    temporal_env: WorkflowEnvironment, database_url: str, replay_server: ReplayServer
) -> Settings:
    """Settings for crawling the real captures into the test's database, on the dev server."""
    return replay_settings(
        database_url,
        replay_server,
        temporal_address=temporal_env.client.service_client.config.target_host,
    )


@pytest.fixture
async def client(settings: Settings, tracer_provider: TracerProvider) -> Client:
    """A client built by the project's ``connect`` with the telemetry module's interceptors."""
    interceptors = client_interceptors()
    assert interceptors, "tracing is set up, so the client gets the interceptor"
    return await connect(settings, interceptors=interceptors)


def settle(provider: TracerProvider) -> None:
    assert provider.force_flush(10_000), "spans were not exported within 10 s"


# ----------------------------------------------------------------------------- tree checks


def children(spans: list[ReceivedSpan], parent: ReceivedSpan, name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_id == parent.span_id and s.name == name]


def one_child(spans: list[ReceivedSpan], parent: ReceivedSpan, name: str) -> ReceivedSpan:
    found = children(spans, parent, name)
    assert len(found) == 1, f"{parent.name} has {len(found)} {name} children"
    return found[0]


def assert_links_intact(spans: list[ReceivedSpan], root: ReceivedSpan) -> None:
    """One root; every other span's parent is in the same trace."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_id is None]
    assert roots == [root], [s.name for s in roots]
    orphans = [s.name for s in spans if s.parent_id is not None and s.parent_id not in ids]
    assert not orphans, f"spans whose parent is missing: {orphans}"


def assert_index_activity(
    spans: list[ReceivedSpan], run_activity: ReceivedSpan, settings: Settings, status: int
) -> None:
    """HTTP and SQL spans under ``RunActivity:fetch_index``."""
    http = children(spans, run_activity, "HTTP GET")
    index = [s for s in http if s.attributes["http.url"] == settings.index_url(SOURCE)]
    assert len(index) == 1, [s.attributes["http.url"] for s in http]
    attrs = index[0].attributes
    assert attrs["advisory.source"] == SOURCE
    assert attrs["http.status_code"] == status
    assert attrs["http.not_modified"] is (status == 304)
    if status == 200:
        assert attrs["http.response.body.size"] > 100_000  # the real feed
    else:
        assert attrs["http.response.body.size"] == 0
    assert not index[0].error

    sql = [s for s in spans if s.parent_id == run_activity.span_id and s.name.startswith("SQL ")]
    statements = [s.attributes["db.statement"] for s in sql]
    assert all(s.attributes["db.system"] == "postgresql" for s in sql)
    assert any("INSERT INTO scrape_jobs" in text for text in statements), statements
    assert any("source_documents" in text for text in statements), statements
    assert any("rate_limits" in text for text in statements), statements
    # The pool's own reset statement on release is not the application's SQL.
    assert not any("pg_advisory_unlock_all" in text for text in statements)


# ----------------------------------------------------------------------------- tests


async def test_client_started_cycle_is_one_trace_down_to_http_and_sql(
    settings: Settings,
    client: Client,
    tracer_provider: TracerProvider,
    receiver: OtlpReceiver,
) -> None:
    async with running_worker(client, settings):
        ids = []
        for _ in range(2):  # the second cycle gets a 304 for the index
            workflow_id = unique(f"scrape-{SOURCE}-trace")
            result: ScrapeSourceResult = await client.execute_workflow(
                ScrapeSourceWorkflow.run,
                scrape_input(SPEC, settings),
                id=workflow_id,
                task_queue=SPEC.priority.task_queue,
            )
            ids.append((workflow_id, result))
    settle(tracer_provider)

    for (workflow_id, result), status in zip(ids, (200, 304), strict=True):
        assert result.not_modified is (status == 304)
        (start,) = receiver.find(
            "StartWorkflow:ScrapeSourceWorkflow", temporalWorkflowID=workflow_id
        )
        spans = receiver.trace(start.trace_id)
        assert_links_intact(spans, start)
        assert {s.service for s in spans} == {"advisory-test"}

        run = one_child(spans, start, "RunWorkflow:ScrapeSourceWorkflow")
        assert run.attributes["temporalWorkflowID"] == workflow_id
        one_child(spans, start, "CompleteWorkflow:ScrapeSourceWorkflow")
        start_index = one_child(spans, start, "StartActivity:fetch_index")
        run_index = one_child(spans, start_index, "RunActivity:fetch_index")
        assert run_index.attributes["temporalWorkflowID"] == workflow_id
        assert_index_activity(spans, run_index, settings, status)

        start_finish = one_child(spans, start, "StartActivity:finish_cycle")
        run_finish = one_child(spans, start_finish, "RunActivity:finish_cycle")
        assert children(spans, run_finish, "SQL UPDATE"), "finish_cycle writes its job row"


async def test_scheduled_cycle_is_one_trace_rooted_at_its_run(
    settings: Settings,
    client: Client,
    tracer_provider: TracerProvider,
    receiver: OtlpReceiver,
) -> None:
    # The project's schedule under an id of this test's own, so that no other test
    # listing the runs of ``scrape-us_state_dept`` ever sees this one.
    schedule_id = unique(f"{SPEC.schedule_id}-trace")
    async with running_worker(client, settings):
        handle = await client.create_schedule(schedule_id, scrape_schedule(SPEC, settings))
        try:
            await handle.trigger()
            run_id = workflow_id = None
            for _ in range(300):
                query = f"TemporalScheduledById = '{schedule_id}'"
                async for wf in client.list_workflows(query):
                    workflow_id, run_id = wf.id, wf.run_id
                if run_id is not None:
                    break
                await asyncio.sleep(0.1)
            assert workflow_id is not None and run_id is not None, "the schedule started no run"
            result: ScrapeSourceResult = await client.get_workflow_handle(
                workflow_id, run_id=run_id, result_type=ScrapeSourceResult
            ).result()
            assert result.items_seen == 213
        finally:
            await handle.delete()
    settle(tracer_provider)

    # The action's workflow id, then the time the schedule fired.
    assert workflow_id.startswith(f"{SPEC.schedule_id}-")
    assert_run_rooted_trace(receiver, run_id, workflow_id, settings)


async def test_untraced_start_replayed_on_every_task_stays_one_trace(
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    client: Client,
    tracer_provider: TracerProvider,
    receiver: OtlpReceiver,
) -> None:
    """Like ``temporal workflow start``: no trace header; the worker keeps no cache."""
    # No workflow cache: every workflow task replays the run's history from the start.
    async with running_worker(client, settings, max_cached_workflows=0) as workers:
        assert {w.config(active_config=True)["max_cached_workflows"] for w in workers} == {0}
        handle = await temporal_env.client.start_workflow(  # a client without tracing
            ScrapeSourceWorkflow.run,
            scrape_input(SPEC, settings),
            id=unique(f"scrape-{SOURCE}-untraced"),
            task_queue=SPEC.priority.task_queue,
        )
        await handle.result()
    settle(tracer_provider)
    assert handle.result_run_id is not None
    assert_run_rooted_trace(receiver, handle.result_run_id, handle.id, settings)


def assert_run_rooted_trace(
    receiver: OtlpReceiver, run_id: str, workflow_id: str, settings: Settings
) -> None:
    """The run's own trace: its id is the run id, its root the run's RunWorkflow span."""
    trace_id = f"{run_trace_id(run_id):032x}"
    assert trace_id == uuid.UUID(run_id).hex
    spans = receiver.trace(trace_id)
    (run,) = [s for s in spans if s.name == "RunWorkflow:ScrapeSourceWorkflow"]
    assert run.parent_id is None
    assert run.attributes["temporalRunID"] == run_id
    assert run.attributes["temporalWorkflowID"] == workflow_id
    assert_links_intact(spans, run)
    assert not [s for s in spans if s.name.startswith("StartWorkflow:")]

    start_index = one_child(spans, run, "StartActivity:fetch_index")
    run_index = one_child(spans, start_index, "RunActivity:fetch_index")
    assert_index_activity(spans, run_index, settings, 200)
    one_child(
        spans, one_child(spans, run, "StartActivity:finish_cycle"), "RunActivity:finish_cycle"
    )
    one_child(spans, run, "CompleteWorkflow:ScrapeSourceWorkflow")
    # Nothing of this run went to another trace.
    elsewhere = [s.name for s in receiver.find(temporalRunID=run_id) if s.trace_id != trace_id]
    assert not elsewhere


async def test_a_pools_reset_statement_is_not_a_span(
    database_url: str, tracer_provider: TracerProvider, receiver: OtlpReceiver
) -> None:
    """``traced_pool_init`` on a pool with asyncpg's own reset (the worker's pool has none).

    asyncpg runs ``pg_advisory_unlock_all(); CLOSE ALL; ...`` on every release: the pool's
    housekeeping, not the application's SQL, so it gets no span.
    """
    marker = f"SELECT 'reset-{uuid.uuid4().hex}'"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=traced_pool_init())
    assert pool is not None
    try:
        for _ in range(2):
            async with pool.acquire() as conn:
                assert conn.get_reset_query(), "asyncpg's reset runs on release"
                await conn.fetchval(marker)
    finally:
        await pool.close()
    settle(tracer_provider)

    spans = receiver.find(**{"db.name": database_url.rsplit("/", 1)[1]})
    assert [s.attributes["db.statement"] for s in spans] == [marker, marker]

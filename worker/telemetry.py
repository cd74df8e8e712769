"""Observability of one process: traces over OTLP, metrics on a Prometheus endpoint.

* **Traces.** :func:`setup_tracing` installs an OpenTelemetry tracer provider that
  exports over OTLP/HTTP, but only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; :func:`client_interceptors`
  gives temporalio's ``TracingInterceptor`` (as :class:`WorkflowTracingInterceptor`,
  which also gives runs started by a schedule one trace each) for
  ``Client.connect``; it applies to the workers built on that client too. Every
  HTTP request gets a span from
  :class:`TracedTransport` (an httpx transport) and every SQL statement gets one
  from a query logger that :func:`traced_pool_init` adds to each pool connection,
  so no store method or request site needs its own span code.
* **Metrics.** :func:`runtime_with_prometheus` builds the Temporal ``Runtime`` whose
  Prometheus endpoint serves the SDK's metrics; the project's own counters and
  histograms (:data:`JOBS`, :data:`SOURCE_REQUESTS`, :data:`CHANGES`,
  :data:`DEAD_LETTERS`, :data:`RATE_LIMIT_WAIT_SECONDS`) are created on that
  runtime's metric meter, so one ``/metrics`` serves both.

Nothing here is needed for the project to run: without the environment
variables there is no exporter, no endpoint, and the metric facade is a no-op.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import asyncpg
import httpx
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode
from temporalio import workflow
from temporalio.client import Interceptor
from temporalio.common import MetricCounter, MetricHistogramFloat, MetricMeter
from temporalio.contrib.opentelemetry import (
    TracingInterceptor,
    TracingWorkflowInboundInterceptor,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from advisories.sources import SOURCES

if TYPE_CHECKING:
    from asyncpg.connection import LoggedQuery
    from temporalio.worker import WorkflowInterceptorClassInput

    from advisories.settings import Settings

__all__ = [
    "CHANGES",
    "DEAD_LETTERS",
    "JOBS",
    "METRICS_BIND_ADDRESS_ENV",
    "RATE_LIMIT_WAIT_SECONDS",
    "SOURCE_REQUESTS",
    "Counter",
    "Histogram",
    "HttpSpan",
    "TracedTransport",
    "WorkflowTracingInterceptor",
    "client_interceptors",
    "counter",
    "histogram",
    "http_span",
    "instrument_connection",
    "metrics_bind_address",
    "run_trace_id",
    "runtime_with_prometheus",
    "setup_tracing",
    "shutdown_tracing",
    "source_for_url",
    "traced_pool_init",
    "tracing_enabled",
]

#: Instrumentation scope of the project's own spans.
TRACER_NAME: Final = "advisories"
#: Environment variable naming the Prometheus endpoint's ``host:port``.
METRICS_BIND_ADDRESS_ENV: Final = "METRICS_BIND_ADDRESS"
#: Longest ``db.statement`` attribute kept (whitespace is collapsed first).
MAX_STATEMENT_CHARS: Final = 2000

_tracer = trace.get_tracer(TRACER_NAME)


# ----------------------------------------------------------------------------- tracing


def _traces_endpoint(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL the environment asks for, if any (OTel spec rules)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    signal = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if signal:
        return signal  # used as is
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        return base.rstrip("/") + "/v1/traces"
    return None


def setup_tracing(
    env: Mapping[str, str] | None = None,
    *,
    service_name: str,
    export_timeout_seconds: float | None = None,
) -> TracerProvider | None:
    """Export this process's spans over OTLP/HTTP when the environment asks for it.

    Reads the standard variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (e.g.
    ``http://jaeger:4318``; ``/v1/traces`` is appended) or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is), ``OTEL_SERVICE_NAME``
    (overrides ``service_name``), ``OTEL_SDK_DISABLED``. Other ``OTEL_EXPORTER_OTLP_*``
    settings (headers, timeout, compression) are read by the exporter itself from
    the process environment. They are not part of ``Settings``: they are the
    OpenTelemetry SDK's own, documented in one place for every OTel program.

    The provider becomes the global one, which is what ``TracingInterceptor``
    and the HTTP and SQL spans of this module use. Call it once, at the start of
    the process, before the client, pool and HTTP client are made.

    Args:
        env: Where to read the variables (default: ``os.environ``).
        service_name: ``service.name`` of the spans, e.g. ``advisory-worker``.
        export_timeout_seconds: Longest time one export may take, retries included
            (default: ``OTEL_EXPORTER_OTLP_TIMEOUT``, else 10 s). Short-lived
            processes such as the CLI give a small value, so that an unreachable
            collector delays their exit by no more than that.

    Returns:
        The provider (give it to :func:`shutdown_tracing` before exiting), or None
        when no endpoint is configured and nothing was set up.
    """
    env = os.environ if env is None else env
    endpoint = _traces_endpoint(env)
    if endpoint is None:
        return None
    # The exporter package is imported only by processes that export.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource, id_generator=_RunRootIds())
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=export_timeout_seconds)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Flush and stop ``provider`` (a no-op for None); call before the process exits."""
    if provider is not None:
        provider.shutdown()


def tracing_enabled() -> bool:
    """Whether a real (SDK) tracer provider is installed globally."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


# A run started without a caller's trace (by a schedule, the ``temporal`` CLI, another
# program) gets a root span of its own, with ids derived from its run id: the workflow
# side can recompute them at any time, even on replay, so every span of the run -
# activities started after a worker restart included - lands in that one trace.
_forced_ids: ContextVar[tuple[int, int] | None] = ContextVar("advisories_forced_ids", default=None)


def run_trace_id(run_id: str) -> int:
    """The trace id of a run that started without a caller's trace: the run id itself."""
    try:
        value = uuid.UUID(run_id).int
    except ValueError:
        value = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:16], "big")
    return value or 1


def _run_root_span_id(run_id: str) -> int:
    digest = hashlib.sha256(f"root span of {run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def _run_root_traceparent(run_id: str) -> str:
    return f"00-{run_trace_id(run_id):032x}-{_run_root_span_id(run_id):016x}-01"


class _RunRootIds(IdGenerator):
    """Random ids, except for the root span of a run started without a trace."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        forced = _forced_ids.get()
        return forced[1] if forced else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _forced_ids.get()
        return forced[0] if forced else self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return _forced_ids.get() is None


class _WorkflowInbound(TracingWorkflowInboundInterceptor):
    """Workflow side: a run without a trace header is parented to its own root span."""

    def _load_workflow_context_carrier(self) -> dict[str, Any] | None:
        carrier = super()._load_workflow_context_carrier()
        if carrier is None:
            carrier = {"traceparent": _run_root_traceparent(workflow.info().run_id)}
            self._workflow_context_carrier = carrier
        return carrier


class WorkflowTracingInterceptor(TracingInterceptor):
    """temporalio's ``TracingInterceptor``, plus one trace per run for scheduled runs.

    The stock interceptor creates workflow spans only under a client's span:
    runs that a Temporal schedule starts carry none, so they get no workflow
    spans at all, or (``always_create_workflow_spans``) a new, separate trace
    for every activity. Here such a run's ``RunWorkflow`` span is the root of a
    trace whose id is the run id, and all its other spans (``StartActivity``,
    ``RunActivity``, HTTP, SQL, child workflows) descend from it - also after a
    replay. Runs started by a traced client are unchanged: their spans stay in
    the caller's trace, under ``StartWorkflow``.
    """

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        """Register the span extern (as the parent class does); use the run-rooting class."""
        super().workflow_interceptor_class(input)
        return _WorkflowInbound

    def _completed_workflow_span(self, params: Any) -> dict[str, Any] | None:
        run_id = (params.attributes or {}).get("temporalRunID")
        if (
            isinstance(run_id, str)
            and params.name.startswith("RunWorkflow:")
            and params.context.get("traceparent") == _run_root_traceparent(run_id)
        ):
            # Create the run's root span itself, with the ids the workflow side expects.
            token = _forced_ids.set((run_trace_id(run_id), _run_root_span_id(run_id)))
            try:
                carrier: dict[str, Any] | None = super()._completed_workflow_span(
                    dataclasses.replace(params, context={})
                )
                return carrier
            finally:
                _forced_ids.reset(token)
        result: dict[str, Any] | None = super()._completed_workflow_span(params)
        return result


def client_interceptors() -> list[Interceptor]:
    """Interceptors for ``Client.connect``: tracing when a provider is installed, else none.

    The interceptor on the client also instruments every worker built on that
    client: StartWorkflow (client) → RunWorkflow, StartActivity → RunActivity →
    HTTP and SQL spans (see :class:`WorkflowTracingInterceptor`).
    """
    if not tracing_enabled():
        return []
    return [WorkflowTracingInterceptor()]


# ----------------------------------------------------------------------------- metrics

_meter: MetricMeter = MetricMeter.noop
_meter_lock = threading.Lock()

#: Histogram buckets of the project's histograms (seconds), by metric name.
_BUCKETS: dict[str, list[float]] = {
    "advisory_rate_limit_wait_seconds": [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
}


def metrics_bind_address(env: Mapping[str, str] | None = None) -> str | None:
    """``METRICS_BIND_ADDRESS`` (``host:port``) or None when unset or empty."""
    env = os.environ if env is None else env
    return env.get(METRICS_BIND_ADDRESS_ENV, "").strip() or None


def runtime_with_prometheus(bind_address: str | None) -> Runtime:
    """The Temporal runtime of this process, serving ``/metrics`` on ``bind_address``.

    The SDK's metrics (``temporal_*``, durations in seconds, counters ending in
    ``_total``) and the project's (``advisory_*``, from this module's facade) are
    served by the same endpoint. Create it once per process and pass it to every
    ``Client.connect(runtime=...)``.

    Args:
        bind_address: ``host:port`` such as ``127.0.0.1:9464`` (``0.0.0.0:9464``
            in a container), or None for no endpoint (the default runtime).

    Raises:
        RuntimeError: with a one-line reason when the endpoint cannot be bound.
    """
    global _meter
    if bind_address is None:
        return Runtime.default()
    config = PrometheusConfig(
        bind_address=bind_address,
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides=_BUCKETS,
    )
    try:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=config))
    except ValueError as exc:  # e.g. "Address already in use"
        raise RuntimeError(f"cannot serve metrics on {bind_address}: {exc}") from exc
    with _meter_lock:
        _meter = runtime.metric_meter
    return runtime


class _Instrument:
    """One named metric with a fixed set of label names, bound lazily to the meter."""

    def __init__(self, name: str, description: str, labels: tuple[str, ...]) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"invalid metric name {name!r}")
        self.name = name
        self.description = description
        self.labels = labels
        self._bound: tuple[MetricMeter, Any] | None = None

    def _attributes(self, labels: Mapping[str, str | int] | None) -> dict[str, str | int]:
        given = dict(labels or {})
        if set(given) != set(self.labels):
            raise ValueError(
                f"{self.name} takes labels {', '.join(self.labels) or '(none)'};"
                f" got {', '.join(sorted(given)) or '(none)'}"
            )
        return {key: str(value) for key, value in given.items()}

    def _instrument(self) -> Any:
        meter = _meter
        bound = self._bound
        if bound is None or bound[0] is not meter:
            bound = (meter, self._create(meter))
            self._bound = bound
        return bound[1]

    def _create(self, meter: MetricMeter) -> Any:
        raise NotImplementedError


class Counter(_Instrument):
    """A monotonically increasing count (Prometheus: ``<name>_total``)."""

    def _create(self, meter: MetricMeter) -> MetricCounter:
        return meter.create_counter(self.name, self.description)

    def add(self, value: int = 1, labels: Mapping[str, str | int] | None = None) -> None:
        """Add ``value`` (≥ 0) to the series of ``labels`` (exactly the declared names).

        Raises:
            ValueError: for a negative value or labels other than the declared ones.
        """
        if value < 0:
            raise ValueError(f"{self.name}: a counter cannot go down ({value})")
        attributes = self._attributes(labels)
        if value:
            self._instrument().add(value, attributes)


class Histogram(_Instrument):
    """A distribution of float observations (Prometheus buckets, ``_sum``, ``_count``)."""

    def _create(self, meter: MetricMeter) -> MetricHistogramFloat:
        return meter.create_histogram_float(self.name, self.description)

    def record(self, value: float, labels: Mapping[str, str | int] | None = None) -> None:
        """Record one observation for the series of ``labels``.

        Raises:
            ValueError: for a negative value or labels other than the declared ones.
        """
        if value < 0:
            raise ValueError(f"{self.name}: negative observation {value}")
        self._instrument().record(float(value), self._attributes(labels))


_registry: dict[str, _Instrument] = {}


def _register(instrument: _Instrument) -> Any:
    existing = _registry.setdefault(instrument.name, instrument)
    if type(existing) is not type(instrument) or existing.labels != instrument.labels:
        raise ValueError(f"metric {instrument.name} is already defined differently")
    return existing


def counter(name: str, *, description: str = "", labels: tuple[str, ...] = ()) -> Counter:
    """The project counter ``name`` (one object per name; labels fixed at first use)."""
    result: Counter = _register(Counter(name, description, labels))
    return result


def histogram(name: str, *, description: str = "", labels: tuple[str, ...] = ()) -> Histogram:
    """The project histogram ``name`` (one object per name; labels fixed at first use)."""
    result: Histogram = _register(Histogram(name, description, labels))
    return result


#: Scrape jobs reaching a status: ``source``, ``kind`` (cycle, index, country), ``status``.
JOBS: Final = counter(
    "advisory_jobs",
    description="Scrape jobs that reached a status",
    labels=("source", "kind", "status"),
)
#: Requests sent to a source: ``source`` (``unknown`` for a URL of no source),
#: ``status`` (HTTP status code, or ``error`` when no response came).
SOURCE_REQUESTS: Final = counter(
    "advisory_source_requests",
    description="HTTP requests sent to a source, by response status",
    labels=("source", "status"),
)
#: Advisory changes detected: ``source``, ``kind`` (new, raised, lowered, regional, ...).
CHANGES: Final = counter(
    "advisory_changes",
    description="Advisory changes detected",
    labels=("source", "kind"),
)
#: Dead letters opened: ``source``, ``kind`` (failure kind).
DEAD_LETTERS: Final = counter(
    "advisory_dead_letters",
    description="Jobs quarantined as dead letters",
    labels=("source", "kind"),
)
#: Seconds a request had to wait for rate-limit budget: ``source``.
RATE_LIMIT_WAIT_SECONDS: Final = histogram(
    "advisory_rate_limit_wait_seconds",
    description="Waits for rate-limit budget before a request to a source",
    labels=("source",),
)


# ----------------------------------------------------------------------------- HTTP spans


class HttpSpan:
    """The span of one HTTP request to a source, and its count in :data:`SOURCE_REQUESTS`.

    Attributes set: ``advisory.source``, ``http.request.method``, ``http.url``,
    ``server.address``, then ``http.status_code``, ``http.not_modified`` and, when
    the body has been read or closed, ``http.response.body.size`` (bytes on the wire).
    """

    def __init__(self, source: str | None, url: str, method: str = "GET") -> None:
        self.source = source or "unknown"
        self.status: int | None = None
        self._ended = False
        attributes: dict[str, str | int] = {
            "advisory.source": self.source,
            "http.request.method": method,
            "http.url": url,
        }
        host = urlsplit(url).hostname
        if host:
            attributes["server.address"] = host
        self.span = _tracer.start_span(
            f"HTTP {method}", kind=SpanKind.CLIENT, attributes=attributes
        )

    def response(self, status: int) -> None:
        """The response's status line arrived."""
        self.status = status
        self.span.set_attribute("http.status_code", status)
        self.span.set_attribute("http.not_modified", status == 304)
        if status >= 400:
            self.span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))

    def failed(self, exc: BaseException) -> None:
        """No response (network error, timeout); ends the span."""
        self.span.record_exception(exc)
        self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.end()

    def end(self, body_size: int | None = None) -> None:
        """End the span (once) and count the request."""
        if self._ended:
            return
        self._ended = True
        if body_size is not None:
            self.span.set_attribute("http.response.body.size", body_size)
        self.span.end()
        status = "error" if self.status is None else str(self.status)
        SOURCE_REQUESTS.add(1, {"source": self.source, "status": status})


@contextlib.contextmanager
def http_span(source: str, url: str, *, method: str = "GET") -> Iterator[HttpSpan]:
    """A span around one request made by hand (``TracedTransport`` does this for httpx).

    Call ``.response(status)`` when the status is known and ``.end(body_size)``
    when the body is read; leaving the block ends the span in any case, and an
    exception escaping it marks the span as failed.
    """
    span = HttpSpan(source, url, method)
    try:
        yield span
    except BaseException as exc:
        span.failed(exc)
        raise
    finally:
        span.end()


def source_for_url(settings: Settings, url: str) -> str | None:
    """The id of the source a URL belongs to: its configured origin, else its hosts.

    The longest matching configured base URL wins (replay servers put every
    source on one host under ``/<source id>``); otherwise the source whose
    ``allowed_hosts`` contain the host.
    """
    best: tuple[int, str] | None = None
    for source in SOURCES:
        base = settings.base_url(source)
        if (url == base or url.startswith(base + "/")) and (best is None or len(base) > best[0]):
            best = (len(base), source)
    if best is not None:
        return best[1]
    host = urlsplit(url).hostname
    for spec in SOURCES.values():
        if host in spec.allowed_hosts:
            return spec.id
    return None


class _CountingStream(httpx.AsyncByteStream):
    """A response body that counts its bytes and ends the request's span when closed."""

    def __init__(self, inner: httpx.AsyncByteStream, span: HttpSpan) -> None:
        self._inner = inner
        self._span = span
        self._size = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                self._size += len(chunk)
                yield chunk
        except Exception as exc:
            self._span.failed(exc)
            raise

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._span.end(self._size)


class TracedTransport(httpx.AsyncBaseTransport):
    """An httpx transport giving every request a span and a count, redirect hops included.

    The span is a child of whatever span is current (the ``RunActivity`` span in
    a worker) and lasts until the response body is closed. The source is the
    request extension ``advisory.source`` when given, else :func:`source_for_url`.
    No trace context is sent to the sources.
    """

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        limits: httpx.Limits | None = None,
    ) -> None:
        """Wrap ``transport`` (default: ``httpx.AsyncHTTPTransport(limits=limits)``).

        With a custom transport httpx ignores the client's own ``limits``, so
        connection limits are given here.
        """
        self._settings = settings
        self._transport = transport or httpx.AsyncHTTPTransport(
            limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the wrapped transport inside a span."""
        url = str(request.url)
        source = request.extensions.get("advisory.source") or source_for_url(self._settings, url)
        span = HttpSpan(source, url, request.method)
        try:
            response = await self._transport.handle_async_request(request)
        except BaseException as exc:
            span.failed(exc)
            raise
        span.response(response.status_code)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CountingStream(response.stream, span),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close the wrapped transport's connections."""
        await self._transport.aclose()


# ----------------------------------------------------------------------------- SQL spans

#: Reset statements the pool runs on every release: not the application's SQL.
_reset_queries: set[str] = set()
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class _Statement:
    text: str
    operation: str


def _statement(query: str) -> _Statement:
    text = _WHITESPACE.sub(" ", query).strip()
    if len(text) > MAX_STATEMENT_CHARS:
        text = text[: MAX_STATEMENT_CHARS - 1] + "…"
    operation = text.split(" ", 1)[0].upper() if text else "SQL"
    return _Statement(text, operation)


def _on_query(record: LoggedQuery) -> None:
    """asyncpg query logger: one finished span per statement.

    asyncpg calls it with ``loop.call_soon`` from the task that ran the
    statement, so the current span is that task's (the activity's) span.
    """
    if record.query in _reset_queries:
        return
    end = time.time_ns()
    statement = _statement(record.query)
    attributes: dict[str, str | int] = {
        "db.system": "postgresql",
        "db.statement": statement.text,
        "db.operation": statement.operation,
        "db.name": record.conn_params.database,
    }
    if isinstance(record.conn_addr, tuple):
        attributes["server.address"] = str(record.conn_addr[0])
        attributes["server.port"] = int(record.conn_addr[1])
    span = _tracer.start_span(
        f"SQL {statement.operation}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=end - int(record.elapsed * 1e9),
    )
    if record.exception is not None:
        span.record_exception(record.exception)
        span.set_status(
            Status(StatusCode.ERROR, f"{type(record.exception).__name__}: {record.exception}")
        )
    span.end(end_time=end)


def instrument_connection(conn: asyncpg.Connection) -> None:
    """Give every statement run on ``conn`` a span (only while tracing is enabled).

    Covers ``execute``, ``executemany``, ``fetch*`` and transactions' ``BEGIN`` /
    ``COMMIT``; a failed statement's span records the error. Registering twice
    is harmless.
    """
    if not tracing_enabled():
        return
    _reset_queries.add(conn.get_reset_query())
    conn.add_query_logger(_on_query)


def traced_pool_init(
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> Callable[[asyncpg.Connection], Coroutine[Any, Any, None]]:
    """An ``asyncpg.create_pool(init=...)`` hook: ``init`` (codecs...) then SQL spans."""

    async def traced_init(conn: asyncpg.Connection) -> None:
        if init is not None:
            await init(conn)
        instrument_connection(conn)

    return traced_init

"""The read-only advisory API: ``create_app(settings)`` builds the FastAPI application.

Endpoints (JSON by default, CSV with ``?format=csv`` or ``Accept: text/csv``):

========================================  ====================================================
``GET /v1/sources``                       each source: schedule, freshness, dead letters, health
``GET /v1/advisories``                    current advisories (``source``, ``country``,
                                          ``min_level``, ``changed_since``), without their
                                          summaries unless ``include=summary``
``GET /v1/countries/{iso}``               a country across every source, strictest, spread,
                                          disagreement
``GET /v1/countries/{iso}/history``       every version per source with its change kind
``GET /v1/changes``                       classified changes, newest first, cursor-paginated
``GET /v1/changes.atom``                  the same as an Atom 1.0 feed
``GET /healthz``                          200 when PostgreSQL answers, else 503
``GET /openapi.json``                     the OpenAPI document of all of the above
========================================  ====================================================

Every response carries a strong ETag computed from its body, ``Cache-Control``,
``Last-Modified`` from the data and ``Vary: Accept``. A response is built once per data
version and kept in memory (see :mod:`api.service`); repeated requests, and conditional
ones answered 304, are served by :class:`CachedResponses` before routing, without
PostgreSQL. Every error is one line of JSON, ``{"error": "..."}``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from advisories.errors import UnknownSourceError
from advisories.health import HealthSettings, check_freshness
from advisories.schedule_spec import scrape_intervals
from advisories.settings import Settings, get_settings
from advisories.sources import SOURCES, get_source, source_ids
from api.http import (
    ATOM,
    CSV,
    CURSOR_PATTERN,
    JSON,
    NOSNIFF,
    AtomEntry,
    CsvTable,
    Prepared,
    atom_feed,
    csv_body,
    decode_cursor,
    encode_cursor,
    fresh,
    json_body,
    negotiate,
)
from api.models import (
    AdvisoriesOut,
    ChangeKindName,
    ChangesOut,
    CountryOut,
    ErrorOut,
    FreshnessOut,
    HealthCheckOut,
    HealthzOut,
    HistoryOut,
    ScheduleOut,
    SourceOut,
    SourcesOut,
)
from api.service import DB_ERRORS, Service, Unavailable
from api.views import (
    CountryCodeError,
    UnknownCountryError,
    advisories_table,
    advisory_out,
    advisory_with_summary_out,
    change_out,
    changes_table,
    country_name,
    country_table,
    country_view,
    filter_advisories,
    history_table,
    latest_of,
    resolve_country,
    sources_table,
    version_out,
)
from store.read import ReadStore, Snapshot

__all__ = ["app_from_environment", "create_app"]

log = logging.getLogger(__name__)

#: Seconds a client is told to wait when PostgreSQL is unreachable.
RETRY_AFTER: Final = 5
#: How long a ``/v1/sources`` body is reused: it reads job rows, which move all the time.
SOURCES_TTL: Final = 5.0
#: Window of the sources' success rates.
SUCCESS_WINDOW: Final = timedelta(hours=24)
#: Page size bounds of ``/v1/changes``.
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 500
#: Atom entry ids: a tag URI (RFC 4151) per change id, the same forever.
TAG_PREFIX: Final = "tag:travel-advisory-scheduler,2026:"
API_DIR: Final = Path(__file__).resolve().parent
STATIC_DIR: Final = API_DIR / "static"

Format = Literal["json", "csv"]
_CODE_PATTERN: Final = r"^([A-Za-z]{2,3}|[A-Za-z]{2}-[A-Za-z0-9]{1,3})$"
_UNAVAILABLE_BODY: Final = json_body({"error": "database unavailable; retry later"})
# What the time filters accept, exactly as the OpenAPI document declares it (a date, or an
# RFC 3339 date-time with its offset): no Unix timestamps, no local times.
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME_RE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
_TIME_SCHEMA: Final = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
    "examples": ["2026-11-01", "2026-11-01T00:00:00Z"],
}


# Parameters several endpoints share (module level: FastAPI resolves them by name).
FmtQuery = Annotated[
    Format | None,
    Query(description="Representation (default: JSON, or CSV for Accept: text/csv)"),
]
SourceQuery = Annotated[
    str | None,
    Query(description="Only this source", json_schema_extra={"enum": source_ids()}),
]
IsoPath = Annotated[
    str,
    PathParam(
        description="ISO 3166-1 alpha-2 or alpha-3 (any case), or ISO 3166-2 (PT-20)",
        pattern=_CODE_PATTERN,
        examples=["FR"],
    ),
]

KindQuery = Annotated[
    ChangeKindName | None,
    Query(description="Only changes of this kind"),
]
SinceQuery = Annotated[
    str | None,
    Query(
        description="Only changes detected at or after this date (UTC midnight) or time",
        json_schema_extra=_TIME_SCHEMA,
    ),
]
CountryQuery = Annotated[
    str | None,
    Query(description="Only this country (alpha-2, alpha-3 or ISO 3166-2)", pattern=_CODE_PATTERN),
]
CursorQuery = Annotated[
    str | None, Query(description="next_cursor of the previous page", pattern=CURSOR_PATTERN)
]


class ApiError(Exception):
    """A 4xx answer: its status and one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- request keys


def request_key(scope: Scope) -> tuple[str, str, str, str]:
    """What identifies a response in the cache: path, query, negotiated format, host."""
    accept = host = ""
    for name, value in scope["headers"]:
        if name == b"accept":
            accept = value.decode("latin-1")
        elif name == b"host":
            host = value.decode("latin-1")
    return (
        scope["path"],
        scope["query_string"].decode("latin-1"),
        negotiate(None, accept),
        host,
    )


def _negotiation(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """The request's ``If-None-Match``, ``If-Modified-Since`` and ``Accept-Encoding``."""
    if_none_match = if_modified_since = accept_encoding = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"if-modified-since":
            if_modified_since = value.decode("latin-1")
        elif name == b"accept-encoding":
            accept_encoding = value.decode("latin-1")
    return if_none_match, if_modified_since, accept_encoding


async def _send(send: Send, scope: Scope, prepared: Prepared) -> None:
    """Send ``prepared`` for the request of ``scope``: gzipped if taken, 304 if current."""
    if_none_match, if_modified_since, accept_encoding = _negotiation(scope)
    prepared = prepared.select(accept_encoding)
    if fresh(prepared, if_none_match=if_none_match, if_modified_since=if_modified_since):
        await send(
            {
                "type": "http.response.start",
                "status": 304,
                "headers": prepared.headers(with_body=False),
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    await send(
        {
            "type": "http.response.start",
            "status": prepared.status,
            "headers": prepared.headers(with_body=True),
        }
    )
    await send({"type": "http.response.body", "body": prepared.body})


async def _send_unavailable(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", JSON.encode()),
                (b"content-length", str(len(_UNAVAILABLE_BODY)).encode()),
                (b"retry-after", str(RETRY_AFTER).encode()),
                (b"cache-control", b"no-store"),
                (NOSNIFF[0].lower().encode(), NOSNIFF[1].encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAVAILABLE_BODY})


def _without_body(send: Send) -> Send:
    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only


class CachedResponses:
    """ASGI middleware: ``/v1`` responses already built for this data version, and 304s.

    This is the hot path: a dictionary lookup and two ASGI messages, no routing, no
    validation, no PostgreSQL. Everything else passes through to the application.
    """

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            # HEAD is GET without the body (RFC 9110 9.3.2), headers and all.
            scope = {**scope, "method": "GET"}
            send = _without_body(send)
        elif scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if not self.service.available:
            await _send_unavailable(send)
            return
        prepared = self.service.cache.get(request_key(scope))
        if prepared is None or (prepared.expires_at and prepared.expires_at < time.monotonic()):
            await self.app(scope, receive, send)
            return
        await _send(send, scope, prepared)


class PreparedResponse(Response):
    """A :class:`Prepared` as a Starlette response (with its 304 when the client has it)."""

    def __init__(self, prepared: Prepared) -> None:
        super().__init__()
        self.prepared = prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send(send, scope, self.prepared)


# --------------------------------------------------------------------------- building bodies


def _prepare(
    fmt: str,
    model: Any,
    table: Callable[[], CsvTable],
    *,
    last_modified: datetime | None,
    extra_headers: dict[str, str] | None = None,
) -> Prepared:
    if fmt == "csv":
        return Prepared.build(
            csv_body(table()), CSV, last_modified=last_modified, extra_headers=extra_headers
        )
    return Prepared.build(
        json_body(model.model_dump(mode="json")),
        JSON,
        last_modified=last_modified,
        extra_headers=extra_headers,
    )


def _source_filter(source: str | None) -> list[str] | None:
    if source is None:
        return None
    try:
        get_source(source)
    except UnknownSourceError as exc:
        raise ApiError(422, str(exc)) from None
    return [source]


def _country_filter(country: str | None) -> str | None:
    if country is None:
        return None
    try:
        return resolve_country(country)
    except CountryCodeError as exc:
        raise ApiError(422, f"query parameter 'country': {exc}") from None
    except UnknownCountryError as exc:
        # Well-formed but no country: the same 404 as the country's own path.
        raise ApiError(404, f"query parameter 'country': {exc}") from None


def _country_path(iso: str) -> str:
    try:
        return resolve_country(iso)
    except CountryCodeError as exc:
        raise ApiError(422, str(exc)) from None
    except UnknownCountryError as exc:
        raise ApiError(404, str(exc)) from None


def _parse_time(text: str | None, name: str) -> datetime | None:
    """A time filter's value as an aware UTC time: a date is its UTC midnight.

    Beyond the range of ``datetime`` in UTC (year 1 at +14:00) the value is clamped: every
    stored change is after the one and before the other, which is what the filter means.
    """
    if text is None:
        return None
    try:
        if _DATE_RE.fullmatch(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        if _DATE_TIME_RE.fullmatch(text):
            normal = text.upper()
            if normal[17:19] == "60":  # a leap second (RFC 3339): the second before
                normal = normal[:17] + "59" + normal[19:]
            moment = datetime.fromisoformat(normal)
            try:
                return moment.astimezone(UTC)
            except OverflowError:
                low = moment.year == 1
                return (datetime.min if low else datetime.max).replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(422, f"query parameter {name!r}: {text!r} is not a valid date") from None
    raise ApiError(
        422,
        f"query parameter {name!r}: expected a date (2026-11-01) or an RFC 3339 date-time"
        " with an offset (2026-11-01T00:00:00Z)",
    )


def _publishers() -> dict[str, str]:
    return {s.id: s.name for s in SOURCES.values()}


def _no_country(code: str) -> ApiError:
    return ApiError(404, f"no source has an advisory for {code} ({country_name(code)})")


# --------------------------------------------------------------------------- the application


def create_app(settings: Settings | None = None) -> FastAPI:
    """The advisory API on ``settings``' database (the process settings by default)."""
    settings = settings or get_settings()
    service = Service(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        poll_seconds=settings.api_poll_seconds,
    )
    health = HealthSettings()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Travel advisories",
        version="1",
        description="Every government's travel advisory for every country, on one 1–4 scale,"
        " with the classified history of changes. Read-only.",
        docs_url=None,  # FastAPI's docs pages load their scripts from a CDN
        redoc_url=None,
        openapi_url=None,  # served below, with an ETag like every other resource
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings  # the dashboard's pages read the same configuration
    _install_errors(app)

    async def cached(
        request: Request, build: Callable[[ReadStore, Snapshot], Awaitable[Prepared]]
    ) -> PreparedResponse:
        """The response for ``request``: from the cache, or built and kept for this version."""
        cache = service.cache
        key = request_key(request.scope)
        prepared = cache.get(key)
        if prepared is None or (prepared.expires_at and prepared.expires_at < time.monotonic()):
            store, snapshot = service.require()
            try:
                prepared = await build(store, snapshot)
            except DB_ERRORS as exc:
                raise service.lost(exc) from exc
            cache.put(key, prepared)
        return PreparedResponse(prepared)

    responses = _responses(csv=True)

    @app.get(
        "/v1/sources",
        response_model=SourcesOut,
        responses=responses,
        summary="Every source: schedule, freshness, dead letters, health",
    )
    async def sources(request: Request, format: FmtQuery = None) -> Response:
        fmt = negotiate(format, request.headers.get("accept"))

        async def build(store: ReadStore, snapshot: Snapshot) -> Prepared:
            out = await _sources_out(store, snapshot, settings, health)
            prepared = _prepare(
                fmt,
                out,
                lambda: sources_table(out.sources),
                last_modified=latest_of(s.last_success_at for s in out.sources),
            )
            return prepared.expiring(SOURCES_TTL)

        return await cached(request, build)

    @app.get(
        "/v1/advisories",
        response_model=AdvisoriesOut,
        responses=_responses(csv=True, not_found=True),
        summary="Current advisories",
    )
    async def advisories(
        request: Request,
        source: SourceQuery = None,
        country: CountryQuery = None,
        min_level: Annotated[int | None, Query(ge=1, le=4, description="Level at least")] = None,
        changed_since: Annotated[
            str | None,
            Query(
                description="Only advisories whose current version was stored at or after"
                " this date (UTC midnight) or time",
                json_schema_extra=_TIME_SCHEMA,
            ),
        ] = None,
        include: Annotated[
            Literal["summary"] | None,
            Query(
                description="summary: each row with the advisory's summary (the full list is"
                " about eight times larger with them; /v1/countries/{iso} always has them)"
            ),
        ] = None,
        format: FmtQuery = None,
    ) -> Response:
        fmt = negotiate(format, request.headers.get("accept"))
        sources_wanted = _source_filter(source)
        code = _country_filter(country)
        since = _parse_time(changed_since, "changed_since")

        async def build(_: ReadStore, snapshot: Snapshot) -> Prepared:
            rows = filter_advisories(
                snapshot.advisories,
                sources=sources_wanted,
                country=code,
                min_level=min_level,
                changed_since=since,
            )
            rows.sort(key=lambda r: (r.source, r.country))
            with_summary = include == "summary"
            # Summaries are ~90 % of the full list's bytes: only when asked for.
            out = AdvisoriesOut(
                advisories=[advisory_with_summary_out(r) for r in rows]
                if with_summary
                else [advisory_out(r) for r in rows]
            )
            return _prepare(
                fmt,
                out,
                lambda: advisories_table(out.advisories, summary=with_summary),
                last_modified=latest_of(r.last_checked_at for r in rows)
                or snapshot.version.last_checked_at,
            )

        return await cached(request, build)

    @app.get(
        "/v1/countries/{iso}",
        response_model=CountryOut,
        responses=_responses(csv=True, not_found=True),
        summary="A country across every source",
    )
    async def country(request: Request, iso: IsoPath, format: FmtQuery = None) -> Response:
        fmt = negotiate(format, request.headers.get("accept"))
        code = _country_path(iso)

        async def build(_: ReadStore, snapshot: Snapshot) -> Prepared:
            rows = [r for r in snapshot.advisories if r.country == code]
            if not rows:
                raise _no_country(code)
            view = country_view(code, rows, publishers=_publishers())
            return _prepare(
                fmt,
                view,
                lambda: country_table(view),
                last_modified=latest_of(r.last_checked_at for r in rows),
            )

        return await cached(request, build)

    @app.get(
        "/v1/countries/{iso}/history",
        response_model=HistoryOut,
        responses=_responses(csv=True, not_found=True),
        summary="Every version of a country's advisory per source, oldest first",
    )
    async def history(request: Request, iso: IsoPath, format: FmtQuery = None) -> Response:
        fmt = negotiate(format, request.headers.get("accept"))
        code = _country_path(iso)

        async def build(store: ReadStore, snapshot: Snapshot) -> Prepared:
            rows = await store.history(code)
            if not rows:
                raise _no_country(code)
            versions = [version_out(r) for r in rows]
            current = [r for r in snapshot.advisories if r.country == code]
            out = HistoryOut(country=code, name=country_name(code, current), versions=versions)
            return _prepare(
                fmt,
                out,
                lambda: history_table(code, versions),
                last_modified=latest_of(r.stored_at for r in rows),
            )

        return await cached(request, build)

    async def change_page(
        store: ReadStore,
        *,
        cursor: str | None,
        since: str | None,
        kind: str | None,
        source: str | None,
        country: str | None,
        limit: int,
    ) -> tuple[list[Any], str | None]:
        try:
            before = None if cursor is None else decode_cursor(cursor)
        except ValueError as exc:
            raise ApiError(422, f"query parameter 'cursor': {exc}") from None
        rows = await store.changes(
            before_id=before,
            since=_parse_time(since, "since"),
            kinds=None if kind is None else [kind],
            sources=_source_filter(source),
            country=_country_filter(country),
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id) if more and rows else None

    @app.get(
        "/v1/changes",
        response_model=ChangesOut,
        responses=_responses(csv=True, not_found=True, link=True),
        summary="Classified changes, newest first (keyset-paginated)",
    )
    async def changes(
        request: Request,
        since: SinceQuery = None,
        kind: KindQuery = None,
        source: SourceQuery = None,
        country: CountryQuery = None,
        cursor: CursorQuery = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        format: FmtQuery = None,
    ) -> Response:
        fmt = negotiate(format, request.headers.get("accept"))

        async def build(store: ReadStore, _: Snapshot) -> Prepared:
            rows, next_cursor = await change_page(
                store,
                cursor=cursor,
                since=since,
                kind=kind,
                source=source,
                country=country,
                limit=limit,
            )
            next_url = None
            if next_cursor is not None:
                params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
                next_url = f"/v1/changes?{urlencode([*params, ('cursor', next_cursor)])}"
            items = [change_out(r) for r in rows]
            out = ChangesOut(changes=items, next_cursor=next_cursor, next=next_url)
            return _prepare(
                fmt,
                out,
                lambda: changes_table(items),
                last_modified=latest_of(r.detected_at for r in rows),
                extra_headers={"Link": f'<{next_url}>; rel="next"'} if next_url else None,
            )

        return await cached(request, build)

    @app.get(
        "/v1/changes.atom",
        response_class=Response,
        responses={
            200: {
                "description": "An Atom 1.0 feed of the changes, newest first",
                "content": {"application/atom+xml": {"schema": {"type": "string"}}},
            },
            **_responses(csv=False, not_found=True, ok=False),
        },
        summary="Classified changes as an Atom feed",
    )
    async def changes_atom(
        request: Request,
        since: SinceQuery = None,
        kind: KindQuery = None,
        source: SourceQuery = None,
        country: CountryQuery = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Response:
        async def build(store: ReadStore, snapshot: Snapshot) -> Prepared:
            rows, _ = await change_page(
                store,
                cursor=None,
                since=since,
                kind=kind,
                source=source,
                country=country,
                limit=limit,
            )
            base = str(request.base_url).rstrip("/")
            publishers = _publishers()
            entries = [
                AtomEntry(
                    id=f"{TAG_PREFIX}change:{r.id}",
                    title=f"{r.country_name}: {publishers.get(r.source, r.source)} {r.kind}"
                    f" (level {r.level_before or '-'} → {r.level_after})",
                    updated=r.detected_at,
                    link=f"{base}/countries/{r.country}",
                    summary=r.title,
                    category=r.kind,
                )
                for r in rows
            ]
            updated = latest_of(r.detected_at for r in rows) or snapshot.version.last_checked_at
            body = atom_feed(
                feed_id=f"{TAG_PREFIX}changes",
                title="Travel advisory changes",
                self_url=str(request.url),
                updated=updated or datetime(1970, 1, 1, tzinfo=UTC),
                entries=entries,
            )
            return Prepared.build(body, ATOM, last_modified=latest_of(r.detected_at for r in rows))

        return await cached(request, build)

    @app.get(
        "/healthz",
        response_model=HealthzOut,
        responses={503: _unavailable_response()},
        summary="Whether PostgreSQL answers",
    )
    async def healthz() -> Response:
        if not await service.ping():
            raise Unavailable
        body = HealthzOut(status="ok", database=True)
        return Response(
            json_body(body.model_dump(mode="json")),
            media_type=JSON,
            headers={"Cache-Control": "no-store", NOSNIFF[0]: NOSNIFF[1]},
        )

    # The document never changes within a process: built once, on the first request (every
    # route is registered by then), then answered like any prepared response, 304s included.
    openapi_document: list[Prepared] = []

    @app.api_route("/openapi.json", methods=["GET", "HEAD"], include_in_schema=False)
    async def openapi_json() -> Response:
        if not openapi_document:
            body = json_body(app.openapi())
            openapi_document.append(Prepared.build(body, JSON, last_modified=None))
        return PreparedResponse(openapi_document[0])

    _include_dashboard(app)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    # Outermost of the application's own middleware: cache hits skip routing entirely.
    app.add_middleware(CachedResponses, service=service)
    return app


def app_from_environment() -> FastAPI:
    """``create_app`` on the environment's settings (uvicorn's factory for ``--workers``)."""
    return create_app(get_settings())


# --------------------------------------------------------------------------- sources


async def _sources_out(
    store: ReadStore, snapshot: Snapshot, settings: Settings, health: HealthSettings
) -> SourcesOut:
    from starter.schedules import scrape_schedule  # imports Temporal's client: only here

    intervals = scrape_intervals(settings.schedule_overrides)
    now, metrics, checks = await store.source_metrics(window=SUCCESS_WINDOW, intervals=intervals)
    thresholds = health.thresholds()
    counts: dict[str, int] = {}
    for row in snapshot.advisories:
        counts[row.source] = counts.get(row.source, 0) + 1
    out = []
    for source_id in source_ids():
        spec = get_source(source_id)
        m = metrics[source_id]
        fresh = check_freshness(m, thresholds, now=now)
        spec_schedule = scrape_schedule(spec, settings).spec
        every = spec_schedule.intervals[0].every if spec_schedule.intervals else None
        last = datetime.fromisoformat(m.last_success_at) if m.last_success_at else None
        out.append(
            SourceOut(
                id=spec.id,
                name=spec.name,
                priority=spec.priority.value,
                task_queue=spec.priority.task_queue,
                schedule=ScheduleOut(
                    schedule_id=spec.schedule_id,
                    every_seconds=None if every is None else every.total_seconds(),
                    cron=spec_schedule.cron_expressions[0]
                    if spec_schedule.cron_expressions
                    else None,
                    jitter_seconds=(spec_schedule.jitter or timedelta()).total_seconds(),
                ),
                last_success_at=last,
                freshness=FreshnessOut(
                    age_seconds=None if last is None else round((now - last).total_seconds(), 1),
                    limit_seconds=round(thresholds.freshness_factor * m.interval_seconds, 1),
                    stale=not fresh.ok,
                ),
                dead_letters_open=m.dead_letters_open,
                advisories=counts.get(source_id, 0),
                success_rate_24h=m.success_rate,
                fetches_finished_24h=m.fetches_finished,
                health=[
                    HealthCheckOut(
                        name=c.name,
                        ok=c.ok,
                        value=c.value,
                        threshold=c.threshold,
                        detail=c.detail,
                        checked_at=c.checked_at,
                    )
                    for c in checks
                    if c.source == source_id
                ],
            )
        )
    return SourcesOut(sources=out)


# --------------------------------------------------------------------------- errors and schema


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json_body({"error": message}),
        status_code=status,
        media_type=JSON,
        headers={"Cache-Control": "no-store", NOSNIFF[0]: NOSNIFF[1], **(headers or {})},
    )


#: What a parameter that misses its pattern is, in words (the pattern says it to a machine).
_PATTERN_MESSAGES: Final = {
    "iso": "invalid country code {value!r}: use ISO 3166-1 alpha-2 or alpha-3 (FR, FRA)"
    " or an ISO 3166-2 code (PT-20)",
    "country": "invalid country code {value!r}: use ISO 3166-1 alpha-2 or alpha-3 (FR, FRA)"
    " or an ISO 3166-2 code (PT-20)",
    "cursor": "invalid cursor: pass the next_cursor of a previous page",
}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(p) for p in err.get("loc", ())]
        where = f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1 else "request"
        message = err.get("msg", "invalid")
        if err.get("type") == "string_pattern_mismatch" and loc and loc[-1] in _PATTERN_MESSAGES:
            message = _PATTERN_MESSAGES[loc[-1]].format(value=err.get("input"))
        parts.append(f"{where}: {message}")
    return " ".join("; ".join(parts).split())


def _api_path(path: str) -> bool:
    """Whether ``path`` is the API's (JSON errors), not one of the dashboard's pages."""
    return path.startswith("/v1/") or path in ("/healthz", "/openapi.json")


def _install_errors(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.message)

    async def unavailable(request: Request, _: Exception) -> Response:
        # A dashboard page is read by a person in a browser: an HTML page, not JSON.
        page = getattr(request.app.state, "unavailable_page", None)
        if page is not None and not _api_path(request.url.path):
            response: Response = page(RETRY_AFTER)
            return response
        return _error(503, "database unavailable; retry later", {"Retry-After": str(RETRY_AFTER)})

    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _error(422, _validation_message(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"not found: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        else:
            message = " ".join(str(exc.detail).split())
        return _error(exc.status_code, message, dict(exc.headers or {}))

    async def internal(_: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return _error(500, "internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal)


def _error_response(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


def _unavailable_response() -> dict[str, Any]:
    return {
        "model": ErrorOut,
        "description": "PostgreSQL is unreachable; retry after the given seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }


def _responses(
    *, csv: bool, not_found: bool = False, link: bool = False, ok: bool = True
) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    if ok:
        ok_response: dict[str, Any] = {
            "headers": {
                "ETag": {"schema": {"type": "string"}},
                "Last-Modified": {"schema": {"type": "string"}},
            }
        }
        if csv:
            ok_response["content"] = {"text/csv": {"schema": {"type": "string"}}}
        if link:
            ok_response["headers"]["Link"] = {"schema": {"type": "string"}}
        out[200] = ok_response
    out[304] = {
        "description": "Not modified: the If-None-Match ETag (or If-Modified-Since) is current"
    }
    if not_found:
        out[404] = _error_response("Unknown country code, or no source covers the country")
    out[422] = _error_response("Invalid parameter")
    out[503] = _unavailable_response()
    return out


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The generated document with query parameters' ``anyOf [X, null]`` read as ``X``.

    A query parameter is either absent or a string; FastAPI spells an optional one as
    "X or null", which no request can send.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for param in operation.get("parameters", []):
                    spec = param.get("schema", {})
                    options = spec.get("anyOf")
                    if isinstance(options, list) and {"type": "null"} in options:
                        rest = [o for o in options if o != {"type": "null"}]
                        if len(rest) == 1:
                            del spec["anyOf"]
                            spec.update({**rest[0], **spec})
        app.openapi_schema = schema
        return schema

    return openapi


def _include_dashboard(app: FastAPI) -> None:
    """The dashboard's pages and static files, when they are installed."""
    try:
        dashboard = importlib.import_module("api.dashboard")
    except ModuleNotFoundError as exc:
        if exc.name != "api.dashboard":
            raise
    else:
        app.include_router(dashboard.router)
        app.state.unavailable_page = dashboard.unavailable_page
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

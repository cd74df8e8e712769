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
ones answered 304, are served by :class:`api.responses.CachedResponses` before routing,
without PostgreSQL. Every error is one line of JSON, ``{"error": "..."}`` (see
:mod:`api.errors`); bodies are built by :mod:`api.bodies` and :mod:`api.sources`.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final, Literal
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from advisories.health import HealthSettings
from advisories.settings import Settings, get_settings
from advisories.sources import source_ids
from api.bodies import (
    change_page,
    country_filter,
    country_path,
    no_country,
    parse_time,
    prepare,
    publisher_names,
    source_filter,
)
from api.errors import (
    install_errors,
    openapi_responses,
    openapi_without_nulls,
    unavailable_response,
)
from api.http import (
    ATOM,
    CURSOR_PATTERN,
    JSON,
    NOSNIFF,
    AtomEntry,
    Prepared,
    atom_feed,
    json_body,
    negotiate,
)
from api.models import (
    AdvisoriesOut,
    ChangeKindName,
    ChangesOut,
    CountryOut,
    HealthzOut,
    HistoryOut,
    SourcesOut,
)
from api.responses import CachedResponses, PreparedResponse, request_key
from api.service import DB_ERRORS, Service, Unavailable
from api.sources import sources_out
from api.views import (
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
    sources_table,
    version_out,
)
from store.read import ReadStore, Snapshot

__all__ = ["app_from_environment", "create_app"]

#: How long a ``/v1/sources`` body is reused: it reads job rows, which move all the time.
SOURCES_TTL: Final = 5.0
#: Page size bounds of ``/v1/changes``.
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 500
#: Atom entry ids: a tag URI (RFC 4151) per change id, the same forever.
TAG_PREFIX: Final = "tag:travel-advisory-scheduler,2026:"
API_DIR: Final = Path(__file__).resolve().parent
STATIC_DIR: Final = API_DIR / "static"

Format = Literal["json", "csv"]
_CODE_PATTERN: Final = r"^([A-Za-z]{2,3}|[A-Za-z]{2}-[A-Za-z0-9]{1,3})$"
# The time filters' values as the OpenAPI document declares them: exactly what
# :func:`api.bodies.parse_time` accepts.
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
    install_errors(app)

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

    responses = openapi_responses(csv=True)

    @app.get(
        "/v1/sources",
        response_model=SourcesOut,
        responses=responses,
        summary="Every source: schedule, freshness, dead letters, health",
    )
    async def sources(request: Request, format: FmtQuery = None) -> Response:
        fmt = negotiate(format, request.headers.get("accept"))

        async def build(store: ReadStore, snapshot: Snapshot) -> Prepared:
            out = await sources_out(store, snapshot, settings, health)
            prepared = prepare(
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
        responses=openapi_responses(csv=True, not_found=True),
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
        sources_wanted = source_filter(source)
        code = country_filter(country)
        since = parse_time(changed_since, "changed_since")

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
            return prepare(
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
        responses=openapi_responses(csv=True, not_found=True),
        summary="A country across every source",
    )
    async def country(request: Request, iso: IsoPath, format: FmtQuery = None) -> Response:
        fmt = negotiate(format, request.headers.get("accept"))
        code = country_path(iso)

        async def build(_: ReadStore, snapshot: Snapshot) -> Prepared:
            rows = [r for r in snapshot.advisories if r.country == code]
            if not rows:
                raise no_country(code)
            view = country_view(code, rows, publishers=publisher_names())
            return prepare(
                fmt,
                view,
                lambda: country_table(view),
                last_modified=latest_of(r.last_checked_at for r in rows),
            )

        return await cached(request, build)

    @app.get(
        "/v1/countries/{iso}/history",
        response_model=HistoryOut,
        responses=openapi_responses(csv=True, not_found=True),
        summary="Every version of a country's advisory per source, oldest first",
    )
    async def history(request: Request, iso: IsoPath, format: FmtQuery = None) -> Response:
        fmt = negotiate(format, request.headers.get("accept"))
        code = country_path(iso)

        async def build(store: ReadStore, snapshot: Snapshot) -> Prepared:
            rows = await store.history(code)
            if not rows:
                raise no_country(code)
            versions = [version_out(r) for r in rows]
            current = [r for r in snapshot.advisories if r.country == code]
            out = HistoryOut(country=code, name=country_name(code, current), versions=versions)
            return prepare(
                fmt,
                out,
                lambda: history_table(code, versions),
                last_modified=latest_of(r.stored_at for r in rows),
            )

        return await cached(request, build)

    @app.get(
        "/v1/changes",
        response_model=ChangesOut,
        responses=openapi_responses(csv=True, not_found=True, link=True),
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
            return prepare(
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
            **openapi_responses(csv=False, not_found=True, ok=False),
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
            publishers = publisher_names()
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
        responses={503: unavailable_response()},
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
    app.openapi = openapi_without_nulls(app)  # type: ignore[method-assign]
    # Outermost of the application's own middleware: cache hits skip routing entirely.
    app.add_middleware(CachedResponses, service=service)
    return app


def app_from_environment() -> FastAPI:
    """``create_app`` on the environment's settings (uvicorn's factory for ``--workers``)."""
    return create_app(get_settings())


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

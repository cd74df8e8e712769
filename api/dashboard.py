"""The web dashboard: HTML pages over the same data as the JSON API.

``router`` (included by :func:`api.app.create_app`) serves

==========================  ==========================================================
``GET /``                   world map coloured by level (``?source=`` a source id or
                            ``strictest``), disagreements hatched, countries without a
                            shape listed under it
``GET /countries/{iso}``    every source side by side, a level timeline per source,
                            the latest change's before/after text
``GET /changes``            classified changes, filtered (source, kind, country,
                            since) and paged (``before`` = a change id)
``GET /sources``            freshness, success rate, budget use, open dead letters,
                            links into the Temporal Web UI
``GET /assets/base.css``    the stylesheet shared with the file report
==========================  ==========================================================

Pages are rendered by the shared template set (:mod:`advisories.render`) and read
the service's in-memory snapshot and :class:`store.read.ReadStore` only. Scraped
text is untrusted: templates autoescape, and every response carries a strict
Content-Security-Policy (nothing inline, nothing from elsewhere, no script at
all: the pages work without JavaScript). PostgreSQL down → a small HTML 503 page
(:func:`unavailable_page`, with ``Retry-After``), where the API answers its JSON 503.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from advisories.changes import ChangeKind
from advisories.health import HealthSettings, SourceMetrics, check_freshness
from advisories.render import render, stylesheet
from advisories.render.charts import level_timeline
from advisories.render.worldmap import (
    HEIGHT,
    WIDTH,
    CountryShape,
    MapShapesMissingError,
    country_shapes,
    outline,
)
from advisories.schedule_spec import scrape_intervals
from advisories.search_attributes import SOURCE as SOURCE_ATTRIBUTE
from advisories.settings import Settings, get_settings
from advisories.sources import SOURCES, source_ids
from api.http import accepts_gzip
from api.models import CountryOut, CountrySourceOut
from api.service import DB_ERRORS, Service
from api.views import CountryCodeError, UnknownCountryError, country_view, resolve_country
from store.ratelimits import UsageRow
from store.read import AdvisoryRow, ReadStore, Snapshot, VersionRow

__all__ = ["CSP", "SECURITY_HEADERS", "router", "unavailable_page"]

#: Nothing inline, nothing from elsewhere, no script: every page works without JS.
CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
STRICTEST: Final = "strictest"
#: Changes per page.
PAGE_SIZE: Final = 50
#: Window of the sources page's success rate and budget use.
METRICS_WINDOW: Final = timedelta(hours=24)
_CHANGE_KINDS: Final = tuple(k.value for k in ChangeKind)

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)


class PageError(Exception):
    """A request the dashboard answers with an HTML error page (404, 400)."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.heading = heading
        self.message = message


# --------------------------------------------------------------------------- helpers


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _settings(request: Request) -> Settings:
    found = getattr(request.app.state, "settings", None)
    return found if isinstance(found, Settings) else get_settings()


def _publishers() -> dict[str, str]:
    return {source_id: SOURCES[source_id].name for source_id in source_ids()}


def _short_names() -> dict[str, str]:
    """Source id → a short publisher name ("UK FCDO"), for tabs and tables."""
    return {
        source_id: re.sub(r"\s*\(.*\)$", "", SOURCES[source_id].publisher)
        for source_id in source_ids()
    }


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _page(template: str, *, active: str, status: int = 200, **context: Any) -> HTMLResponse:
    return _html(
        render(
            template,
            standalone=False,
            active=active,
            sources=_publishers(),
            short=_short_names(),
            **context,
        ),
        status,
    )


def _error_page(exc: PageError) -> HTMLResponse:
    return _page(
        "dashboard/error.html",
        active="",
        status=exc.status,
        heading=exc.heading,
        message=exc.message,
    )


@cache
def _unavailable_body() -> bytes:
    # The same page for every request of an outage: rendered once.
    return bytes(
        _page(
            "dashboard/error.html",
            active="",
            heading="Temporarily unavailable",
            message="The advisory database cannot be reached right now; the dashboard is"
            " back as soon as it is. Try again in a few seconds.",
        ).body
    )


def unavailable_page(retry_after: int) -> HTMLResponse:
    """The page a browser gets while PostgreSQL is unreachable: 503, ``Retry-After``.

    Args:
        retry_after: Seconds the client is told to wait.
    """
    return HTMLResponse(
        _unavailable_body(),
        status_code=503,
        # Like the API's 503s, never stored: the next request may well succeed.
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store", "Retry-After": str(retry_after)},
    )


def _require(request: Request) -> tuple[ReadStore, Snapshot]:
    return _service(request).require()


def _lost(request: Request, exc: BaseException) -> Exception:
    return _service(request).lost(exc)


# --------------------------------------------------------------------------- the map


@dataclass(frozen=True, slots=True)
class MapCountry:
    """One country shape with what the chosen view says about it."""

    iso: str
    name: str
    d: str
    level: str  # "1".."4", "withdrawn", "none"
    disagree: bool
    label: str
    linked: bool


@dataclass(frozen=True, slots=True)
class MapView:
    """The map in one mode, with its counts and the countries it cannot draw."""

    mode: str
    countries: tuple[MapCountry, ...]
    unmapped: tuple[tuple[str, str, str], ...]  # (iso, name, level)
    counts: dict[str, int] = field(default_factory=dict)
    disagreements: int = 0
    #: Every stored country by name, with its sources by id: the map as text.
    table: tuple[tuple[CountryOut, dict[str, CountrySourceOut]], ...] = ()


def _level_key(row: AdvisoryRow | None) -> str:
    if row is None:
        return "none"
    return "withdrawn" if row.withdrawn else str(row.level)


def _shown_level(view: CountryOut, rows: Sequence[AdvisoryRow], mode: str) -> str:
    """The level a country is drawn in: the strictest, or the chosen source's."""
    if mode == STRICTEST:
        return str(view.strictest) if view.strictest is not None else "withdrawn"
    return _level_key(next((r for r in rows if r.source == mode), None))


def _label(name: str, rows: Sequence[AdvisoryRow], publishers: dict[str, str]) -> str:
    """Hover text: the name, then every source's level (one per line)."""
    lines = [name]
    by_source = {r.source: r for r in rows}
    for source_id, publisher in publishers.items():
        row = by_source.get(source_id)
        text = "no advisory" if row is None else _level_text(row)
        lines.append(f"{publisher}: {text}")
    return "\n".join(lines)


def _level_text(row: AdvisoryRow) -> str:
    if row.withdrawn:
        return "withdrawn"
    text = f"level {row.level}"
    if row.regional_level is not None and row.regional_level != row.level:
        text += f" (parts {row.regional_level})"
    return text


def build_map(
    snapshot: Snapshot, mode: str, shapes: Sequence[CountryShape], publishers: dict[str, str]
) -> MapView:
    """The map of ``snapshot`` in ``mode`` (a source id or ``strictest``).

    Pure: the shapes and the snapshot in, the view out.
    """
    by_country = snapshot.by_country()
    shaped = {s.iso for s in shapes}
    countries = []
    counts: dict[str, int] = {}
    disagreements = 0
    for shape in shapes:
        rows = by_country.get(shape.iso, [])
        view = country_view(shape.iso, rows, publishers=publishers) if rows else None
        level = "none" if view is None else _shown_level(view, rows, mode)
        # Marked where the chosen view shows a level: a grey country hatched
        # over other governments' dispute would read as this source's doing.
        disagree = bool(view and view.disagreement and level != "none")
        disagreements += disagree
        counts[level] = counts.get(level, 0) + 1
        name = view.name if view else shape.name
        countries.append(
            MapCountry(
                iso=shape.iso,
                name=name,
                d=shape.d,
                level=level,
                disagree=disagree,
                label=_label(name, rows, publishers) if rows else f"{shape.name}\nno advisory",
                linked=bool(rows),
            )
        )
    unmapped = []
    for iso in sorted(set(by_country) - shaped):
        rows = by_country[iso]
        view = country_view(iso, rows, publishers=publishers)
        unmapped.append((iso, view.name, _shown_level(view, rows, mode)))
    views = [country_view(iso, rows, publishers=publishers) for iso, rows in by_country.items()]
    table = [
        (v, {s.source: s for s in v.sources})
        for v in sorted(views, key=lambda v: (v.name.casefold(), v.country))
    ]
    return MapView(
        mode=mode,
        countries=tuple(countries),
        unmapped=tuple(unmapped),
        counts=counts,
        disagreements=disagreements,
        table=tuple(table),
    )


@cache
def _outline() -> str:
    return outline()


# Rendered maps by (data version, mode): the shapes never change, the data rarely.
# Keyed by the service too: two apps in one process (tests) never share pages.
# Kept gzipped too: the page is ~380 KiB of path data, ~4× smaller compressed.
_MAP_CACHE: dict[tuple[int, Any, str], tuple[bytes, bytes]] = {}


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def map_page(request: Request, source: str = STRICTEST) -> Response:
    """The world map."""
    if source != STRICTEST and source not in SOURCES:
        return _error_page(
            PageError(
                400,
                "Unknown source",
                f"unknown source {source!r}; valid: {STRICTEST}, {', '.join(source_ids())}",
            )
        )
    _, snapshot = _require(request)
    key = (id(_service(request)), snapshot.version.key(), source)
    cached = _MAP_CACHE.get(key)
    if cached is None:
        try:
            shapes = await run_in_threadpool(country_shapes)
        except MapShapesMissingError as exc:
            log.error("%s", exc)
            return _error_page(PageError(500, "Map not installed", str(exc)))
        publishers = _publishers()
        view = build_map(snapshot, source, shapes, publishers)
        title = "Strictest level across governments" if source == STRICTEST else publishers[source]
        body = render(
            "dashboard/map.html",
            standalone=False,
            active="map",
            sources=publishers,
            short=_short_names(),
            view=view,
            mode_title=title,
            modes=[(STRICTEST, "Strictest"), *_short_names().items()],
            width=WIDTH,
            height=round(HEIGHT, 1),
            outline=_outline(),
            checked_at=snapshot.version.last_checked_at,
        )
        raw = body.encode("utf-8")
        cached = (raw, await run_in_threadpool(gzip.compress, raw, 6))
        if len(_MAP_CACHE) > 16:
            _MAP_CACHE.clear()
        _MAP_CACHE[key] = cached
    headers = {**SECURITY_HEADERS, "Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("accept-encoding")):
        headers["Content-Encoding"] = "gzip"
        return HTMLResponse(cached[1], headers=headers)
    return HTMLResponse(cached[0], headers=headers)


# --------------------------------------------------------------------------- a country


@dataclass(frozen=True, slots=True)
class DiffPart:
    """A run of words: ``same``, ``removed`` or ``added``."""

    kind: str
    text: str


def word_diff(before: str, after: str) -> list[DiffPart]:
    """``before`` → ``after`` as runs of unchanged, removed and added words."""
    old, new = before.split(), after.split()
    parts: list[DiffPart] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(DiffPart("same", " ".join(old[a1:a2])))
            continue
        if a2 > a1:
            parts.append(DiffPart("removed", " ".join(old[a1:a2])))
        if b2 > b1:
            parts.append(DiffPart("added", " ".join(new[b1:b2])))
    return parts


@dataclass(frozen=True, slots=True)
class LatestChange:
    """The newest version of the country that replaced an earlier one, and that one."""

    source: str
    kind: str
    before: VersionRow
    after: VersionRow
    title: list[DiffPart]
    summary: list[DiffPart]


def latest_change(history: Sequence[VersionRow]) -> LatestChange | None:
    """The most recently stored version that has a predecessor from the same source."""
    best: LatestChange | None = None
    by_source: dict[str, list[VersionRow]] = {}
    for row in history:
        by_source.setdefault(row.source, []).append(row)
    for source, rows in by_source.items():
        ordered = sorted(rows, key=lambda r: r.version_id)
        if len(ordered) < 2:
            continue
        before, after = ordered[-2], ordered[-1]
        if best is None or after.stored_at > best.after.stored_at:
            best = LatestChange(
                source=source,
                kind=after.kind or "text",
                before=before,
                after=after,
                title=word_diff(before.title, after.title),
                summary=word_diff(before.summary, after.summary),
            )
    return best


def _timeline_series(
    history: Sequence[VersionRow], publishers: dict[str, str]
) -> dict[str, list[tuple[datetime, int | None]]]:
    """Per publisher, each version's (the source's own updated time, level)."""
    series: dict[str, list[tuple[datetime, int | None]]] = {}
    for row in sorted(history, key=lambda r: (r.source, r.version_id)):
        label = publishers.get(row.source, row.source)
        at = row.source_updated_at or row.stored_at
        series.setdefault(label, []).append((at, None if row.withdrawn else row.level))
    return series


@router.api_route("/countries/{iso}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def country_page(request: Request, iso: str) -> Response:
    """Every source side by side for one country."""
    try:
        code = resolve_country(iso)
    except (CountryCodeError, UnknownCountryError) as exc:
        return _error_page(PageError(404, "Unknown country", str(exc)))
    store, snapshot = _require(request)
    rows = snapshot.by_country().get(code, [])
    publishers = _publishers()
    if not rows:
        return _error_page(
            PageError(404, "No advisory", f"no source has a current advisory for {code}")
        )
    view = country_view(code, rows, publishers=publishers)
    try:
        history = await store.history(code)
    except DB_ERRORS as exc:
        raise _lost(request, exc) from exc
    now = datetime.now(UTC)
    series = _timeline_series(history, _short_names())
    # Drawn by a JavaScript engine (cached by input): off the event loop.
    timeline = await run_in_threadpool(
        level_timeline,
        "chart-timeline",
        f"Level over time per source, {view.name}",
        series,
        until=now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1),
    )
    return _page(
        "dashboard/country.html",
        active="",
        view=view,
        timeline=timeline,
        change=latest_change(history),
        publishers=publishers,
        versions=len(history),
    )


# --------------------------------------------------------------------------- changes


def _parse_since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PageError(
            400, "Invalid filter", f"since {text!r} is not a date or time (2026-11-01)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.api_route("/changes", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def changes_page(
    request: Request,
    source: str = "",
    kind: str = "",
    country: str = "",
    since: str = "",
    before: str = "",
) -> Response:
    """Classified changes, newest first, filtered and paged."""
    try:
        if source and source not in SOURCES:
            raise PageError(
                400,
                "Invalid filter",
                f"unknown source {source!r}; valid: {', '.join(source_ids())}",
            )
        if kind and kind not in _CHANGE_KINDS:
            raise PageError(
                400, "Invalid filter", f"unknown kind {kind!r}; valid: {', '.join(_CHANGE_KINDS)}"
            )
        code = None
        if country:
            try:
                code = resolve_country(country)
            except (CountryCodeError, UnknownCountryError) as exc:
                raise PageError(400, "Invalid filter", str(exc)) from None
        moment = _parse_since(since) if since else None
        if before and (not before.isdigit() or len(before) > 18):
            raise PageError(400, "Invalid page", f"before {before!r} is not a change id")
    except PageError as exc:
        return _error_page(exc)
    store, _ = _require(request)
    try:
        rows = await store.changes(
            before_id=int(before) if before else None,
            since=moment,
            kinds=[kind] if kind else None,
            sources=[source] if source else None,
            country=code,
            limit=PAGE_SIZE + 1,
        )
    except DB_ERRORS as exc:
        raise _lost(request, exc) from exc
    page, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    filters = {"source": source, "kind": kind, "country": country, "since": since}
    kept = {k: v for k, v in filters.items() if v}
    older = f"/changes?{urlencode({**kept, 'before': page[-1].id})}" if more else None
    newest = f"/changes?{urlencode(kept)}" if before else None
    return _page(
        "dashboard/changes.html",
        active="changes",
        changes=page,
        filters=filters,
        kinds=_CHANGE_KINDS,
        older=older,
        newest=newest,
        publishers=_publishers(),
    )


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One line of the sources page."""

    id: str
    publisher: str
    metrics: SourceMetrics
    advisories: int
    interval_seconds: float
    last_success_at: datetime | None
    age_seconds: float | None
    limit_seconds: float
    stale: bool
    usage: UsageRow | None
    limited: bool
    links: dict[str, str]


def _temporal_links(settings: Settings, source_id: str, schedule_id: str) -> dict[str, str]:
    """Temporal Web UI pages of a source: its schedule, its cycles, its open quarantines."""
    base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{quote(settings.temporal_namespace)}"

    def workflows(query: str) -> str:
        return f"{base}/workflows?{urlencode({'query': query})}"

    return {
        "schedule": f"{base}/schedules/{quote(schedule_id)}",
        "cycles": workflows(
            f"WorkflowType='ScrapeSourceWorkflow' AND TemporalScheduledById='{schedule_id}'"
        ),
        "quarantine": workflows(
            f"WorkflowType='QuarantineWorkflow' AND ExecutionStatus='Running' "
            f"AND {SOURCE_ATTRIBUTE}='{source_id}'"
        ),
    }


@router.api_route("/sources", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def sources_page(request: Request) -> Response:
    """Each source's freshness, success rate, budget use and dead letters."""
    store, snapshot = _require(request)
    settings = _settings(request)
    intervals = scrape_intervals(settings.schedule_overrides)
    try:
        now, metrics, checks = await store.source_metrics(
            window=METRICS_WINDOW, intervals=intervals
        )
        usage = {u.source: u for u in await store.rate_limit_usage()}
    except DB_ERRORS as exc:
        raise _lost(request, exc) from exc
    thresholds = HealthSettings().thresholds()
    counts: dict[str, int] = {}
    for row in snapshot.advisories:
        counts[row.source] = counts.get(row.source, 0) + 1
    out = []
    for source_id in source_ids():
        spec = SOURCES[source_id]
        m = metrics[source_id]
        last = datetime.fromisoformat(m.last_success_at) if m.last_success_at else None
        used = usage.get(source_id)
        out.append(
            SourceRow(
                id=source_id,
                publisher=spec.name,
                metrics=m,
                advisories=counts.get(source_id, 0),
                interval_seconds=intervals[source_id],
                last_success_at=last,
                age_seconds=None if last is None else (now - last).total_seconds(),
                limit_seconds=thresholds.freshness_factor * m.interval_seconds,
                stale=not check_freshness(m, thresholds, now=now).ok,
                usage=used,
                # Off for the whole process (make demo) or for this source.
                limited=bool(settings.rate_limits_enabled and used and used.limits.enabled),
                links=_temporal_links(settings, source_id, spec.schedule_id),
            )
        )
    failing = [c for c in checks if not c.ok]
    return _page(
        "dashboard/sources.html",
        active="sources",
        rows=out,
        failing=failing,
        now=now,
        window_hours=METRICS_WINDOW.total_seconds() / 3600,
        ui_url=settings.temporal_ui_url,
    )


# --------------------------------------------------------------------------- assets


@cache
def _css() -> tuple[bytes, str]:
    body = str(stylesheet()).encode("utf-8")
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.api_route("/assets/base.css", methods=["GET", "HEAD"])
async def base_css(request: Request) -> Response:
    """The shared stylesheet (also inlined in file reports)."""
    body, etag = _css()
    headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "public, max-age=3600"}
    if etag in re.split(r"\s*,\s*", request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/css; charset=utf-8", headers=headers)

"""Building the read API's bodies: JSON or CSV of a model, the filters, a page of changes.

A filter that is not valid raises :class:`~api.errors.ApiError` (422, or 404 for a
well-formed code of no country).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from advisories.errors import UnknownSourceError
from advisories.sources import SOURCES, get_source
from api.errors import ApiError
from api.http import (
    CSV,
    JSON,
    CsvTable,
    Prepared,
    csv_body,
    decode_cursor,
    encode_cursor,
    json_body,
)
from api.views import CountryCodeError, UnknownCountryError, country_name, resolve_country
from store.read import ReadStore

__all__ = [
    "change_page",
    "country_filter",
    "country_path",
    "no_country",
    "parse_time",
    "prepare",
    "publisher_names",
    "source_filter",
]

# What the time filters accept, exactly as the OpenAPI document declares it (a date, or an
# RFC 3339 date-time with its offset): no Unix timestamps, no local times.
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME_RE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def prepare(
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


def source_filter(source: str | None) -> list[str] | None:
    if source is None:
        return None
    try:
        get_source(source)
    except UnknownSourceError as exc:
        raise ApiError(422, str(exc)) from None
    return [source]


def country_filter(country: str | None) -> str | None:
    if country is None:
        return None
    try:
        return resolve_country(country)
    except CountryCodeError as exc:
        raise ApiError(422, f"query parameter 'country': {exc}") from None
    except UnknownCountryError as exc:
        # Well-formed but no country: the same 404 as the country's own path.
        raise ApiError(404, f"query parameter 'country': {exc}") from None


def country_path(iso: str) -> str:
    try:
        return resolve_country(iso)
    except CountryCodeError as exc:
        raise ApiError(422, str(exc)) from None
    except UnknownCountryError as exc:
        raise ApiError(404, str(exc)) from None


def parse_time(text: str | None, name: str) -> datetime | None:
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


def publisher_names() -> dict[str, str]:
    return {s.id: s.name for s in SOURCES.values()}


def no_country(code: str) -> ApiError:
    return ApiError(404, f"no source has an advisory for {code} ({country_name(code)})")


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
        since=parse_time(since, "since"),
        kinds=None if kind is None else [kind],
        sources=source_filter(source),
        country=country_filter(country),
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None

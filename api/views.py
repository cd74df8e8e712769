"""What each endpoint shows, as pure functions of stored rows (no I/O, tested without servers).

* :func:`resolve_country` turns a path's code (alpha-2, alpha-3 or a sub-national ISO 3166-2
  code, any case) into the code the scheduler stores.
* :func:`country_view` is a country across every source: strictest level, spread and
  disagreement (defined on :class:`api.models.CountryOut`).
* the ``*_table`` functions give each list endpoint's CSV columns and rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, Final

import pycountry

from advisories.countries import from_alpha2, from_alpha3
from api.http import CsvTable
from api.models import (
    AdvisoryOut,
    AdvisoryWithSummaryOut,
    ChangeOut,
    CountryOut,
    CountrySourceOut,
    SourceOut,
    VersionOut,
)
from store.read import AdvisoryRow, ChangeRow, VersionRow

__all__ = [
    "CountryCodeError",
    "UnknownCountryError",
    "advisories_table",
    "changes_table",
    "country_name",
    "country_table",
    "country_view",
    "filter_advisories",
    "history_table",
    "resolve_country",
    "sources_table",
]

_SUBDIVISION: Final = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")


class CountryCodeError(ValueError):
    """Not a country code at all (422)."""


class UnknownCountryError(LookupError):
    """A well-formed code that names no country (404)."""


def resolve_country(text: str) -> str:
    """The stored code for ``text``: ISO 3166-1 alpha-2 or alpha-3, or ISO 3166-2.

    Case is ignored (``fr``, ``FRA``, ``pt-20``); alpha-3 is mapped to alpha-2; Kosovo
    is ``XK`` (``XKS``).

    Raises:
        CountryCodeError: ``text`` is not shaped like a code.
        UnknownCountryError: it is, but no country or subdivision has it.
    """
    code = text.strip().upper()
    if _SUBDIVISION.match(code):
        if pycountry.subdivisions.get(code=code) is None:
            raise UnknownCountryError(f"unknown country subdivision code {text!r}")
        return code
    if len(code) not in (2, 3) or not code.isascii() or not code.isalpha():
        raise CountryCodeError(
            f"invalid country code {text!r}: use ISO 3166-1 alpha-2 or alpha-3"
            " (FR, FRA) or an ISO 3166-2 code (PT-20)"
        )
    resolved = from_alpha2(code) if len(code) == 2 else from_alpha3(code)
    if resolved is None:
        raise UnknownCountryError(f"unknown country code {text!r}")
    return resolved


def country_name(code: str, rows: Sequence[AdvisoryRow] = ()) -> str:
    """ISO's English name of ``code``, else the name a source uses, else the code."""
    if "-" in code:
        found: Any = pycountry.subdivisions.get(code=code)
    else:
        found = pycountry.countries.get(alpha_2=code)
    if found is not None:
        return str(getattr(found, "common_name", None) or found.name)
    return rows[0].country_name if rows else code


def country_view(
    code: str, rows: Sequence[AdvisoryRow], *, publishers: Mapping[str, str]
) -> CountryOut:
    """``code`` across every source in ``publishers`` (id → publisher name)."""
    shown = sorted(rows, key=lambda r: r.source)
    levels = [r.level for r in shown if not r.withdrawn]
    strictest = max(levels) if levels else None
    spread = (max(levels) - min(levels)) if levels else None
    covered = {r.source for r in shown}
    return CountryOut(
        country=code,
        name=country_name(code, shown),
        sources=[
            CountrySourceOut(
                source=r.source,
                publisher=publishers.get(r.source, r.source),
                level=r.level,
                regional_level=r.regional_level,
                raw_level=r.raw_level,
                source_updated_at=r.source_updated_at,
                title=r.title,
                summary=r.summary,
                url=r.url,
                mapping_version=r.mapping_version,
                withdrawn=r.withdrawn,
                changed_at=r.changed_at,
                last_checked_at=r.last_checked_at,
            )
            for r in shown
        ],
        missing_sources=sorted(set(publishers) - covered),
        strictest=strictest,
        spread=spread,
        disagreement=spread is not None and spread >= 1,
    )


def filter_advisories(
    rows: Iterable[AdvisoryRow],
    *,
    sources: Sequence[str] | None = None,
    country: str | None = None,
    min_level: int | None = None,
    changed_since: datetime | None = None,
) -> list[AdvisoryRow]:
    """The rows that pass every given filter (``changed_since``: version stored at or after)."""
    wanted = None if sources is None else set(sources)
    return [
        r
        for r in rows
        if (wanted is None or r.source in wanted)
        and (country is None or r.country == country)
        and (min_level is None or r.level >= min_level)
        and (changed_since is None or r.changed_at >= changed_since)
    ]


def advisory_out(row: AdvisoryRow) -> AdvisoryOut:
    """The list's compact form of a current advisory: every field but the summary."""
    fields = asdict(row)
    del fields["summary"]
    return AdvisoryOut(**fields)


def advisory_with_summary_out(row: AdvisoryRow) -> AdvisoryWithSummaryOut:
    """The list's form of a current advisory with its summary (``include=summary``)."""
    return AdvisoryWithSummaryOut(**asdict(row))


def version_out(row: VersionRow) -> VersionOut:
    """The API form of a stored version."""
    return VersionOut(**asdict(row))


def change_out(row: ChangeRow) -> ChangeOut:
    """The API form of a change."""
    return ChangeOut(**asdict(row))


def latest_of(moments: Iterable[datetime | None]) -> datetime | None:
    """The newest of ``moments`` (None if there is none)."""
    present = [m for m in moments if m is not None]
    return max(present) if present else None


# --------------------------------------------------------------------------- CSV tables


def _fields(model: type[Any]) -> list[str]:
    return list(model.model_fields)


def advisories_table(
    items: Sequence[AdvisoryOut] | Sequence[AdvisoryWithSummaryOut], *, summary: bool = False
) -> CsvTable:
    """``/v1/advisories`` as CSV: one row per advisory, the JSON's fields as columns.

    Args:
        items: The rows, all of one model.
        summary: Whether they carry summaries (a ``summary`` column, last).
    """
    model = AdvisoryWithSummaryOut if summary else AdvisoryOut
    return CsvTable(_fields(model), [dict(a) for a in items])


def country_table(view: CountryOut) -> CsvTable:
    """``/v1/countries/{iso}`` as CSV: one row per source, with the country's aggregates."""
    columns = ["country", "name", *_fields(CountrySourceOut), "strictest", "spread", "disagreement"]
    common = {
        "country": view.country,
        "name": view.name,
        "strictest": view.strictest,
        "spread": view.spread,
        "disagreement": view.disagreement,
    }
    return CsvTable(columns, [{**common, **dict(s)} for s in view.sources])


def history_table(country: str, items: Sequence[VersionOut]) -> CsvTable:
    """``/v1/countries/{iso}/history`` as CSV: one row per version."""
    return CsvTable(
        ["country", *_fields(VersionOut)], [{"country": country, **dict(v)} for v in items]
    )


def changes_table(items: Sequence[ChangeOut]) -> CsvTable:
    """``/v1/changes`` as CSV: one row per change (the next page is in the Link header)."""
    return CsvTable(_fields(ChangeOut), [dict(c) for c in items])


def sources_table(items: Sequence[SourceOut]) -> CsvTable:
    """``/v1/sources`` as CSV: nested fields flattened (``schedule_every_seconds`` ...)."""
    columns = [
        "id",
        "name",
        "priority",
        "task_queue",
        "schedule_id",
        "schedule_every_seconds",
        "schedule_cron",
        "last_success_at",
        "freshness_age_seconds",
        "freshness_limit_seconds",
        "stale",
        "dead_letters_open",
        "advisories",
        "success_rate_24h",
        "fetches_finished_24h",
        "health_failing",
    ]
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "priority": s.priority,
            "task_queue": s.task_queue,
            "schedule_id": s.schedule.schedule_id,
            "schedule_every_seconds": s.schedule.every_seconds,
            "schedule_cron": s.schedule.cron,
            "last_success_at": s.last_success_at,
            "freshness_age_seconds": s.freshness.age_seconds,
            "freshness_limit_seconds": s.freshness.limit_seconds,
            "stale": s.freshness.stale,
            "dead_letters_open": s.dead_letters_open,
            "advisories": s.advisories,
            "success_rate_24h": s.success_rate_24h,
            "fetches_finished_24h": s.fetches_finished_24h,
            "health_failing": " ".join(h.name for h in s.health if not h.ok),
        }
        for s in items
    ]
    return CsvTable(columns, rows)

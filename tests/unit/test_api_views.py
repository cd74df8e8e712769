"""The API's views (pure): country codes, the country across sources, filters, CSV tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from advisories.changes import ChangeKind
from api.models import ChangeKindName
from api.views import (
    CountryCodeError,
    UnknownCountryError,
    country_table,
    country_view,
    filter_advisories,
    resolve_country,
)
from store.read import AdvisoryRow

PUBLISHERS = {"a_gov": "A", "b_gov": "B", "c_gov": "C"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(
    source: str, level: int, *, country: str = "FR", withdrawn: bool = False, **kw: object
) -> AdvisoryRow:
    values: dict[str, object] = {
        "source": source,
        "country": country,
        "country_name": "France",
        "level": level,
        "regional_level": None,
        "raw_level": f"L{level}",
        "title": "t",
        "summary": "s",
        "url": "https://example.org",
        "source_updated_at": T0,
        "mapping_version": "1",
        "withdrawn": withdrawn,
        "version_id": 1,
        "content_hash": "0" * 64,
        "changed_at": T0,
        "last_checked_at": T0,
    }
    values.update(kw)
    return AdvisoryRow(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("FR", "FR"),
        ("fr", "FR"),
        ("FRA", "FR"),
        ("fra", "FR"),
        ("XK", "XK"),
        ("xks", "XK"),
        ("pt-20", "PT-20"),
        ("GBR", "GB"),
    ],
)
def test_resolve_country(text: str, code: str) -> None:
    assert resolve_country(text) == code


@pytest.mark.parametrize("text", ["QQ", "ZZZ", "XX-99"])
def test_unknown_codes(text: str) -> None:
    with pytest.raises(UnknownCountryError):
        resolve_country(text)


@pytest.mark.parametrize("text", ["", "F", "FRAN", "12", "F1", "ÉÉ", "FR-"])
def test_malformed_codes(text: str) -> None:
    with pytest.raises(CountryCodeError):
        resolve_country(text)


def test_country_view_strictest_spread_disagreement() -> None:
    view = country_view("FR", [row("b_gov", 3), row("a_gov", 1)], publishers=PUBLISHERS)
    assert [s.source for s in view.sources] == ["a_gov", "b_gov"]
    assert [s.publisher for s in view.sources] == ["A", "B"]
    assert (view.strictest, view.spread, view.disagreement) == (3, 2, True)
    assert view.missing_sources == ["c_gov"]
    assert view.name == "France"


def test_agreement_and_withdrawn_advisories_are_not_compared() -> None:
    agree = country_view("FR", [row("a_gov", 2), row("b_gov", 2)], publishers=PUBLISHERS)
    assert (agree.strictest, agree.spread, agree.disagreement) == (2, 0, False)
    # A withdrawn advisory is shown but its stale level does not count.
    mixed = country_view(
        "FR", [row("a_gov", 2), row("b_gov", 4, withdrawn=True)], publishers=PUBLISHERS
    )
    assert (mixed.strictest, mixed.spread, mixed.disagreement) == (2, 0, False)
    assert len(mixed.sources) == 2
    gone = country_view("FR", [row("a_gov", 4, withdrawn=True)], publishers=PUBLISHERS)
    assert (gone.strictest, gone.spread, gone.disagreement) == (None, None, False)


def test_regional_levels_are_shown_not_compared() -> None:
    view = country_view(
        "FR", [row("a_gov", 2, regional_level=4), row("b_gov", 2)], publishers=PUBLISHERS
    )
    assert view.sources[0].regional_level == 4
    assert (view.strictest, view.disagreement) == (2, False)


def test_filters() -> None:
    rows = [
        row("a_gov", 1),
        row("b_gov", 3, country="DE", changed_at=T0 + timedelta(days=2)),
        row("a_gov", 4, country="DE"),
    ]
    assert filter_advisories(rows, sources=["a_gov"]) == [rows[0], rows[2]]
    assert filter_advisories(rows, country="DE") == rows[1:]
    assert filter_advisories(rows, min_level=3) == rows[1:]
    assert filter_advisories(rows, changed_since=T0 + timedelta(days=1)) == [rows[1]]
    assert filter_advisories(rows, sources=["a_gov"], min_level=2, country="DE") == [rows[2]]


def test_country_csv_has_a_row_per_source_with_the_aggregates() -> None:
    table = country_table(
        country_view("FR", [row("a_gov", 1), row("b_gov", 2)], publishers=PUBLISHERS)
    )
    rows = list(table.rows)
    assert [r["source"] for r in rows] == ["a_gov", "b_gov"]
    assert {r["disagreement"] for r in rows} == {True}
    assert {"strictest", "spread", "level", "title"} <= set(table.columns)


def test_change_kinds_of_the_schema_are_the_classifier_s() -> None:
    assert set(get_args(ChangeKindName)) == {k.value for k in ChangeKind}

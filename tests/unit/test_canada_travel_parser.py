"""Tests of the Global Affairs Canada parser against the real captures.

The three 2015 indexes, served in order, are a real change history: the
counts and country sets below were read off the data (by diffing the raw
entries), not off the parser. The 2014 indexes (``replay/captures``) are the
older layout, entries keyed by code without ``country-iso``.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from advisories.errors import ContractError, ParseError
from advisories.models import Advisory, Level
from advisories.parsers import parser_for
from advisories.sources import IndexEntry
from advisories.sources.canada_travel import (
    ADVISORY_STATES,
    EASTERN,
    parse_document,
    parse_file,
    parse_index,
    synthetic_document,
)
from advisories.sources.canada_travel import SOURCE_ID as SOURCE
from tests.fixtures_path import shared_fixtures

CANADA: Path = shared_fixtures(SOURCE)
#: The REAL 2014 indexes kept in the repository (replay/captures/SOURCES.md).
HISTORY_2014: Path = (
    Path(__file__).resolve().parents[2] / "replay" / "captures" / "canada_travel" / "history"
)
INDEX_2014_10 = HISTORY_2014 / "index-alpha-eng_2014-10-02.json"
INDEXES = ("index_cta-cap_2015-11-19.json", "index_cta-cap_2015-11-24.json",
           "index_cta-cap_2015-11-30.json")  # fmt: skip
URL = "https://data.international.gc.ca/travel-voyage/index-updated.json"
FETCHED_AT = datetime(2026, 10, 8, tzinfo=UTC)

# Destinations whose date-published moved between consecutive captures.
REPUBLISHED_11_24 = {
    "AR", "BE", "CF", "CM", "DE", "EC", "EG", "FR", "GQ", "GR", "KE",
    "LA", "ML", "MT", "NG", "PE", "PH", "PK", "TN", "TZ", "UG",
}  # fmt: skip
REPUBLISHED_11_30 = {
    "AT", "BE", "BF", "CG", "CU", "FM", "FR", "ID", "IT", "JP", "KE",
    "NL", "NO", "PE", "SG", "SS", "TC", "TH", "TN", "UG", "VE",
}  # fmt: skip


def body_of(name: str) -> bytes:
    return (CANADA / name).read_bytes()


def json_of(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body_of(name))
    return data


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def index(body: bytes) -> list[IndexEntry]:
    return parse_index(body, url=URL, fetched_at=FETCHED_AT)


def document(body: bytes) -> Advisory:
    return parse_document(body, url=URL, fetched_at=FETCHED_AT)


@pytest.fixture(scope="module")
def captures() -> list[dict[str, IndexEntry]]:
    return [{e.country: e for e in index(body_of(name))} for name in INDEXES]


# --- the index ------------------------------------------------------------------------


def test_each_index_lists_229_destinations(captures: list[dict[str, IndexEntry]]) -> None:
    for entries in captures:
        assert len(entries) == 229
    assert set(captures[0]) == set(captures[1]) == set(captures[2])


def test_codes_that_are_not_iso_countries(captures: list[dict[str, IndexEntry]]) -> None:
    latest = captures[2]
    azores, canaries, kosovo = latest["PT-20"], latest["ES-CN"], latest["XK"]
    assert (azores.country_name, azores.document_path) == (
        "Azores",
        "/travel-voyage/cta-cap-pt-20.json",
    )
    # Canada's IC: the document keeps Canada's code, the country is ISO 3166-2.
    assert (canaries.country_name, canaries.document_path) == (
        "Canary Islands",
        "/travel-voyage/cta-cap-ic.json",
    )
    assert (kosovo.level, kosovo.has_regional) == (Level.INCREASED_CAUTION, True)
    assert "IC" not in latest
    # Bonaire is BQ; the Israel entry (with the West Bank and Gaza) stays IL.
    assert latest["BQ"].country_name == "Bonaire"
    assert latest["IL"].country_name == "Israel, the West Bank and the Gaza Strip"


def test_level_histogram_of_the_latest_index(captures: list[dict[str, IndexEntry]]) -> None:
    # advisory-state {0: 108, 1: 95, 2: 12, 3: 14} in the 2015-11-30 data.
    assert Counter(int(e.level or 0) for e in captures[2].values()) == {
        1: 108,
        2: 95,
        3: 12,
        4: 14,
    }
    assert sum(bool(e.has_regional) for e in captures[2].values()) == 58


def test_index_entry_fields(captures: list[dict[str, IndexEntry]]) -> None:
    afghanistan = captures[2]["AF"]
    assert afghanistan.country_name == "Afghanistan"
    assert afghanistan.level is Level.DO_NOT_TRAVEL  # advisory-state 3
    assert afghanistan.has_regional is False
    # asp "2015-11-18T08:32:11.0787357-05:00" (seven digits, EST).
    assert afghanistan.published_at == datetime(2015, 11, 18, 13, 32, 11, 78735, tzinfo=UTC)
    assert afghanistan.document_path == "/travel-voyage/cta-cap-af.json"
    assert afghanistan.advisory is None
    # asp "2015-07-16T09:48:20.000000-04:00": summer time.
    assert captures[2]["AQ"].published_at == datetime(2015, 7, 16, 13, 48, 20, tzinfo=UTC)


def changes(
    before: dict[str, IndexEntry], after: dict[str, IndexEntry]
) -> tuple[set[str], dict[str, tuple[int, int]], dict[str, tuple[bool, bool]]]:
    """Changed entries, level changes and regional-flag changes."""
    changed = {c for c in before if before[c].entry_hash != after[c].entry_hash}
    levels = {
        c: (int(before[c].level or 0), int(after[c].level or 0))
        for c in before
        if before[c].level != after[c].level
    }
    regional = {
        c: (bool(before[c].has_regional), bool(after[c].has_regional))
        for c in before
        if before[c].has_regional != after[c].has_regional
    }
    return changed, levels, regional


def test_2015_11_24_raises_mali(captures: list[dict[str, IndexEntry]]) -> None:
    changed, levels, regional = changes(captures[0], captures[1])
    assert changed == REPUBLISHED_11_24
    # advisory-state 2 → 3 (avoid non-essential → avoid all travel) is our 3 → 4,
    # and Mali's regional advisories are gone under a national one.
    assert levels == {"ML": (3, 4)}
    assert regional == {"ML": (True, False)}
    for code in changed:
        assert captures[1][code].published_at > captures[0][code].published_at  # type: ignore[operator]
    unchanged = set(captures[0]) - changed
    assert all(captures[0][c] == captures[1][c] for c in unchanged)


def test_2015_11_30_republishes_without_level_changes(
    captures: list[dict[str, IndexEntry]],
) -> None:
    changed, levels, regional = changes(captures[1], captures[2])
    assert changed == REPUBLISHED_11_30
    assert levels == {}
    assert regional == {}
    for code in changed:
        assert captures[2][code].published_at > captures[1][code].published_at  # type: ignore[operator]
    # Over the whole week, 36 destinations were republished (six twice).
    assert len(REPUBLISHED_11_24 | REPUBLISHED_11_30) == 36


def test_entry_hash_ignores_the_payload_timestamp_and_french_text() -> None:
    raw = json_of(INDEXES[2])
    before = index(encode(raw))
    noisy = copy.deepcopy(raw)
    noisy["metadata"]["generated"] = {"timestamp": 1791386416, "date": "2026-10-07 11:20:16"}
    noisy["data"]["FR"]["fra"]["recent-updates"] = "Autre texte."
    noisy["data"]["FR"]["recent-updates-type"] = "Editorial change"
    assert [e.entry_hash for e in index(encode(noisy))] == [e.entry_hash for e in before]
    changed = copy.deepcopy(raw)
    assert changed["data"]["AF"]["has-regional-advisory"] == 0
    changed["data"]["AF"]["has-regional-advisory"] = 1
    after = index(encode(changed))
    assert [b.country for b, a in zip(before, after, strict=True) if b != a] == ["AF"]
    assert before[0].entry_hash != after[0].entry_hash


def test_parse_file_of_an_index_gives_one_advisory_per_destination() -> None:
    advisories = parse_file(body_of(INDEXES[1]), url=URL, fetched_at=FETCHED_AT)
    assert len(advisories) == 229
    mali = next(a for a in advisories if a.country == "ML")
    assert mali.source == SOURCE
    assert mali.level is Level.DO_NOT_TRAVEL
    assert mali.regional_level is None
    assert mali.raw_level == "3: Avoid all travel"
    assert mali.title == "Mali: Avoid all travel"
    assert mali.summary == (
        "Avoid all travel\n\nLatest update: The Advisories and Security tabs were updated - "
        "avoid all travel to Mali."
    )
    assert mali.url == "https://travel.gc.ca/destinations/mali"
    # asp "2015-11-23T12:58:36.18394-05:00".
    assert mali.source_updated_at == datetime(2015, 11, 23, 17, 58, 36, 183940, tzinfo=UTC)
    entries = index(body_of(INDEXES[1]))
    assert [a.country for a in advisories] == [e.country for e in entries]
    assert [a.level for a in advisories] == [e.level for e in entries]


# --- per-country documents ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "country", "level", "regional", "raw_level", "updated"),
    [
        # friendly-date "October 5, 2026 07:02 EDT".
        ("cta-cap-fr_2026-10-05_trimmed.json", "FR", 2, None,
         "1: Exercise a high degree of caution", datetime(2026, 10, 5, 11, 2, tzinfo=UTC)),
        ("cta-cap-hk_2026-09-24_trimmed.json", "HK", 2, None,
         "1: Exercise a high degree of caution", datetime(2026, 9, 24, 12, 53, tzinfo=UTC)),
        ("cta-cap-ht_2026-09-24_trimmed.json", "HT", 4, None,
         "3: Avoid all travel", datetime(2026, 9, 24, 12, 53, tzinfo=UTC)),
        # One RegionalAdv container: "Regional Advisory - Avoid non-essential travel".
        ("cta-cap-mx_2026-10-07_trimmed.json", "MX", 2, 3,
         "1: Exercise a high degree of caution (with regional advisories)",
         datetime(2026, 10, 7, 15, 16, tzinfo=UTC)),
        ("cta-cap-ua_2026-09-24_trimmed.json", "UA", 4, None,
         "3: Avoid all travel", datetime(2026, 9, 24, 12, 53, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_country_documents(
    name: str, country: str, level: int, regional: int | None, raw_level: str, updated: datetime
) -> None:
    advisory = document(body_of(name))
    assert advisory.source == SOURCE
    assert advisory.country == country
    assert advisory.level == Level(level)
    assert advisory.regional_level == (None if regional is None else Level(regional))
    assert advisory.raw_level == raw_level
    assert advisory.source_updated_at == updated
    assert advisory.withdrawn is False
    assert parse_file(body_of(name), url=URL, fetched_at=FETCHED_AT) == [advisory]


def test_mexico_fields() -> None:
    mexico = document(body_of("cta-cap-mx_2026-10-07_trimmed.json"))
    assert mexico.country_name == "Mexico"
    assert mexico.title == "Mexico: Exercise a high degree of caution (with regional advisories)"
    assert mexico.url == "https://travel.gc.ca/destinations/mexico"
    assert mexico.summary.startswith(
        "Mexico - Exercise a high degree of caution Exercise a high degree of caution in Mexico "
        "due to high levels of criminal activity and kidnapping. Regional Advisory - Avoid "
        "non-essential travel"
    )
    assert "Tuxtla Gutiérrez" in mexico.summary  # entities decoded
    assert mexico.summary.endswith(
        "\n\nLatest update: Natural disasters and climate section – removed information on "
        "Hurricane Polo"
    )
    assert "<" not in mexico.summary


def regional_html(*containers: tuple[str, str]) -> str:
    return "".join(
        f'<div class="AdvisoryContainer {cls}"><h3>{heading}</h3><p>text</p></div>'
        for cls, heading in containers
    )


@pytest.mark.parametrize(
    ("state", "html", "regional"),
    [
        (1, regional_html(("ExHigh", "X - Exercise a high degree of caution"),
                          ("RegionalAdv", "Regional Advisory - Avoid non-essential travel"),
                          ("RegionalAdv", "Regional Advisory - Avoid all travel")), 4),
        # A regional level no stricter than the country's is not a regional level.
        (3, regional_html(("AvoidAll", "X - AVOID ALL TRAVEL"),
                          ("RegionalAdv", "Regional Advisory - Avoid all travel")), None),
        # Recognised by its heading alone.
        (0, regional_html(("Other", "Regional advisory - Avoid non-essential travel")), 3),
        # Level from the "Risk Levels" link when the heading has none.
        (0, '<div class="AdvisoryContainer RegionalAdv"><h3>Regional Advisory</h3><p>'
            '<a class="wb-lbx" title="Risk Levels" href="#levels">Avoid all travel</a> to the '
            'north.</p></div>', 4),
        (1, "", None),
    ],
)  # fmt: skip
def test_regional_levels(state: int, html: str, regional: int | None) -> None:
    raw = json_of("cta-cap-mx_2026-10-07_trimmed.json")
    raw["data"]["advisory-state"] = state
    raw["data"]["eng"]["advisory-text"] = ADVISORY_STATES[state].phrase
    raw["data"]["eng"]["advisories"] = html
    advisory = document(encode(raw))
    assert advisory.level is ADVISORY_STATES[state].level
    assert advisory.regional_level == (None if regional is None else Level(regional))


def test_regional_container_without_a_level_is_an_error() -> None:
    raw = json_of("cta-cap-mx_2026-10-07_trimmed.json")
    raw["data"]["eng"]["advisories"] = regional_html(("RegionalAdv", "Regional Advisory"))
    with pytest.raises(ParseError, match="a regional advisory states no level"):
        document(encode(raw))


# --- dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("friendly", "expected"),
    [
        ("January 15, 2026 08:30 EST", datetime(2026, 1, 15, 13, 30, tzinfo=UTC)),
        ("October 7, 2026 11:16 EDT", datetime(2026, 10, 7, 15, 16, tzinfo=UTC)),
        # No zone: Eastern time, summer and winter.
        ("July 1, 2026 12:00", datetime(2026, 7, 1, 16, 0, tzinfo=UTC)),
        ("December 1, 2026 12:00", datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),
    ],
)
def test_friendly_date(friendly: str, expected: datetime) -> None:
    raw = json_of("cta-cap-fr_2026-10-05_trimmed.json")
    raw["data"]["eng"]["friendly-date"] = friendly
    assert document(encode(raw)).source_updated_at == expected


@pytest.mark.parametrize(
    ("friendly", "match"),
    [("October 7, 2026 11:16 PST", "unknown time zone 'PST'"),
     ("7 octobre 2026 11:16 HAE", "bad eng.friendly-date"),
     ("Smarch 7, 2026 11:16 EDT", "bad eng.friendly-date"),
     ("February 30, 2026 11:16 EST", "day is out of range"),
     (None, "bad eng.friendly-date")],
)  # fmt: skip
def test_bad_friendly_date(friendly: str | None, match: str) -> None:
    raw = json_of("cta-cap-fr_2026-10-05_trimmed.json")
    raw["data"]["eng"]["friendly-date"] = friendly
    with pytest.raises(ParseError, match=match):
        document(encode(raw))


def test_document_with_date_published_prefers_it() -> None:
    raw = json_of("cta-cap-fr_2026-10-05_trimmed.json")
    raw["data"]["date-published"] = {"asp": "2026-10-05T07:02:41.5-04:00"}
    assert document(encode(raw)).source_updated_at == datetime(
        2026, 10, 5, 11, 2, 41, 500000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ({"timestamp": 1447853531, "date": "2015-11-18 08:32:11"},
         datetime(2015, 11, 18, 13, 32, 11, tzinfo=UTC)),
        # Zone-less date: Eastern time (EST in November, EDT in July).
        ({"date": "2015-11-18 08:32:11"}, datetime(2015, 11, 18, 13, 32, 11, tzinfo=UTC)),
        ({"date": "2015-07-16 09:48:20"}, datetime(2015, 7, 16, 13, 48, 20, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_index_date_fallbacks(published: dict[str, Any], expected: datetime) -> None:
    raw = json_of(INDEXES[2])
    raw["data"]["AF"]["date-published"] = published
    assert index(encode(raw))[0].published_at == expected


def test_index_date_missing() -> None:
    raw = json_of(INDEXES[2])
    raw["data"]["AF"]["date-published"] = {"asp": ""}
    with pytest.raises(ParseError, match="entry 'AF': date-published has no asp"):
        index(encode(raw))
    raw["data"]["AF"]["date-published"] = {"asp": "18/11/2015"}
    with pytest.raises(ParseError, match=r"bad date-published\.asp"):
        index(encode(raw))


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "the document is empty"),
        (b"not json", "not JSON"),
        (b"[]", "expected a JSON object, got list"),
        (b'{"metadata": {}}', "expected an object under 'data'"),
        (b'{"data": []}', "expected an object under 'data'"),
    ],
)
def test_bad_input(body: bytes, match: str) -> None:
    for parse in (parse_index, parse_document, parse_file):
        with pytest.raises(ParseError, match=match):
            parse(body, url=URL, fetched_at=FETCHED_AT)


def test_index_with_no_destinations_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="lists no destinations"):
        index(b'{"metadata": {"generated": {}}, "data": {}}')
    with pytest.raises(ContractError, match="lists no destinations"):
        parse_file(b'{"data": {}}', url=URL, fetched_at=FETCHED_AT)


def test_unknown_code_is_named() -> None:
    raw = json_of(INDEXES[2])
    entry = raw["data"].pop("AF")
    entry["country-iso"] = "QQ"
    raw["data"]["QQ"] = entry
    with pytest.raises(ParseError, match="entry 'QQ': unknown destination code 'QQ'"):
        index(encode(raw))


def test_code_and_name_must_agree() -> None:
    raw = json_of(INDEXES[2])
    entry = raw["data"].pop("AF")
    entry["country-iso"] = "AL"
    raw["data"]["AF"] = entry
    with pytest.raises(ParseError, match="is keyed 'AF' but its country-iso is 'AL'"):
        index(encode(raw))
    doc = json_of("cta-cap-hk_2026-09-24_trimmed.json")
    doc["data"]["country-iso"] = "MO"
    with pytest.raises(ParseError, match="code 'MO' is MO but its name 'Hong Kong' is HK"):
        document(encode(doc))


def test_two_entries_for_one_country() -> None:
    raw = json_of(INDEXES[2])
    raw["data"]["ES-CN"] = dict(raw["data"]["IC"], **{"country-iso": "ES-CN"})
    with pytest.raises(ContractError, match="entries 'IC' and 'ES-CN' are both ES-CN"):
        index(encode(raw))


@pytest.mark.parametrize(
    ("state", "text", "match"),
    [(4, "Avoid all travel", "unknown advisory-state 4"),
     ("2", "Avoid non-essential travel", "unknown advisory-state '2'"),
     (True, "Exercise a high degree of caution", "unknown advisory-state True"),
     (2, "Avoid all travel",
      r"advisory-state 2 \('Avoid non-essential travel'\) but advisory-text")],
)  # fmt: skip
def test_bad_advisory_state(state: object, text: str, match: str) -> None:
    raw = json_of(INDEXES[2])
    raw["data"]["ML"]["advisory-state"] = state
    raw["data"]["ML"]["eng"]["advisory-text"] = text
    with pytest.raises(ParseError, match=f"entry 'ML': {match}"):
        index(encode(raw))


def test_bad_regional_flag() -> None:
    raw = json_of(INDEXES[2])
    raw["data"]["ML"]["has-regional-advisory"] = "yes"
    with pytest.raises(ParseError, match="has-regional-advisory is 'yes'"):
        index(encode(raw))


def test_document_and_index_are_not_confused() -> None:
    with pytest.raises(ParseError, match="this is a destination's document"):
        index(body_of("cta-cap-mx_2026-10-07_trimmed.json"))
    with pytest.raises(ParseError, match="expected a destination's document"):
        document(body_of(INDEXES[0]))


def test_registered() -> None:
    assert parser_for("canada_travel").parse_index is parse_index


# --- the 2014 layout: entries keyed by code, no country-iso ----------------------------


def test_2014_index_is_keyed_by_code_without_country_iso() -> None:
    raw = json.loads(INDEX_2014_10.read_bytes())["data"]
    assert len(raw) == 229
    assert not any("country-iso" in entry for entry in raw.values())
    entries = index(INDEX_2014_10.read_bytes())
    # One entry per key, in the index's order, each read with its key as the code.
    assert [e.document_path for e in entries] == [
        f"/travel-voyage/cta-cap-{key.lower()}.json" for key in raw
    ]
    for entry, (key, fields) in zip(entries, raw.items(), strict=True):
        assert entry.country == {"IC": "ES-CN"}.get(key, key)
        assert entry.level == Level(fields["advisory-state"] + 1)
        assert entry.has_regional is bool(fields["has-regional-advisory"])
        published = datetime.fromisoformat(fields["date-published"]["asp"])
        assert entry.published_at == published.replace(tzinfo=EASTERN)
        assert entry.country_name == fields["eng"]["name"]
    # Read off the raw entries: Afghanistan 3 "AVOID ALL TRAVEL" since 2014-08-06 13:35:35
    # (summer, EDT); Mali 1 with regional advisories.
    by_country = {e.country: e for e in entries}
    assert by_country["AF"].level is Level.DO_NOT_TRAVEL
    assert by_country["AF"].published_at == datetime(2014, 8, 6, 17, 35, 35, tzinfo=UTC)
    assert (by_country["ML"].level, by_country["ML"].has_regional) == (
        Level.INCREASED_CAUTION,
        True,
    )


def test_2014_index_reads_as_if_each_entry_had_its_key_as_country_iso() -> None:
    body = INDEX_2014_10.read_bytes()
    with_codes = json.loads(body)
    with_codes["data"] = {k: {"country-iso": k, **e} for k, e in with_codes["data"].items()}
    with_iso = encode(with_codes)
    assert index(body) == index(with_iso)
    advisories = parse_file(body, url=URL, fetched_at=FETCHED_AT)
    assert advisories == parse_file(with_iso, url=URL, fetched_at=FETCHED_AT)
    afghanistan = advisories[0]
    assert (afghanistan.title, afghanistan.url) == (
        "Afghanistan: AVOID ALL TRAVEL",
        "https://travel.gc.ca/destinations/afghanistan",
    )


@pytest.mark.parametrize(
    ("key", "change", "match"),
    [("AF", {"country-iso": ""}, "entry 'AF': has no country-iso code"),
     ("AF", {"country-iso": None}, "entry 'AF': has no country-iso code"),
     ("AF", {"advisory-state": None}, "entry 'AF': unknown advisory-state None"),
     ("AF", {"date-published": None}, "entry 'AF': has no date-published"),
     ("AF", {"eng": None}, r"entry 'AF': has no English \('eng'\) block")],
)  # fmt: skip
def test_malformed_2014_entry_is_named(key: str, change: dict[str, Any], match: str) -> None:
    raw = json.loads(INDEX_2014_10.read_bytes())
    raw["data"][key].update(change)
    with pytest.raises(ParseError, match=match):
        index(encode(raw))
    with pytest.raises(ParseError, match=match):
        parse_file(encode(raw), url=URL, fetched_at=FETCHED_AT)


@pytest.mark.parametrize(
    ("key", "match"),
    [("QQ", "entry 'QQ': unknown destination code 'QQ'"),
     ("AL", "entry 'AL': code 'AL' is AL but its name 'Afghanistan' is AF"),
     (" ", "entry ' ': has no country-iso code and an empty key")],
)  # fmt: skip
def test_2014_entry_under_a_wrong_key_is_named(key: str, match: str) -> None:
    raw = json.loads(INDEX_2014_10.read_bytes())
    data = raw["data"]
    afghanistan = data.pop("AF")
    data.pop(key, None)
    data[key] = afghanistan
    with pytest.raises(ParseError, match=match):
        index(encode(raw))


def test_synthetic_document_of_a_2014_entry_takes_its_key() -> None:
    template = body_of("cta-cap-mx_2026-10-07_trimmed.json").decode("utf-8")
    entry = json.loads(INDEX_2014_10.read_bytes())["data"]["ML"]
    advisory = document(encode(synthetic_document(template, entry, key="ML")))
    assert (advisory.country, advisory.level) == ("ML", Level.INCREASED_CAUTION)
    with pytest.raises(ValueError, match="without country-iso needs its key"):
        synthetic_document(template, entry)

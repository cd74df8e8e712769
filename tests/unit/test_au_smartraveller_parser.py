"""The Smartraveller parser on the real destinations export (2026-04-10) and variations of it."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from advisories.errors import ContractError, ParseError
from advisories.models import Level
from advisories.sources.au_smartraveller import (
    MAPPING_VERSION,
    SOURCE,
    SOURCE_ID,
    advice_items,
    changed_at,
    clean,
    parse_document,
    parse_file,
    parse_index,
)
from tests.fixtures_path import REAL_FIXTURES

EXPORT: Path = REAL_FIXTURES / "au_smartraveller" / "destinations-export_2026-04-10.json"
URL = "https://www.smartraveller.gov.au/destinations-export"
FETCHED_AT = datetime(2026, 4, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def raw() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(EXPORT.read_bytes())
    return entries


@pytest.fixture(scope="module")
def by_country() -> dict[str, Any]:
    return {a.country: a for a in parse_file(EXPORT.read_bytes(), url=URL, fetched_at=FETCHED_AT)}


def body(entries: list[dict[str, Any]]) -> bytes:
    return json.dumps(entries).encode()


def test_every_destination_but_the_no_advice_page(
    raw: list[dict[str, Any]], by_country: dict[str, Any]
) -> None:
    assert len(raw) == 180
    assert len(by_country) == 179
    published = Counter(e["field_overall_advice_level"] for e in raw)
    parsed = Counter(a.raw_level for a in by_country.values())
    assert parsed == published - Counter({"No travel advice": 1})
    assert Counter(int(a.level) for a in by_country.values()) == {1: 65, 2: 74, 3: 11, 4: 29}
    assert {a.source for a in by_country.values()} == {SOURCE_ID}
    assert {a.mapping_version for a in by_country.values()} == {MAPPING_VERSION}


@pytest.mark.parametrize(
    ("country", "level", "regional"),
    [
        ("AF", 4, None),  # do not travel, nowhere safer
        ("DZ", 2, 4),  # high degree of caution; do not travel near Mali and Niger
        ("BD", 3, None),  # reconsider overall, reconsider in the Chittagong Hill Tracts
        ("JP", 1, 3),  # normal precautions; reconsider near Fukushima Dai-ichi
        ("LA", 1, 3),  # normal, then reconsider (Xaisomboun), then high caution (Bokeo)
        ("TD", 4, None),  # do not travel overall; reconsider N'Djamena is lower
        ("PF", 1, None),  # "Exercise normal safety cautions" (sic)
        ("BE", 1, None),  # "Exercise a normal safety precautions" (sic)
        ("KE", 2, 4),  # the body says "Do Not Travel" mid-sentence: not a new item
        ("CI", 2, 4),
        ("PS", 4, None),
        ("XK", 2, 3),
    ],
)
def test_levels_and_regional_levels(
    by_country: dict[str, Any], country: str, level: int, regional: int | None
) -> None:
    advisory = by_country[country]
    assert (int(advisory.level), advisory.regional_level) == (level, regional)


def test_changed_is_canberra_time_with_daylight_saving() -> None:
    def fail(reason: str) -> ParseError:
        return ParseError(SOURCE_ID, URL, reason)

    # AEDT (+11) in March, AEST (+10) in July.
    assert changed_at("Sun, 2026-03-01 10:29", fail) == datetime(2026, 2, 28, 23, 29, tzinfo=UTC)
    assert changed_at("Fri, 2023-07-21 16:47", fail) == datetime(2023, 7, 21, 6, 47, tzinfo=UTC)
    with pytest.raises(ParseError, match="bad changed time 'yesterday'"):
        changed_at("yesterday", fail)


def test_names_and_text_are_decoded(by_country: dict[str, Any]) -> None:
    ivory = by_country["CI"]
    assert ivory.country_name == "Côte d'Ivoire (Ivory Coast)"
    assert ivory.title == "Côte d'Ivoire (Ivory Coast): Exercise a high degree of caution"
    assert "&amp;" not in ivory.summary and "&#039;" not in ivory.summary
    assert "(see 'Safety')" in ivory.summary
    assert ivory.summary.startswith("We advise: Exercise a high degree of caution")
    assert "Latest update: We continue to advise" in ivory.summary
    assert (
        ivory.url == "https://www.smartraveller.gov.au/destinations/africa/cote-divoire-ivory-coast"
    )
    assert by_country["KP"].country_name == "North Korea (Democratic People's Republic of Korea)"
    assert clean("a&nbsp; b &amp;#039;c&#039;") == "a b 'c'"


def test_advice_items_split_only_before_a_level_phrase() -> None:
    items = advice_items(
        "Exercise a high degree of caution in Angola overall. See Safety, Reconsider your need"
        " to travel to Cabinda, Lunda Norte and Lunda Sul. Reconsider your need to travel to"
        " Cabinda, Lunda Norte and Lunda Sul due to the risk of civil unrest."
    )
    assert [level for level, _ in items] == [Level.INCREASED_CAUTION, Level.RECONSIDER_TRAVEL]
    assert items[1][1].endswith("due to the risk of civil unrest.")
    assert advice_items("") == []


def test_updated_time_and_index_entries(by_country: dict[str, Any]) -> None:
    entries = parse_index(EXPORT.read_bytes(), url=URL, fetched_at=FETCHED_AT)
    assert [e.country for e in entries] == sorted(by_country)
    palestine = next(e for e in entries if e.country == "PS")
    assert palestine.advisory is not None and palestine.document_path is None
    assert palestine.published_at == datetime(2026, 4, 9, 5, 40, tzinfo=UTC)  # 15:40 AEST
    assert palestine.entry_hash == palestine.advisory.content_hash
    assert SOURCE.document_path is None
    with pytest.raises(ParseError, match="no per-country documents"):
        parse_document(EXPORT.read_bytes(), url=URL, fetched_at=FETCHED_AT)


def test_bad_input_is_one_clear_error(raw: list[dict[str, Any]]) -> None:
    unknown = copy.deepcopy(raw[:3])
    unknown[1]["field_overall_advice_level"] = "Level 5"
    with pytest.raises(ParseError, match=r"entry 2 \('Albania'\): unknown .*'Level 5'"):
        parse_file(body(unknown), url=URL, fetched_at=FETCHED_AT)
    twice = [raw[0], raw[0]]
    with pytest.raises(ContractError, match="are both AF"):
        parse_file(body(twice), url=URL, fetched_at=FETCHED_AT)
    nowhere = copy.deepcopy(raw[:1])
    nowhere[0]["title"] = "Atlantis"
    nowhere[0]["field_url"] = "https://www.smartraveller.gov.au/destinations/atlantis"
    with pytest.raises(ParseError, match="cannot resolve the country of 'Atlantis'"):
        parse_file(body(nowhere), url=URL, fetched_at=FETCHED_AT)
    only_page = [e for e in raw if e["title"] == "No travel advice"]
    with pytest.raises(ContractError, match="no destination with travel advice"):
        parse_file(body(only_page), url=URL, fetched_at=FETCHED_AT)
    for document, message in ((b"", "empty"), (b"{}", "JSON array"), (b"[]", "no destinations")):
        with pytest.raises(ParseError, match=message) as caught:
            parse_file(document, url=URL, fetched_at=FETCHED_AT)
        assert "\n" not in str(caught.value)

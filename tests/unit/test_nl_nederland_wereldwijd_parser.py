"""The Nederland Wereldwijd parser on the real documents: Burkina Faso at three dates,
Egypt with three colours, the 12-record list excerpt, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from advisories.errors import ContractError, ParseError
from advisories.models import Level
from advisories.settings import Settings
from advisories.sources.nl_nederland_wereldwijd import (
    INDEX_PATH,
    MAPPING_VERSION,
    SOURCE,
    SOURCE_ID,
    levels_of,
    parse_document,
    parse_file,
    parse_index,
)

CAPTURES = Path(__file__).resolve().parents[2] / "replay" / "captures" / SOURCE_ID
BFA = {
    day: CAPTURES / "history" / f"traveladvice_BFA_2026-{day}.xml"
    for day in ("09-23", "09-24", "10-07")
}
EGYPT = CAPTURES / "traveladvice_EGY_2026-10-07.xml"
LIST = CAPTURES / "traveladvice_list_12-item-excerpt_2026-09.json"
URL = "https://opendata.nederlandwereldwijd.nl" + INDEX_PATH
FETCHED_AT = datetime(2026, 10, 8, tzinfo=UTC)


def fail(reason: str) -> ParseError:
    return ParseError(SOURCE_ID, URL, reason)


def records() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(LIST.read_bytes())
    return loaded


def test_burkina_faso_mostly_red_is_4_and_its_orange_cities_are_kept_raw() -> None:
    advisory = parse_document(BFA["09-23"].read_bytes(), url=URL, fetched_at=FETCHED_AT)
    assert (advisory.source, advisory.country, advisory.country_name) == (
        SOURCE_ID, "BF", "Burkina Faso",
    )  # fmt: skip
    # "voor het grootste deel rood"; Ouagadougou and Bobo-Dioulasso orange (less strict).
    assert (advisory.level, advisory.regional_level) == (Level.DO_NOT_TRAVEL, None)
    assert advisory.raw_level == "rood; delen: oranje"
    assert advisory.mapping_version == MAPPING_VERSION
    # <lastmodified>, the same day as "Laatst gewijzigd op: 15-04-2026".
    assert advisory.source_updated_at == datetime(2026, 4, 15, 7, 56, 37, 45000, tzinfo=UTC)
    assert advisory.url == "https://www.nederlandwereldwijd.nl/reisadvies/burkina-faso"
    assert advisory.summary.startswith("In het kort In Burkina Faso kunt u zonder duidelijke")
    assert "Regionale risico's: Rood: niet reizen" in advisory.summary


def test_egypt_yellow_with_orange_and_red_regions() -> None:
    advisory = parse_document(EGYPT.read_bytes(), url=URL, fetched_at=FETCHED_AT)
    assert advisory.country == "EG"
    # "Voor de rest van Egypte geldt kleurcode geel"; red for North Sinai and the borders.
    assert (advisory.level, advisory.regional_level) == (Level.INCREASED_CAUTION, 4)
    assert advisory.raw_level == "geel; delen: oranje, rood"
    assert advisory.source_updated_at == datetime(2026, 6, 25, 12, 4, 36, 79000, tzinfo=UTC)


def test_the_still_valid_date_is_not_content_but_a_real_edit_is() -> None:
    advisories = {
        day: parse_document(path.read_bytes(), url=URL, fetched_at=FETCHED_AT)
        for day, path in BFA.items()
    }
    first, edited, restamped = advisories["09-23"], advisories["09-24"], advisories["10-07"]
    # 09-24 → 10-07: only "Nog steeds geldig op: 24-09-2026" → "07-10-2026" differs.
    assert BFA["09-24"].read_bytes() != BFA["10-07"].read_bytes()
    assert b"Nog steeds geldig op: 07-10-2026" in BFA["10-07"].read_bytes()
    assert restamped.content_hash == edited.content_hash
    assert "Nog steeds geldig" not in restamped.summary
    # 09-23 → 09-24: republished with a new "Fiche de voyage" block, colours unchanged.
    assert first.content_hash != edited.content_hash
    assert "Fiche de voyage" in edited.summary and "Fiche de voyage" not in first.summary
    assert (first.level, first.raw_level) == (edited.level, edited.raw_level)
    assert edited.source_updated_at == datetime(2026, 9, 24, 7, 15, 53, 695000, tzinfo=UTC)


def test_the_real_list_excerpt() -> None:
    entries = {e.country: e for e in parse_index(LIST.read_bytes(), url=URL, fetched_at=FETCHED_AT)}
    assert len(entries) == 12
    hints = {country: (e.level, e.has_regional) for country, e in entries.items()}
    assert hints == {
        "ES": (1, False), "IS": (1, True), "MS": (1, True), "AE": (2, True),
        "SO": (4, False), "BF": (4, False), "IQ": (3, True), "PS": (2, True),
        "BQ-BO": (1, False), "XK": (1, False), "SJ": (1, False), "CA": (1, False),
    }  # fmt: skip
    assert entries["BF"].document_path == (
        "/v2/sources/nederlandwereldwijd/infotypes/countries/bfa/traveladvice"
    )
    # The list and the document give the same updated time.
    document = parse_document(BFA["09-24"].read_bytes(), url=URL, fetched_at=FETCHED_AT)
    assert entries["BF"].published_at == document.source_updated_at
    assert entries["XK"].country_name == "Kosovo"  # isocode XKX
    advisories = {
        a.country: a for a in parse_file(LIST.read_bytes(), url=URL, fetched_at=FETCHED_AT)
    }
    assert (advisories["PS"].level, advisories["PS"].regional_level) == (2, 4)
    assert advisories["PS"].raw_level == "geel; delen: oranje, rood"
    assert (advisories["IQ"].level, advisories["IQ"].regional_level) == (
        3,
        4,
    )  # no whole-country colour
    assert (advisories["SO"].level, advisories["SO"].regional_level) == (
        4,
        None,
    )  # "rood (behalve …)"


def test_the_entry_hash_follows_the_record_and_nothing_else() -> None:
    original = records()
    changed = records()
    changed[0]["lastmodified"] = "2026-10-01T08:00:00.000Z"
    changed[1]["classification"] = "anything"  # not read: the field is no longer supported
    before = parse_index(json.dumps(original).encode(), url=URL, fetched_at=FETCHED_AT)
    after = parse_index(json.dumps(changed).encode(), url=URL, fetched_at=FETCHED_AT)
    assert [b.entry_hash == a.entry_hash for b, a in zip(before, after, strict=True)] == [
        False, *[True] * 11,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [
        (["De kleurcode van het reisadvies voor Spanje is groen."], (1, None, "groen")),
        (
            ["De kleurcode van het reisadvies is geel voor het schiereiland Reykjanes.",
             "Voor de rest van IJsland geldt kleurcode groen."],
            (1, 2, "groen; delen: geel"),
        ),
        (
            ["De kleurcode van het reisadvies is rood voor de eilanden Abu Musa en Tunb.",
             "De kleurcode van het reisadvies voor de VAE is geel."],
            (2, 4, "geel; delen: rood"),
        ),
        (["Rood: niet reizen", "Oranje: alleen noodzakelijke reizen"],
         (3, 4, "oranje; delen: rood")),
        # Colours outside a colour-code sentence are not read.
        (["Bij een oranje of rood reisadvies passen verzekeraars de voorwaarden aan.",
          "De kleurcode van het reisadvies voor Canada is groen."], (1, None, "groen")),
    ],
)  # fmt: skip
def test_colour_rules(sentences: list[str], expected: tuple[int, int | None, str]) -> None:
    assert levels_of(sentences, fail) == expected


def test_the_index_request_asks_for_json_and_the_largest_page() -> None:
    assert Settings(_env_file=None).index_url(SOURCE_ID) == (  # type: ignore[call-arg]
        "https://opendata.nederlandwereldwijd.nl/v2/sources/nederlandwereldwijd/infotypes/"
        "traveladvice?output=json&rows=200"
    )
    assert SOURCE.rate_limit.timezone == "Europe/Amsterdam"


def test_bad_input_is_one_clear_error() -> None:
    document = BFA["09-24"].read_bytes()
    # Neither a colour-code sentence nor a colour heading ("Rood: niet reizen") left.
    no_colour = document.replace(b"kleurcode", b"code").replace(b"<h4>Rood:", b"<h4>")
    no_colour = no_colour.replace(b"<h4>Oranje:", b"<h4>")
    for body, message in (
        (document[: len(document) // 2], "malformed XML"),
        (b"<html><body>Service unavailable</body></html>", "expected a <document> root element"),
        (b"", "the document is empty"),
        (no_colour, "BFA: no colour code"),
        (
            document.replace(b"<isocode>BFA</isocode>", b"<isocode>ZZZ</isocode>"),
            "unknown isocode 'ZZZ'",
        ),
        (
            document.replace(b"2026-09-24T07:15:53.695Z", b"gisteren"),
            "bad lastmodified 'gisteren'",
        ),
        (LIST.read_bytes(), "this is the list"),
    ):
        with pytest.raises(ParseError, match=message) as caught:
            parse_document(body, url=URL, fetched_at=FETCHED_AT)
        assert "\n" not in str(caught.value)
    for body, message, kind in (
        (b"[]", "the list has no destinations", ContractError),
        (b'{"error": "rate limited"}', "expected the list", ParseError),
        (b"not json", "not JSON", ParseError),
        (document, "not the list", ParseError),
        (json.dumps(records() + records()[:1]).encode(), "ES is listed twice", ContractError),
    ):
        with pytest.raises(kind, match=message):
            parse_index(body, url=URL, fetched_at=FETCHED_AT)


def test_without_lastmodified_the_date_is_read_in_amsterdam() -> None:
    document = (
        BFA["09-24"]
        .read_bytes()
        .replace(b"<lastmodified>2026-09-24T07:15:53.695Z</lastmodified>", b"")
    )
    advisory = parse_document(document, url=URL, fetched_at=FETCHED_AT)
    # "Laatst gewijzigd op: 24-09-2026", midnight CEST (UTC+2).
    assert advisory.source_updated_at == datetime(2026, 9, 23, 22, 0, tzinfo=UTC)

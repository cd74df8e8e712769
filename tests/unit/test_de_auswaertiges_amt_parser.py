"""The Auswärtiges Amt parser on the real API documents (index and Nepal, 2026-07-11),
the real per-country HTML bodies of a third party's cache, and variations the spec allows."""

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
from advisories.sources.de_auswaertiges_amt import (
    MAPPING_VERSION,
    SOURCE_ID,
    parse_document,
    parse_file,
    parse_index,
    security_text,
)
from tests.fixtures_path import REAL_FIXTURES

CAPTURES = Path(__file__).resolve().parents[2] / "replay" / "captures" / "de_auswaertiges_amt"
INDEX = CAPTURES / "travelwarning_index_2026-07-11.json"
NEPAL = CAPTURES / "travelwarning_221216_nepal_2026-07-11.json"
CACHE = REAL_FIXTURES / "de_auswaertiges_amt"
URL = "https://www.auswaertiges-amt.de/opendata/travelwarning"
FETCHED_AT = datetime(2026, 7, 11, tzinfo=UTC)


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_bytes())
    return document


def dump(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_the_real_index() -> None:
    entries = parse_index(INDEX.read_bytes(), url=URL, fetched_at=FETCHED_AT)
    assert len(entries) == len({e.country for e in entries}) == 200
    assert Counter((e.level, e.has_regional) for e in entries) == {
        (Level.NORMAL_PRECAUTIONS, False): 155,
        (Level.NORMAL_PRECAUTIONS, True): 27,  # partialWarning
        (Level.DO_NOT_TRAVEL, False): 18,  # warning
    }
    by_country = {e.country: e for e in entries}
    assert by_country["NP"].document_path == "/opendata/travelwarning/221216"
    assert by_country["XK"].country_name == "Kosovo"  # iso3CountryCode XKX is no ISO code
    # Seconds since the epoch, as the real documents have them.
    assert by_country["GQ"].published_at == datetime(2025, 9, 5, 9, 8, 8, tzinfo=UTC)
    advisories = {
        a.country: a for a in parse_file(INDEX.read_bytes(), url=URL, fetched_at=FETCHED_AT)
    }
    assert (advisories["JP"].level, advisories["JP"].regional_level) == (1, 4)
    assert advisories["JP"].raw_level == "partialWarning"
    assert advisories["UA"].raw_level == "warning" and advisories["UA"].level == 4
    assert advisories["NP"].raw_level == "none"
    assert {a.mapping_version for a in advisories.values()} == {MAPPING_VERSION}


def test_the_real_nepal_document() -> None:
    advisory = parse_document(NEPAL.read_bytes(), url=URL + "/221216", fetched_at=FETCHED_AT)
    assert (advisory.source, advisory.country, advisory.level, advisory.regional_level) == (
        SOURCE_ID, "NP", Level.NORMAL_PRECAUTIONS, None,
    )  # fmt: skip
    assert advisory.source_updated_at == datetime(2026, 7, 9, 13, 47, 6, tzinfo=UTC)
    assert advisory.title == "Nepal: Reise- und Sicherheitshinweise"
    assert advisory.url == "https://www.auswaertiges-amt.de/opendata/travelwarning/221216"
    first, changes, security = advisory.summary.split("\n\n")
    assert first == "Reise- und Sicherheitshinweise (keine Reisewarnung)"
    assert changes.startswith("Letzte Änderungen: Sicherheit – Innenpolitische Lage")
    assert security.startswith("Sicherheit Terrorismus")
    # The info box every page opens with, and the sections after security, are left out.
    assert "Newsletter" not in security and "Einreise und Zoll" not in security
    with pytest.raises(ParseError, match="one country's document with content, got 200"):
        parse_document(INDEX.read_bytes(), url=URL, fetched_at=FETCHED_AT)
    with pytest.raises(ParseError, match="not the index"):
        parse_index(NEPAL.read_bytes(), url=URL, fetched_at=FETCHED_AT)


def test_flags_map_onto_the_scale() -> None:
    document = load(NEPAL)
    entry = document["response"]["221216"]
    cases = {
        (): (1, None, "none"),
        ("warning",): (4, None, "warning"),
        ("partialWarning",): (1, 4, "partialWarning"),
        ("situationWarning",): (3, None, "situationWarning"),
        ("situationPartWarning",): (1, 3, "situationPartWarning"),
        ("situationWarning", "partialWarning"): (3, 4, "partialWarning,situationWarning"),
        ("warning", "partialWarning"): (4, None, "warning,partialWarning"),
    }
    for flags, (level, regional, raw_level) in cases.items():
        for flag in ("warning", "partialWarning", "situationWarning", "situationPartWarning"):
            entry[flag] = flag in flags
        advisory = parse_document(dump(document), url=URL, fetched_at=FETCHED_AT)
        assert (advisory.level, advisory.regional_level, advisory.raw_level) == (
            level, regional, raw_level,
        ), flags  # fmt: skip


def test_what_the_spec_allows_besides_the_real_documents() -> None:
    index = load(INDEX)
    entry = index["response"]["221216"]
    # The spec's schema spells CountryCode / CountryName, and its timestamps are milliseconds.
    entry["CountryCode"] = entry.pop("countryCode")
    entry["CountryName"] = entry.pop("countryName")
    entry["lastModified"] = 1499681492000
    del index["response"]["contentList"]
    nepal = next(
        e for e in parse_index(dump(index), url=URL, fetched_at=FETCHED_AT) if e.country == "NP"
    )
    assert nepal.country_name == "Nepal"
    assert nepal.published_at == datetime(2017, 7, 10, 10, 11, 32, tzinfo=UTC)
    # Switched off or failing, the API answers an empty object.
    with pytest.raises(ContractError, match=r"answered \{\}"):
        parse_index(b"{}", url=URL, fetched_at=FETCHED_AT)


def test_bad_input_is_one_clear_error() -> None:
    def index_with(**changes: Any) -> bytes:
        index = copy.deepcopy(load(INDEX))
        index["response"]["221216"].update(changes)
        return dump(index)

    for body, message in (
        (index_with(warning="true"), r"entry 221216: warning is 'true', expected true or false"),
        (index_with(countryCode="ZZ"), r"entry 221216: unknown countryCode 'ZZ'"),
        (index_with(iso3CountryCode="IND"), r"countryCode 'NP' is NP but iso3CountryCode 'IND'"),
        (index_with(lastModified=None), r"lastModified is None, expected a Unix time"),
        (index_with(countryCode="IN", iso3CountryCode="IND"), r"are both IN"),
        (b"[]", r"expected the API's \{\"response\": ...\} object, got a JSON list"),
        (b'{"response": {"contentList": []}}', "lists no countries"),
        (b"not json", "not JSON"),
    ):
        with pytest.raises(ParseError, match=message) as caught:
            parse_file(body, url=URL, fetched_at=FETCHED_AT)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "capture",
    [
        "per-country_content_restructured_3countries_2026-08-18.json",
        "per-country_content_restructured_5entries_2026-05-05.json",
    ],
)
def test_real_page_bodies_of_a_third_party_cache(capture: str) -> None:
    """These caches keep the API's ``content`` HTML but not its envelope, flags or times."""
    cached: list[dict[str, Any]] = json.loads((CACHE / capture).read_bytes())
    with pytest.raises(ParseError, match="got a JSON list"):
        parse_file((CACHE / capture).read_bytes(), url=capture, fetched_at=FETCHED_AT)
    for page in cached:
        text = security_text(page["content"])
        assert text.startswith("Sicherheit"), page["countryName"]
        assert "Lagen können sich schnell verändern" not in text  # the info box
        # Libya is under a full travel warning, and its page's security heading says so.
        assert text.startswith("Sicherheit - Reisewarnung") == (page["countryName"] == "Libyen")


def test_a_markup_only_change_between_two_cache_dates_is_no_new_text() -> None:
    """Equatorial Guinea's page differs in its HTML between May and August 2026 (37483
    and 37429 characters) but not in what a reader sees: the summary stays the same, so
    storing it would make no new version."""

    def content(capture: str) -> str:
        pages = json.loads((CACHE / capture).read_bytes())
        [page] = [p for p in pages if p["countryName"] == "Äquatorialguinea"]
        return str(page["content"])

    may = content("per-country_content_restructured_5entries_2026-05-05.json")
    august = content("per-country_content_restructured_3countries_2026-08-18.json")
    assert (len(may), len(august)) == (37483, 37429)
    assert security_text(may) == security_text(august) != ""

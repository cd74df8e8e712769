"""Tests of `advisories.countries`: pure, against pycountry and the real US feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pycountry
import pytest

from advisories.countries import (
    KOSOVO,
    Destination,
    destination_from_name,
    destination_from_slug,
    from_alpha2,
    from_alpha3,
    from_name,
    from_slug,
    normalise_name,
)
from tests.fixtures_path import REAL_FIXTURES

US_FEED = REAL_FIXTURES / "us_state_dept" / "TAsTWs_2026-10-07.xml"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Côte d’Ivoire ", "cote d ivoire"),
        ("Cote d'Ivoire", "cote d ivoire"),
        ("The Kyrgyz Republic", "kyrgyz republic"),
        ("Switzerland  ", "switzerland"),
        ("Trinidad & Tobago", "trinidad and tobago"),
        ("St. Lucia", "saint lucia"),
        ("Saint Vincent and the Grenadines", "saint vincent and grenadines"),
        ("Holy See (Vatican City State)", "holy see"),
        ("Macau SAR", "macau"),
        ("Guinea-Bissau", "guinea bissau"),
        ("", ""),
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("sau", "SA"),
        ("ZMB", "ZM"),  # travel.state.gov's Country-Tag says "ZA" (FIPS) for Zambia
        ("zwe", "ZW"),
        ("zaf", "ZA"),
        ("xks", KOSOVO),
        ("cuw", "CW"),
        ("bes", "BQ"),
        ("ata", "AQ"),
        (" mmr ", "MM"),
        ("xqx", None),  # travel.state.gov's own code for Saba and Sint Eustatius
        ("abc", None),
        ("", None),
        ("sa", None),
        ("saud", None),
    ],
)
def test_from_alpha3(code: str, expected: str | None) -> None:
    assert from_alpha3(code) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("kn", "KN"), ("XK", KOSOVO), ("gb", "GB"), ("ZZ", None), ("1A", None), ("USA", None)],
)
def test_from_alpha2(code: str, expected: str | None) -> None:
    assert from_alpha2(code) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Spellings from the real US feed's titles.
        ("Burma", "MM"),
        ("Côte d’Ivoire", "CI"),
        ("The Bahamas", "BS"),
        ("The Gambia", "GM"),
        ("The Kyrgyz Republic", "KG"),
        ("Turkey", "TR"),
        ("Federated States of Micronesia", "FM"),
        ("Kosovo", KOSOVO),
        ("Macau", "MO"),
        ("Hong Kong", "HK"),
        ("Czechia", "CZ"),
        ("Eswatini", "SZ"),
        ("Democratic Republic of the Congo", "CD"),
        ("Republic of Congo", "CG"),
        ("Saint Barthelemy", "BL"),
        ("French Saint Martin", "MF"),
        ("Sint Maarten", "SX"),
        ("Curaçao", "CW"),
        ("São Tomé and Príncipe", "ST"),
        ("British Virgin Islands", "VG"),
        ("Kingdom of Denmark", "DK"),
        ("Laos", "LA"),
        ("Vietnam", "VN"),
        ("South Korea", "KR"),
        ("North Korea", "KP"),
        ("Russia", "RU"),
        ("Brunei", "BN"),
        ("Antarctica", "AQ"),
        ("Timor-Leste", "TL"),
        ("Cabo Verde", "CV"),
        ("Switzerland  ", "CH"),
        ("West Bank", "PS"),  # a part: the country it lies in
        ("Gaza", "PS"),
        # Other spellings the brief names.
        ("Turkiye", "TR"),
        ("Micronesia", "FM"),
        ("Cote d'Ivoire", "CI"),
        ("Holy See", "VA"),
        ("Macau Special Administrative Region (SAR)", "MO"),
        ("Republic of the Congo", "CG"),
        ("Trinidad & Tobago", "TT"),
        ("St Lucia", "LC"),
        # Near neighbours must not be confused (there is no fuzzy matching).
        ("Niger", "NE"),
        ("Nigeria", "NG"),
        ("Guinea", "GN"),
        ("Guinea-Bissau", "GW"),
        ("Equatorial Guinea", "GQ"),
        ("Papua New Guinea", "PG"),
        ("Dominica", "DM"),
        ("Dominican Republic", "DO"),
        ("Sudan", "SD"),
        ("South Sudan", "SS"),
        ("Congo", "CG"),
    ],
)
def test_from_name(name: str, expected: str) -> None:
    assert from_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Atlantis",
        "Nigerr",  # no fuzzy guess
        "French West Indies",  # a group: no single country
        "Israel, The West Bank and Gaza",  # a group too
        "North Kosovo area",
        "Yemen border",
        "Ceuta",
        "Mexico Travel Advisory",  # the parser strips the suffix, not this module
    ],
)
def test_from_name_unknown_or_not_one_country(name: str) -> None:
    assert from_name(name) is None


def test_destination_tells_parts_and_groups_from_countries() -> None:
    assert destination_from_name("Saudi Arabia") == Destination(("SA",))
    assert destination_from_name("West Bank") == Destination(("PS",), partial=True)
    assert destination_from_name("Saba and Sint Eustatius") == Destination(("BQ",), partial=True)
    assert destination_from_name("Bonaire") == Destination(("BQ",), partial=True)
    assert destination_from_name("French West Indies") == Destination(("GP", "MQ", "MF", "BL"))
    assert destination_from_name("Israel, The West Bank and Gaza") == Destination(("IL", "PS"))
    assert destination_from_name("Atlantis") is None


def test_destination_rejects_impossible_shapes() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Destination(())
    with pytest.raises(ValueError, match="exactly one"):
        Destination(("IL", "PS"), partial=True)


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        ("bosnia-and-herzegovina", "BA"),
        ("bosinia-and-herzegovina-travel-advisory.html", "BA"),  # misspelt in the feed
        ("solomon-island", "SB"),  # singular in the feed
        ("saint-kitts-and-nevis-travel-advisory.html", "KN"),
        ("papua-new-guinea", "PG"),
        ("Gaza", "PS"),
        ("west-bank", "PS"),
        ("denmark", "DK"),
        ("french-west-indies", None),
        ("israel-west-bank-and-gaza", None),
        ("atlantis-travel-advisory.html", None),
    ],
)
def test_from_slug(slug: str, expected: str | None) -> None:
    assert from_slug(slug) == expected


def test_destination_from_slug_keeps_groups() -> None:
    assert destination_from_slug("israel-west-bank-and-gaza") == Destination(("IL", "PS"))


def test_every_pycountry_name_resolves_to_its_own_country() -> None:
    # Guards the derived index against one name shadowing another country.
    for country in pycountry.countries:
        assert from_alpha3(country.alpha_3) == country.alpha_2
        assert from_alpha2(country.alpha_2) == country.alpha_2
        for attr in ("name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                assert from_name(value) == country.alpha_2, (attr, value)


def test_every_title_of_the_real_us_feed_resolves_and_agrees_with_its_link() -> None:
    items = ET.parse(US_FEED).getroot().findall("./channel/item")
    assert len(items) == 223
    for item in items:
        title = item.findtext("title") or ""
        name = re.split(r"\s+-\s+Level", title)[0].removesuffix(" Travel Advisory")
        destination = destination_from_name(name)
        assert destination is not None, title
        link_code = re.search(r"destination\.([a-z]+)\.html$", item.findtext("link") or "")
        if link_code and link_code[1] != "xqx":
            code = link_code[1]
            from_link = from_alpha2(code) if len(code) == 2 else from_alpha3(code)
            assert destination.codes == (from_link,), title

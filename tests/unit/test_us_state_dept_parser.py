"""Tests of the travel.state.gov RSS parser against the real capture of 2026-10-07.

The expected values were read off the feed by hand; see the comments for
where each comes from.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pycountry
import pytest

from advisories.countries import KOSOVO
from advisories.errors import ContractError, ParseError
from advisories.models import Advisory, Level
from advisories.sources.us_state_dept import SOURCE_ID as SOURCE
from advisories.sources.us_state_dept import parse_file, parse_index
from tests.fixtures_path import REAL_FIXTURES

FEED_PATH: Path = REAL_FIXTURES / "us_state_dept" / "TAsTWs_2026-10-07.xml"
URL = "https://travel.state.gov/_res/rss/TAsTWs.xml"
FETCHED_AT = datetime(2026, 10, 7, 21, 5, tzinfo=UTC)
AEM = "https://travel.state.gov/content/tsg_aem/us/en/home/international-travel/travel-advisories"
LEGACY = "https://travel.state.gov/content/travel/en/traveladvisories/traveladvisories"


def parse(body: bytes) -> list[Advisory]:
    return parse_file(body, url=URL, fetched_at=FETCHED_AT)


@pytest.fixture(scope="module")
def feed() -> bytes:
    return FEED_PATH.read_bytes()


@pytest.fixture(scope="module")
def advisories(feed: bytes) -> list[Advisory]:
    return parse(feed)


@pytest.fixture(scope="module")
def by_code(advisories: list[Advisory]) -> dict[str, Advisory]:
    return {a.country: a for a in advisories}


# --- counts -------------------------------------------------------------------


def test_feed_has_223_items(feed: bytes) -> None:
    assert len(ET.fromstring(feed).findall("./channel/item")) == 223


def test_one_advisory_per_country(advisories: list[Advisory]) -> None:
    # 223 items - 7 stale duplicates = 216 destinations; of those, French West
    # Indies (2024) is superseded by Guadeloupe, Martinique, French Saint Martin
    # and Saint Barthelemy (2026), West Bank + Gaza are one PS, and Bonaire +
    # Saba and Sint Eustatius are one BQ: 216 - 3 = 213 countries.
    codes = [a.country for a in advisories]
    assert len(codes) == 213
    assert len(set(codes)) == 213
    assert codes == sorted(codes)


def test_every_code_is_iso_alpha2_or_kosovo(advisories: list[Advisory]) -> None:
    for advisory in advisories:
        assert advisory.country == KOSOVO or pycountry.countries.get(alpha_2=advisory.country)
    assert KOSOVO in {a.country for a in advisories}


def test_level_histogram(advisories: list[Advisory]) -> None:
    # From the 223 titles: {1: 85, 2: 86, 3: 27, 4: 25}; the duplicates remove
    # two 1s, four 2s and one 4; French West Indies a 1; Bonaire + Saba a 1;
    # West Bank (3) + Gaza (4) leave a 3.
    assert Counter(int(a.level) for a in advisories) == {1: 81, 2: 82, 3: 27, 4: 23}


def test_every_level_matches_its_items_title(feed: bytes, advisories: list[Advisory]) -> None:
    titles = {
        i.findtext("link"): i.findtext("title") or "" for i in ET.fromstring(feed).iter("item")
    }
    for advisory in advisories:
        title = titles[advisory.url]
        assert re.search(rf"Level {int(advisory.level)}: ", title), (advisory.country, title)
        assert advisory.raw_level in title


def test_regional_histogram(advisories: list[Advisory]) -> None:
    regional = Counter(a.regional_level and int(a.regional_level) for a in advisories)
    assert regional == {None: 162, 4: 37, 3: 10, 2: 4}
    for advisory in advisories:
        if advisory.regional_level is not None:
            assert advisory.regional_level > advisory.level


# --- specific countries ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name", "level", "regional"),
    [
        # Level 3 with "Do Not Travel to the Yemen border due to threat of terrorism."
        ("SA", "Saudi Arabia", 3, 4),
        # Country-Tag "ZA" is FIPS for Zambia; ISO ZA is South Africa.
        ("ZM", "Zambia", 1, None),
        ("ZA", "South Africa", 2, None),
        ("ZW", "Zimbabwe", 2, None),  # Country-Tag "ZI"
        # Country-Tag "KN" is FIPS for North Korea; ISO KN is Saint Kitts and Nevis.
        ("KP", "North Korea", 4, None),
        ("KN", "Saint Kitts and Nevis", 1, None),
        ("CH", "Switzerland", 1, None),
        ("CI", "Côte d’Ivoire", 2, None),
        ("MM", "Burma", 4, None),
        ("XK", "Kosovo", 2, 3),  # "Reconsider travel to North Kosovo area due to ..."
        ("MX", "Mexico", 2, None),  # the feed's description names no areas
        ("CO", "Colombia", 3, 4),  # "Do Not Travel to:" Arauca, Cauca, ...
        ("GE", "Georgia", 1, 4),  # "Do Not Travel To:" South Ossetia and Abkhazia
        ("ES", "Spain", 2, 3),  # "Reconsider travel to Ceuta due to unrest."
        ("TH", "Thailand", 1, 2),  # "Exercise Increased Caution in the Yala, ..."
        ("FJ", "Fiji", 1, 2),  # heading "Colo I Suva Forest Park - Level 2: ..."
        ("IL", "Israel", 3, 4),  # "Do Not Travel within 11.3 kilometers ... of the Gaza Strip"
        ("KW", "Kuwait", 3, None),  # "off the beaten path" is landmine advice, not an area
        ("CN", "China", 2, None),  # "Reconsider travel to Macau SAR": Macau has its own
        ("MO", "Macau", 3, None),
        ("HK", "Hong Kong", 2, None),
        ("AF", "Afghanistan", 4, None),
        ("HT", "Haiti", 4, None),
        ("DK", "Kingdom of Denmark", 2, None),
        ("GL", "Greenland", 2, None),
        ("CW", "Curaçao", 1, None),
        ("AQ", "Antarctica", 2, None),
        ("GP", "Guadeloupe", 1, None),
        ("BL", "Saint Barthelemy", 1, None),
    ],
)
def test_country(
    by_code: dict[str, Advisory], code: str, name: str, level: int, regional: int | None
) -> None:
    advisory = by_code[code]
    assert advisory.country_name == name
    assert advisory.level == Level(level)
    assert advisory.regional_level == (None if regional is None else Level(regional))
    assert advisory.source == SOURCE == "us_state_dept"


def test_level_4_countries_have_no_regional_level(advisories: list[Advisory]) -> None:
    assert all(a.regional_level is None for a in advisories if a.level is Level.DO_NOT_TRAVEL)


def test_saudi_arabia_in_full(by_code: dict[str, Advisory]) -> None:
    advisory = by_code["SA"]
    assert advisory.title == "Saudi Arabia - Level 3: Reconsider Travel"
    assert advisory.raw_level == "Level 3: Reconsider Travel"
    assert advisory.url == f"{AEM}/destination.sau.html"
    assert advisory.source_updated_at == datetime(2026, 9, 15, tzinfo=UTC)
    # "Reconsider travel<p>to <b>Saudi Arabia</b> due to risk of<b> Iranian ..."
    assert advisory.summary.startswith(
        "Reconsider travel to Saudi Arabia due to risk of Iranian drone and missile targeting"
    )
    assert advisory.summary.endswith(
        "Do Not Travel to the Yemen border due to threat of terrorism."
    )


def test_switzerland_title_has_no_double_space(by_code: dict[str, Advisory]) -> None:
    assert by_code["CH"].title == "Switzerland - Level 1: Exercise Normal Precautions"


def test_mexico_name_drops_travel_advisory(by_code: dict[str, Advisory]) -> None:
    assert by_code["MX"].title == "Mexico Travel Advisory - Level 2: Exercise Increased Caution"
    assert by_code["MX"].country_name == "Mexico"


def test_doubled_level_in_title_gives_one_raw_level(by_code: dict[str, Advisory]) -> None:
    israel = by_code["IL"]
    assert israel.title == "Israel - Level 3: Reconsider Travel - Level 3: Reconsider Travel"
    assert israel.raw_level == "Level 3: Reconsider Travel"
    assert israel.url == f"{LEGACY}/israel-west-bank-and-gaza-travel-advisory.html"


@pytest.mark.parametrize(
    ("code", "url", "published"),
    [
        # Cambodia: AEM 2026-09-15 beats legacy 2025-07-25.
        ("KH", f"{AEM}/destination.khm.html", datetime(2026, 9, 15, tzinfo=UTC)),
        # The other six are same-day ties: the AEM link wins.
        ("BA", f"{AEM}/destination.bih.html", datetime(2026, 8, 27, tzinfo=UTC)),
        ("KN", f"{AEM}/destination.kn.html", datetime(2026, 7, 7, tzinfo=UTC)),
        ("TN", f"{AEM}/destination.tun.html", datetime(2026, 5, 21, tzinfo=UTC)),
        ("SI", f"{AEM}/destination.svn.html", datetime(2026, 5, 15, tzinfo=UTC)),
        ("NA", f"{AEM}/destination.nam.html", datetime(2026, 5, 15, tzinfo=UTC)),
        ("MM", f"{AEM}/destination.mmr.html", datetime(2026, 5, 8, tzinfo=UTC)),
    ],
)
def test_duplicates_resolve_to_the_newest_item(
    by_code: dict[str, Advisory], code: str, url: str, published: datetime
) -> None:
    assert by_code[code].url == url
    assert by_code[code].source_updated_at == published


def test_french_west_indies_is_superseded_by_its_islands(by_code: dict[str, Advisory]) -> None:
    for code in ("GP", "MQ", "MF", "BL"):
        assert by_code[code].url.startswith(f"{AEM}/destination.")
        assert "French West Indies" not in by_code[code].title


def test_west_bank_and_gaza_are_one_palestine(by_code: dict[str, Advisory]) -> None:
    palestine = by_code["PS"]
    assert palestine.country_name == "West Bank / Gaza"
    assert palestine.level is Level.RECONSIDER_TRAVEL  # West Bank
    assert palestine.regional_level is Level.DO_NOT_TRAVEL  # Gaza
    assert palestine.raw_level == "Level 3: Reconsider Travel"
    assert (
        palestine.title == "West Bank - Level 3: Reconsider Travel / Gaza - Level 4: Do Not Travel"
    )
    assert palestine.url == f"{LEGACY}/west-bank.html"
    west_bank, gaza = palestine.summary.split("\n\n")
    assert west_bank.startswith("Reconsider Travel to West Bank due to terrorism and unrest.")
    assert gaza.startswith("Do Not Travel to Gaza due to terrorism,")


def test_bonaire_and_saba_are_one_caribbean_netherlands(by_code: dict[str, Advisory]) -> None:
    bq = by_code["BQ"]
    assert bq.country_name == "Bonaire / Saba and Sint Eustatius"
    assert bq.level is Level.NORMAL_PRECAUTIONS
    assert bq.regional_level is None
    assert bq.url == f"{AEM}/destination.bes.html"


def test_summaries_are_plain_collapsed_text(advisories: list[Advisory]) -> None:
    for advisory in advisories:
        for part in advisory.summary.split("\n\n"):
            assert part == part.strip()
            assert not re.search(r"\s{2,}|[\n\r\t\xa0]", part), advisory.country
        assert "<p>" not in advisory.summary and "&nbsp;" not in advisory.summary


def test_dates_are_utc_midnight(advisories: list[Advisory]) -> None:
    for advisory in advisories:
        offset = advisory.source_updated_at.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
        assert advisory.source_updated_at.time().isoformat() == "00:00:00"
    oldest = min(a.source_updated_at for a in advisories)
    assert oldest == datetime(2023, 6, 27, tzinfo=UTC)  # Zimbabwe


# --- determinism ------------------------------------------------------------------


def test_same_input_same_hashes(feed: bytes, advisories: list[Advisory]) -> None:
    again = parse_file(feed, url=URL, fetched_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert [a.content_hash for a in again] == [a.content_hash for a in advisories]
    assert again == advisories


def test_item_order_does_not_matter(feed: bytes, advisories: list[Advisory]) -> None:
    root = ET.fromstring(feed)
    channel = root.find("channel")
    assert channel is not None
    items = channel.findall("item")
    for item in items:
        channel.remove(item)
    channel.extend(reversed(items))
    reordered = parse(ET.tostring(root, encoding="utf-8"))
    assert [a.content_hash for a in reordered] == [a.content_hash for a in advisories]


# --- small synthetic feeds for edge cases and errors --------------------------------


def item(
    title: str = "Peru - Level 2: Exercise Increased Caution",
    link: str = f"{AEM}/destination.per.html",
    pub_date: str = "Fri, 04 Sep 2026",
    threat_level: str | None = "Level 2: Exercise Increased Caution",
    description: str = "<p>Exercise increased caution in <b>Peru</b> due to crime.</p>",
) -> str:
    category = (
        "" if threat_level is None else f'<category domain="Threat-Level">{threat_level}</category>'
    )
    return (
        f"<item><title>{title}</title><link>{link}</link><pubDate>{pub_date}</pubDate>"
        f"<description><![CDATA[{description}]]></description>{category}"
        '<category domain="Country-Tag">XX</category></item>'
    )


def rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>travel.state.gov: Travel Advisories</title>{''.join(items)}</channel></rss>"
    ).encode()


def test_minimal_feed() -> None:
    [peru] = parse(rss(item()))
    assert (peru.country, peru.level, peru.regional_level) == ("PE", Level(2), None)
    assert peru.summary == "Exercise increased caution in Peru due to crime."


def test_pubdate_with_time_and_offset_is_converted_to_utc() -> None:
    [peru] = parse(rss(item(pub_date="Wed, 07 Oct 2026 23:30:00 +0200")))
    assert peru.source_updated_at == datetime(2026, 10, 7, 21, 30, tzinfo=UTC)
    [peru] = parse(rss(item(pub_date="Wed, 07 Oct 2026 21:02:01 GMT")))
    assert peru.source_updated_at == datetime(2026, 10, 7, 21, 2, 1, tzinfo=UTC)


def test_level_from_category_when_title_has_none() -> None:
    [peru] = parse(rss(item(title="Peru")))
    assert peru.level is Level.INCREASED_CAUTION
    assert peru.raw_level == "Level 2: Exercise Increased Caution"


def test_tie_goes_to_the_aem_link_whatever_the_order() -> None:
    legacy = item(link=f"{LEGACY}/peru-travel-advisory.html")
    for order in ((legacy, item()), (item(), legacy)):
        [peru] = parse(rss(*order))
        assert peru.url == f"{AEM}/destination.per.html"


def test_newer_legacy_item_beats_older_aem_item() -> None:
    legacy = item(link=f"{LEGACY}/peru-travel-advisory.html", pub_date="Sat, 05 Sep 2026")
    [peru] = parse(rss(item(), legacy))
    assert peru.url == f"{LEGACY}/peru-travel-advisory.html"


def test_newer_part_beside_an_older_whole_is_a_contract_error() -> None:
    whole = item(
        title="Palestinian Territories - Level 3: Reconsider Travel",
        link=f"{AEM}/destination.pse.html",
        threat_level="Level 3: Reconsider Travel",
        pub_date="Mon, 01 Jun 2026",
    )
    part = item(
        title="Gaza - Level 4: Do Not Travel",
        link=f"{LEGACY}/Gaza.html",
        threat_level="Level 4: Do Not Travel",
    )
    with pytest.raises(ContractError, match=r"PS: .*Palestinian Territories.*Gaza"):
        parse(rss(whole, part))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        b"\x00\xff\xfe garbage",
        b"<!DOCTYPE html><html><body><p>Service Unavailable<br></body></html>",
        b"<html><body><p>Not RSS</p></body></html>",
        b"<rss version='2.0'></rss>",
        b"<rss version='2.0'><channel><item>",
    ],
    ids=["empty", "blank", "garbage", "html", "xhtml", "no-channel", "truncated"],
)
def test_broken_documents_are_parse_errors(body: bytes) -> None:
    with pytest.raises(ParseError) as raised:
        parse(body)
    assert not isinstance(raised.value, ContractError)
    assert (raised.value.source, raised.value.url) == ("us_state_dept", URL)


def test_feed_without_items_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="no <item>"):
        parse(rss())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"title": "Atlantis - Level 2: Exercise Increased Caution", "link": f"{AEM}/x.html"},
            r"item 2 \('Atlantis - Level 2.*cannot resolve the country of 'Atlantis'",
        ),
        (
            {"title": "Atlantis - Level 2: X", "link": f"{AEM}/destination.xyz.html"},
            r"item 2 .*cannot resolve the country",
        ),
        (
            {"title": "France - Level 2: Exercise Increased Caution"},
            r"item 2 .*'France' is FR but the link .* is PE",
        ),
        ({"title": "Peru", "threat_level": None}, r"item 2 \('Peru'\): no advisory level"),
        ({"threat_level": "Level 3: Reconsider Travel"}, r"item 2 .*title says level 2"),
        ({"pub_date": "sometime in September"}, r"item 2 .*bad <pubDate>"),
        ({"pub_date": "Mon, 31 Feb 2026"}, r"item 2 .*bad <pubDate>"),
        ({"pub_date": ""}, r"item 2 .*no <pubDate>"),
        ({"link": ""}, r"item 2 .*no <link>"),
        ({"title": " "}, r"item 2 .*no <title>"),
    ],
)
def test_bad_item_is_a_parse_error_that_names_it(kwargs: dict[str, Any], message: str) -> None:
    good = item(
        title="Chile - Level 2: Exercise Increased Caution", link=f"{AEM}/destination.chl.html"
    )
    with pytest.raises(ParseError, match=message):
        parse(rss(good, item(**kwargs)))


def test_external_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel>'
        + item(description="&x;").replace("<![CDATA[&x;]]>", "&x;")
        + "</channel></rss>"
    ).encode()
    [peru] = parse(body)
    assert peru.summary == ""  # the entity is left unexpanded, so no text


def test_regional_statements() -> None:
    description = (
        "Exercise increased caution<p>in <b>Peru</b> due to crime.</p>"
        "<p><b>Do not travel outside</b> Lima after nightfall.</p>"  # a time, not an area
        "<ul><li>Do not travel to areas off the beaten path.</li></ul>"  # no reason
        "<p><b>Reconsider travel to</b> Ecuador due to crime.</p>"  # another country
        "<p><b>Reconsider travel to</b> the VRAEM due to crime.</p>"
    )
    [peru] = parse(rss(item(description=description)))
    assert peru.regional_level is Level.RECONSIDER_TRAVEL
    heading = "<p><b>Do Not Travel to:</b></p><ul><li>The VRAEM</li></ul>"
    [peru] = parse(rss(item(description=description + heading)))
    assert peru.regional_level is Level.DO_NOT_TRAVEL


def test_index_entries_carry_the_complete_advisories(feed: bytes) -> None:
    entries = parse_index(feed, url=URL, fetched_at=FETCHED_AT)
    advisories = parse_file(feed, url=URL, fetched_at=FETCHED_AT)
    assert [e.country for e in entries] == [a.country for a in advisories]
    assert all(e.document_path is None for e in entries)
    assert [e.advisory for e in entries] == advisories
    assert [e.entry_hash for e in entries] == [a.content_hash for a in advisories]

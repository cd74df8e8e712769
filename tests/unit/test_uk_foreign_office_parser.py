"""Tests of the GOV.UK Content API parser against the real captures.

Expected values were read off the documents by hand (alert_status,
public_updated_at, title); the comments say where each comes from.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from advisories.errors import ContractError, ParseError
from advisories.models import Advisory, Level
from advisories.parsers import parser_for
from advisories.sources.uk_foreign_office import SOURCE_ID as SOURCE
from advisories.sources.uk_foreign_office import parse_document, parse_file, parse_index
from tests.fixtures_path import shared_fixtures

UK: Path = shared_fixtures(SOURCE)
URL = "https://www.gov.uk/api/content/foreign-travel-advice/x"
FETCHED_AT = datetime(2026, 10, 8, tzinfo=UTC)


def body_of(name: str) -> bytes:
    return (UK / name).read_bytes()


def json_of(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body_of(name))
    return data


def parse(body: bytes) -> Advisory:
    return parse_document(body, url=URL, fetched_at=FETCHED_AT)


def parse_json(document: dict[str, Any]) -> Advisory:
    return parse(json.dumps(document).encode())


def index_body() -> bytes:
    return body_of("content_api_index_govuk-schema-example.json")


# --- per-country documents ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "country", "level", "regional", "raw_level", "updated"),
    [
        # alert_status [] ("no FCDO warnings").
        ("content_api_hong-kong_2026-10-07.json", "HK", 1, None, "", "2026-04-01T15:59:28"),
        # [avoid_all_travel_to_whole_country].
        (
            "content_api_haiti_2026-10-07.json",
            "HT",
            4,
            None,
            "avoid_all_travel_to_whole_country",
            "2025-12-10T13:57:03",
        ),
        # [avoid_all_travel_to_parts]: within 10 km of the Syrian border.
        (
            "content_api_turkey_2026-10-07.json",
            "TR",
            1,
            4,
            "avoid_all_travel_to_parts",
            "2026-09-21T13:00:49",
        ),
        # [avoid_all_travel_to_parts] although the text also has an
        # all-but-essential area: the stricter code decides.
        (
            "content_api_cote-d-ivoire_2026-10-07.json",
            "CI",
            1,
            4,
            "avoid_all_travel_to_parts",
            "2026-05-29T15:11:15",
        ),
        # 2017 Turkey: alert_status [] although its summary advises against all
        # travel near the Syrian border (the mapping follows alert_status).
        ("content_api_turkey_govuk-schema-example.json", "TR", 1, None, "", "2017-02-14T15:33:43"),
        ("content_api_albania_govuk-schema-example.json", "AL", 1, None, "", "2017-02-14T15:42:21"),
        # public_updated_at "2015-04-28T17:11:23+01:00".
        (
            "content_api_antarctica_no-parts_govuk-schema-example.json",
            "AQ",
            1,
            None,
            "",
            "2015-04-28T16:11:23",
        ),
    ],
)
def test_country_documents(
    name: str, country: str, level: int, regional: int | None, raw_level: str, updated: str
) -> None:
    advisory = parse(body_of(name))
    assert advisory.source == SOURCE
    assert advisory.country == country
    assert advisory.level == Level(level)
    assert advisory.regional_level == (None if regional is None else Level(regional))
    assert advisory.raw_level == raw_level
    assert advisory.source_updated_at == datetime.fromisoformat(updated).replace(tzinfo=UTC)
    assert advisory.source_updated_at.tzinfo is UTC
    assert advisory.withdrawn is False
    assert advisory.summary


def test_hong_kong_fields() -> None:
    advisory = parse(body_of("content_api_hong-kong_2026-10-07.json"))
    assert advisory.country_name == "Hong Kong"
    assert advisory.title == "Hong Kong (SAR of China) travel advice"
    assert advisory.url == "https://www.gov.uk/foreign-travel-advice/hong-kong"
    # change_description, labelled, then the "Warnings and insurance" part.
    assert advisory.summary.startswith(
        "Latest update: Updated information on dual Chinese-British nationality"
    )
    assert "\n\nThis travel advice covers the Hong Kong Special Administrative Region (SAR)." in (
        advisory.summary
    )
    assert "<" not in advisory.summary
    assert "  " not in advisory.summary


def test_cote_d_ivoire_keeps_the_sources_name() -> None:
    advisory = parse(body_of("content_api_cote-d-ivoire_2026-10-07.json"))
    assert advisory.country_name == "Côte d'Ivoire"
    assert advisory.title == "Côte d'Ivoire travel advice"


def test_source_time_is_public_updated_at_not_details_updated_at() -> None:
    document = json_of("content_api_turkey_2026-10-07.json")
    # details.updated_at moves on every republish; public_updated_at is the
    # "latest update" GOV.UK shows.
    assert document["details"]["updated_at"] == "2026-10-07T12:55:35Z"
    assert document["public_updated_at"] == "2026-09-21T14:00:49+01:00"
    advisory = parse_json(document)
    assert advisory.source_updated_at == datetime(2026, 9, 21, 13, 0, 49, tzinfo=UTC)
    document["details"]["updated_at"] = "2026-10-08T00:00:00Z"
    assert parse_json(document) == advisory


def test_withdrawn_albania() -> None:
    advisory = parse(body_of("content_api_albania_withdrawn_govuk-schema-example.json"))
    assert advisory.withdrawn is True
    assert advisory.country == "AL"
    assert advisory.level is Level.NORMAL_PRECAUTIONS  # as published
    assert advisory.summary.startswith(
        "Withdrawn: This information has been archived as it is now out of date.\n\n"
    )
    live = parse(body_of("content_api_albania_govuk-schema-example.json"))
    assert advisory.content_hash != live.content_hash


def test_an_empty_withdrawn_notice_is_not_a_withdrawal() -> None:
    # Every live capture carries "withdrawn_notice": {}.
    assert json_of("content_api_haiti_2026-10-07.json")["withdrawn_notice"] == {}
    assert parse(body_of("content_api_haiti_2026-10-07.json")).withdrawn is False


def test_no_parts_antarctica() -> None:
    document = json_of("content_api_antarctica_no-parts_govuk-schema-example.json")
    assert document["details"]["parts"] == []
    advisory = parse_json(document)
    assert advisory.summary == "Latest update: Info about the cold."
    del document["details"]["parts"]
    assert parse_json(document) == advisory


def test_both_summary_layouts_give_the_same_advisory() -> None:
    # Pre-2025: details.summary; 2025: a part with slug "summary". Same content.
    old = parse(body_of("content_api_albania_govuk-schema-example_pre2025-format.json"))
    new = parse(body_of("content_api_albania_govuk-schema-example.json"))
    assert old.level == new.level == Level.NORMAL_PRECAUTIONS
    assert "The main opposition party has called for mass protests" in old.summary
    assert old.summary == new.summary
    assert old.content_hash == new.content_hash


def test_without_summary_keeps_the_latest_update() -> None:
    advisory = parse(body_of("content_api_albania_without-summary_govuk-schema-example.json"))
    assert advisory.summary.startswith("Latest update: Summary – the main opposition party")
    assert "Over 80,000 British nationals" not in advisory.summary
    assert advisory.level is Level.NORMAL_PRECAUTIONS


def test_current_layout_summary_is_the_warnings_part() -> None:
    advisory = parse(body_of("content_api_haiti_2026-10-07.json"))
    assert "FCDO advises against all travel to Haiti" in advisory.summary


def test_the_two_turkeys_differ_in_regional_level_and_hash() -> None:
    old = parse(body_of("content_api_turkey_govuk-schema-example.json"))
    new = parse(body_of("content_api_turkey_2026-10-07.json"))
    assert old.country == new.country == "TR"
    assert old.content_hash != new.content_hash
    # The classification-relevant difference: a regional warning appears.
    assert (old.level, old.regional_level) == (Level.NORMAL_PRECAUTIONS, None)
    assert (new.level, new.regional_level) == (Level.NORMAL_PRECAUTIONS, Level.DO_NOT_TRAVEL)
    assert (old.raw_level, new.raw_level) == ("", "avoid_all_travel_to_parts")
    assert old.source_updated_at < new.source_updated_at


@pytest.mark.parametrize(
    ("alert_status", "level", "regional"),
    [
        ([], 1, None),
        (["avoid_all_but_essential_travel_to_parts"], 1, 3),
        (["avoid_all_but_essential_travel_to_parts", "avoid_all_travel_to_parts"], 1, 4),
        (["avoid_all_but_essential_travel_to_whole_country"], 3, None),
        (["avoid_all_but_essential_travel_to_whole_country", "avoid_all_travel_to_parts"], 3, 4),
        # Parts no stricter than the whole country are not a regional level.
        (["avoid_all_travel_to_whole_country", "avoid_all_but_essential_travel_to_parts"], 4, None),
        (["avoid_all_travel_to_whole_country"], 4, None),
    ],
)
def test_alert_status_mapping(alert_status: list[str], level: int, regional: int | None) -> None:
    document = json_of("content_api_hong-kong_2026-10-07.json")
    document["details"]["alert_status"] = alert_status
    advisory = parse_json(document)
    assert advisory.level == Level(level)
    assert advisory.regional_level == (None if regional is None else Level(regional))
    assert advisory.raw_level == ",".join(alert_status)


def test_parse_file_of_a_country_document() -> None:
    body = body_of("content_api_haiti_2026-10-07.json")
    assert parse_file(body, url=URL, fetched_at=FETCHED_AT) == [parse(body)]


def test_registered() -> None:
    assert parser_for("uk_foreign_office").parse_document is parse_document


# --- the index ----------------------------------------------------------------------


def test_index_lists_seven_children() -> None:
    entries = parse_index(index_body(), url=URL, fetched_at=FETCHED_AT)
    assert [(e.country, e.country_name, e.document_path) for e in entries] == [
        ("AF", "Afghanistan", "/api/content/foreign-travel-advice/afghanistan"),
        ("AT", "Austria", "/api/content/foreign-travel-advice/austria"),
        ("FI", "Finland", "/api/content/foreign-travel-advice/finland"),
        ("IN", "India", "/api/content/foreign-travel-advice/india"),
        ("MY", "Malaysia", "/api/content/foreign-travel-advice/malaysia"),
        ("ST", "São Tomé and Principe", "/api/content/foreign-travel-advice/sao-tome-and-principe"),
        ("ES", "Spain", "/api/content/foreign-travel-advice/spain"),
    ]
    # São Tomé's public_updated_at is "2015-12-08T17:02:23Z"; the others midnight UTC.
    assert entries[5].published_at == datetime(2015, 12, 8, 17, 2, 23, tzinfo=UTC)
    assert entries[0].published_at == datetime(2015, 1, 1, tzinfo=UTC)
    # The index states no alert status.
    assert all(e.level is None and e.has_regional is None for e in entries)
    assert all(e.advisory is None and not e.withdrawn for e in entries)
    assert len({e.entry_hash for e in entries}) == 7


def test_parse_file_of_the_index_says_what_it_is() -> None:
    with pytest.raises(ParseError, match="travel_advice_index document: it lists 7 countries"):
        parse_file(index_body(), url=URL, fetched_at=FETCHED_AT)


def test_entry_hash_follows_the_childs_meaningful_fields_only() -> None:
    document = json.loads(index_body())
    before = parse_index(json.dumps(document).encode(), url=URL, fetched_at=FETCHED_AT)

    noise = copy.deepcopy(document)
    for child in noise["links"]["children"]:
        child["api_url"] = child["api_url"].replace("www.dev.gov.uk", "www.gov.uk")
        child["content_id"] = "00000000-0000-0000-0000-000000000000"
    noise["updated_at"] = "2026-10-08T00:00:00Z"
    same = parse_index(json.dumps(noise).encode(), url=URL, fetched_at=FETCHED_AT)
    assert [e.entry_hash for e in same] == [e.entry_hash for e in before]

    changed = copy.deepcopy(document)
    changed["links"]["children"][2]["public_updated_at"] = "2026-10-08T09:00:00Z"
    changed["links"]["children"][3]["details"]["change_description"] = "Latest update: new."
    after = parse_index(json.dumps(changed).encode(), url=URL, fetched_at=FETCHED_AT)
    differs = [
        b.country for b, a in zip(before, after, strict=True) if b.entry_hash != a.entry_hash
    ]
    assert differs == ["FI", "IN"]
    assert after[2].published_at == datetime(2026, 10, 8, 9, tzinfo=UTC)


def test_index_child_with_alert_status_states_a_level() -> None:
    document = json.loads(index_body())
    document["links"]["children"][0]["details"]["alert_status"] = [
        "avoid_all_travel_to_whole_country"
    ]
    document["links"]["children"][1]["details"]["alert_status"] = ["avoid_all_travel_to_parts"]
    document["links"]["children"][2]["withdrawn"] = True
    entries = parse_index(json.dumps(document).encode(), url=URL, fetched_at=FETCHED_AT)
    assert (entries[0].level, entries[0].has_regional) == (Level.DO_NOT_TRAVEL, False)
    assert (entries[1].level, entries[1].has_regional) == (Level.NORMAL_PRECAUTIONS, True)
    assert entries[2].withdrawn is True


def test_empty_index_is_a_contract_error() -> None:
    document = json.loads(index_body())
    document["links"]["children"] = []
    with pytest.raises(ContractError, match="lists no countries"):
        parse_index(json.dumps(document).encode(), url=URL, fetched_at=FETCHED_AT)
    del document["links"]["children"]
    with pytest.raises(ContractError, match=r"no links\.children"):
        parse_index(json.dumps(document).encode(), url=URL, fetched_at=FETCHED_AT)


def test_index_with_a_country_twice_is_a_contract_error() -> None:
    document = json.loads(index_body())
    children = document["links"]["children"]
    children.append(copy.deepcopy(children[0]))
    with pytest.raises(ContractError, match="AF is listed twice"):
        parse_index(json.dumps(document).encode(), url=URL, fetched_at=FETCHED_AT)


def test_index_child_with_an_unknown_country_is_named() -> None:
    document = json.loads(index_body())
    child = document["links"]["children"][3]
    child["details"]["country"] = {"name": "Atlantis", "slug": "atlantis"}
    child["base_path"] = "/foreign-travel-advice/atlantis"
    with pytest.raises(ParseError, match=r"child 4 \('/foreign-travel-advice/atlantis'\)"):
        parse_index(json.dumps(document).encode(), url=URL, fetched_at=FETCHED_AT)


def test_parse_index_of_a_country_document_fails() -> None:
    with pytest.raises(ParseError, match="expected a travel_advice_index document"):
        parse_index(body_of("content_api_haiti_2026-10-07.json"), url=URL, fetched_at=FETCHED_AT)


# --- country resolution and bad input -------------------------------------------------


def test_country_from_synonyms_when_name_and_slug_are_unknown() -> None:
    document = json_of("content_api_cote-d-ivoire_2026-10-07.json")
    document["details"]["country"]["name"] = "Cote-d-Ivoire-ish"
    document["details"]["country"]["slug"] = "cdi"
    assert parse_json(document).country == "CI"  # synonyms: "Ivory Coast", "Cote d'Ivoire"


def test_country_name_and_slug_must_agree() -> None:
    document = json_of("content_api_haiti_2026-10-07.json")
    document["details"]["country"]["slug"] = "hong-kong"
    with pytest.raises(ParseError, match="country name 'Haiti' is HT but slug 'hong-kong' is HK"):
        parse_json(document)


def test_country_falls_back_to_the_base_path() -> None:
    document = json_of("content_api_haiti_2026-10-07.json")
    del document["details"]["country"]
    assert parse_json(document).country == "HT"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "the document is empty"),
        (b"  \n", "the document is empty"),
        (b"<html>not json</html>", "not JSON"),
        (b"\xff\xfe{", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"schema_name": "guide"}', "expected a travel_advice document, got schema 'guide'"),
        (b'{"schema_name": "travel_advice"}', "details is missing"),
    ],
)
def test_bad_input(body: bytes, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        parse(body)


def test_unknown_alert_code() -> None:
    document = json_of("content_api_haiti_2026-10-07.json")
    document["details"]["alert_status"] = ["avoid_swimming"]
    with pytest.raises(ParseError, match="unknown alert_status code 'avoid_swimming'"):
        parse_json(document)


@pytest.mark.parametrize(
    ("value", "match"),
    [(None, "public_updated_at is missing"), ("yesterday", "bad public_updated_at"),
     ("2026-09-21T14:00:49", "has no time zone")],
)  # fmt: skip
def test_bad_public_updated_at(value: str | None, match: str) -> None:
    document = json_of("content_api_turkey_2026-10-07.json")
    document["public_updated_at"] = value
    with pytest.raises(ParseError, match=match):
        parse_json(document)


def test_parse_file_rejects_other_schemas() -> None:
    with pytest.raises(ParseError, match="got schema 'guide'"):
        parse_file(b'{"schema_name": "guide"}', url=URL, fetched_at=FETCHED_AT)

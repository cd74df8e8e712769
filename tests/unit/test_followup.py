"""Which stored changes trigger cross-source follow-ups, and which runs they plan (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from temporalio.converter import DataConverter

from activities.types import (
    CountryOutcome,
    CountryResult,
    IndexResult,
    ScrapeSourceInput,
    ScrapeSourceResult,
)
from advisories.followup import (
    MAX_COUNTRIES_IN_ID,
    RaisedCountry,
    followup_workflow_id,
    is_trigger,
    plan_followups,
    raised_countries,
)


@dataclass(frozen=True)
class Change:
    country: str
    change_id: int
    kind: str
    level_before: int | None
    level_after: int
    regional_before: int | None = None
    regional_after: int | None = None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (Change("FR", 1, "raised", 1, 3), True),
        (Change("FR", 1, "raised", 2, 4), True),
        (Change("FR", 1, "raised", 3, 4), True),
        (Change("FR", 1, "raised", 1, 2), False),  # below the level
        (Change("FR", 1, "lowered", 4, 3), False),
        (Change("FR", 1, "text", 4, 4), False),
        (Change("FR", 1, "withdrawn", 3, 4), False),
        # A region newly at 4 while the country stays at 2.
        (Change("MX", 1, "regional", 2, 2, None, 4), True),
        (Change("MX", 1, "regional", 2, 2, 3, 4), True),
        # A regional level that is no stricter than before, or lower than the bar.
        (Change("MX", 1, "regional", 2, 2, 4, 3), False),
        (Change("MX", 1, "regional", 1, 1, None, 2), False),
        # The country rises to 3 under an existing regional 4: still a raise to 3.
        (Change("MX", 1, "raised", 2, 3, 4, 4), True),
        # A regional raise under a country already at 4 changes nothing that matters.
        (Change("AF", 1, "regional", 4, 4, None, 4), False),
    ],
)
def test_trigger_rule(change: Change, expected: bool) -> None:
    assert is_trigger(change, min_level=3) is expected


def test_new_countries_trigger_only_when_newly_listed() -> None:
    first_crawl = Change("SY", 7, "new", None, 4)
    assert not is_trigger(first_crawl, min_level=3)
    assert is_trigger(first_crawl, min_level=3, newly_listed=True)
    assert not is_trigger(Change("FR", 8, "new", None, 2), min_level=3, newly_listed=True)
    assert is_trigger(Change("MX", 9, "new", None, 2, None, 3), min_level=3, newly_listed=True)


def test_min_level_four_ignores_raises_to_three() -> None:
    changes = [Change("FR", 1, "raised", 1, 3), Change("HT", 2, "raised", 3, 4)]
    assert [r.country for r in raised_countries(changes, min_level=4)] == ["HT"]
    assert [r.country for r in raised_countries(changes, min_level=3)] == ["FR", "HT"]


def test_raised_countries_keeps_the_latest_change_per_country() -> None:
    changes = [
        Change("HT", 5, "raised", 2, 3),
        Change("HT", 9, "raised", 3, 4),
        Change("FR", 6, "text", 1, 1),
        Change("SY", 7, "new", None, 4),
        Change("YE", 8, "new", None, 4),
    ]
    assert raised_countries(changes, min_level=3, newly_listed={"YE"}) == [
        RaisedCountry("HT", 9, 4, "raised"),
        RaisedCountry("YE", 8, 4, "new"),
    ]


def test_bad_level_is_refused() -> None:
    with pytest.raises(ValueError, match="follow-up level must be 1-4, got 5"):
        raised_countries([], min_level=5)


def test_one_followup_per_other_source_listing_the_countries() -> None:
    raised = [RaisedCountry("HT", 12, 4, "raised"), RaisedCountry("FR", 11, 3, "raised")]
    listed = {
        "uk_foreign_office": {"FR", "HT", "DE"},
        "canada_travel": {"HT"},
        "us_state_dept": {"FR", "HT"},
        "de_auswaertiges_amt": {"DE"},  # lists neither: no follow-up
    }
    plans = plan_followups("uk_foreign_office", raised, listed)
    assert [(p.source, p.countries, p.change_ids, p.workflow_id) for p in plans] == [
        ("canada_travel", ("HT",), (12,), "followup-canada_travel-uk_foreign_office-HT-12"),
        (
            "us_state_dept",
            ("FR", "HT"),
            (11, 12),
            "followup-us_state_dept-uk_foreign_office-FR-11+HT-12",
        ),
    ]
    assert all(p.trigger == "uk_foreign_office" for p in plans)


def test_followups_plan_nothing_and_nothing_raised_plans_nothing() -> None:
    raised = [RaisedCountry("HT", 12, 4, "raised")]
    listed = {"canada_travel": {"HT"}}
    assert plan_followups("uk_foreign_office", raised, listed, is_followup=True) == []
    assert plan_followups("uk_foreign_office", [], listed) == []


def test_same_country_reported_twice_uses_its_latest_change() -> None:
    raised = [RaisedCountry("HT", 12, 3, "raised"), RaisedCountry("HT", 15, 4, "raised")]
    (plan,) = plan_followups("canada_travel", raised, {"us_state_dept": ["HT"]})
    assert plan.workflow_id == "followup-us_state_dept-canada_travel-HT-15"


def test_workflow_ids_are_deterministic_and_bounded() -> None:
    countries = [f"C{i:02d}" for i in range(MAX_COUNTRIES_IN_ID + 1)]
    ids = list(range(100, 100 + len(countries)))
    long_id = followup_workflow_id("us_state_dept", "canada_travel", countries, ids)
    assert long_id == "followup-us_state_dept-canada_travel-13countries-100-112"
    assert long_id == followup_workflow_id("us_state_dept", "canada_travel", countries, ids)
    assert followup_workflow_id("a", "b", ["PT-20"], [3]) == "followup-a-b-PT-20-3"
    with pytest.raises(ValueError, match="one change id per country"):
        followup_workflow_id("a", "b", [], [])


def test_payloads_recorded_before_follow_ups_still_load_and_new_ones_round_trip() -> None:
    # Histories of cycles that ran before follow-ups hold these payloads without the new fields.
    converter = DataConverter.default.payload_converter
    old: list[tuple[type, dict[str, object]]] = [
        (ScrapeSourceInput, {"source": "canada_travel", "countries": None}),
        (IndexResult, {"source": "canada_travel", "http_status": 304, "not_modified": True}),
        (CountryOutcome, {"country": "HT", "status": "ok", "versions_created": 1}),
        (CountryResult, {"country": "HT", "versions_created": 1}),
        (ScrapeSourceResult, {"source": "canada_travel", "not_modified": True, "items_seen": 1,
                              "versions_created": 0, "requests_made": 1}),
    ]  # fmt: skip
    for cls, fields in old:
        (payload,) = converter.to_payloads([fields])
        (value,) = converter.from_payloads([payload], [cls])
        assert isinstance(value, cls)
        if isinstance(value, ScrapeSourceInput):
            assert value.followup_of is None
        elif isinstance(value, ScrapeSourceResult):
            assert value.followups == []
        else:
            assert isinstance(value, IndexResult | CountryOutcome | CountryResult)
            assert value.raised == []
    raised = CountryOutcome("HT", "ok", raised=[RaisedCountry("HT", 12, 4, "raised")])
    (payload,) = converter.to_payloads([raised])
    assert converter.from_payloads([payload], [CountryOutcome]) == [raised]

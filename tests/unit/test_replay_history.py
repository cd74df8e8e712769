"""``replay.history`` on the real captures: counts checked against the raw documents.

Each expectation is read from the raw JSON of the captures (no parser), or is
a figure the research in ``replay/captures/SOURCES.md`` states; the counts
come from the sources' parsers and the project's change classification.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from advisories.changes import ChangeKind
from advisories.models import Advisory, Level
from advisories.sources import SOURCES, au_smartraveller
from advisories.sources._synthetic import SYNTHETIC_KEY
from replay import history
from replay._catalogue import capture_file, default_fixtures_root
from replay.history import HISTORIES, Change, count, read_versions, replay_versions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def raw(file: str) -> Any:
    return json.loads(capture_file(file, default_fixtures_root()).read_bytes())


def advisory(country: str, level: int, *, regional: int | None = None, text: str = "a",
             at: datetime = T0, withdrawn: bool = False) -> Advisory:  # fmt: skip
    return Advisory(
        source="test",
        country=country,
        country_name=country,
        level=Level(level),
        regional_level=None if regional is None else Level(regional),
        raw_level=str(level),
        title=f"{country} {level}",
        summary=text,
        url="https://example.invalid/",
        source_updated_at=at,
        withdrawn=withdrawn,
    )


def test_each_country_is_compared_with_its_last_version_seen() -> None:
    later = T0 + timedelta(days=1)
    steps = replay_versions(
        [
            [advisory("AA", 2), advisory("BB", 2), advisory("CC", 2), advisory("DD", 1)],
            [
                advisory("AA", 3),
                advisory("BB", 1),
                advisory("CC", 2, regional=4),
                advisory("EE", 1),
            ],
            [
                advisory("AA", 3, text="b"),
                advisory("BB", 1, at=later),
                advisory("CC", 2, regional=4, withdrawn=True),
                advisory("DD", 1),
                advisory("EE", 1),
            ],
        ],
        ["one", "two", "three"],
    )
    assert [s.counts()["new"] for s in steps] == [4, 1, 0]
    assert steps[1].changes == (
        Change("AA", ChangeKind.RAISED, 2, 3),
        Change("BB", ChangeKind.LOWERED, 2, 1),
        Change("CC", ChangeKind.REGIONAL, 2, 2),
        Change("EE", ChangeKind.NEW, None, 1),
    )
    # DD was not listed in "two": unlisted there, and back unchanged in "three".
    assert [s.unlisted for s in steps] == [0, 1, 0]
    assert [(c.country, c.kind) for c in steps[2].changes] == [
        ("AA", ChangeKind.TEXT),
        ("CC", ChangeKind.WITHDRAWN),
    ]
    assert [s.republished for s in steps] == [0, 0, 1]


def test_a_version_listing_a_country_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="lists AA twice"):
        replay_versions([[advisory("AA", 1), advisory("AA", 2)]], ["one"])


def test_canada_indexes_are_read_as_captured_the_2014_layout_included() -> None:
    canada = HISTORIES["canada_travel"]
    originals = [
        capture_file(v.file, default_fixtures_root()).read_bytes() for v in canada.versions
    ]
    assert read_versions(canada) == originals  # byte for byte
    for version, original in zip(canada.versions, originals, strict=True):
        data = json.loads(original)["data"]
        # 2014: entries keyed by code, no country-iso inside (the parser takes the key).
        keyed_only = version.label.startswith("2014")
        assert all(("country-iso" not in e) is keyed_only for e in data.values()), version.label


def raw_state_changes(before: str, after: str) -> list[tuple[str, int, int]]:
    """(code, state before, state after) where advisory-state differs, from the raw JSON."""
    old, new = raw(before)["data"], raw(after)["data"]
    return sorted(
        (key, old[key]["advisory-state"], entry["advisory-state"])
        for key, entry in new.items()
        if key in old and old[key]["advisory-state"] != entry["advisory-state"]
    )


def test_canada_counts_the_real_level_changes() -> None:
    canada = HISTORIES["canada_travel"]
    counted = count(canada)
    files = [v.file for v in canada.versions]
    for before, after, step in zip(files, files[1:], counted.steps[1:], strict=False):
        levels = [
            (c.country, (c.level_before or 0) - 1, c.level_after - 1)
            for c in step.changes
            if c.kind in (ChangeKind.RAISED, ChangeKind.LOWERED)
        ]
        assert sorted(levels) == raw_state_changes(before, after)
    # The research's figures (SOURCES.md): 12 level changes 2014-03 → 2014-10, these ones.
    assert raw_state_changes(files[0], files[1]) == sorted([
        ("BS", 0, 1), ("BI", 2, 1), ("GE", 1, 0), ("IQ", 2, 3), ("LR", 1, 2), ("LY", 2, 3),
        ("ML", 2, 1), ("MS", 1, 0), ("KN", 1, 0), ("VC", 1, 0), ("SL", 1, 2), ("SD", 3, 2),
    ])  # fmt: skip
    first = counted.steps[1].counts()
    assert (first["raised"], first["lowered"]) == (5, 7)
    # 2015-11-19 → 11-24: Mali 2 → 3 on Canada's scale, the only level change (shared SOURCES.md).
    assert [
        (c.country, c.level_before, c.level_after)
        for c in counted.steps[3].changes
        if c.kind is ChangeKind.RAISED
    ] == [("ML", 3, 4)]
    assert all(s.counts()["withdrawn"] == 0 and s.unlisted == 0 for s in counted.steps)


def test_canada_republications_are_entries_whose_stated_time_moved_alone() -> None:
    canada = HISTORIES["canada_travel"]
    counted = count(canada)
    before, after = (raw(v.file)["data"] for v in canada.versions[:2])
    # In 2014 ``timestamp`` moved by 6 h in 84 entries whose ``asp`` (what the parser reads,
    # with sub-second precision and its offset) did not: those are not republications.
    moved = {
        k for k in after if before[k]["date-published"]["asp"] != after[k]["date-published"]["asp"]
    }
    changed = {c.country for c in counted.steps[1].changes}
    assert changed <= moved
    assert counted.steps[1].republished == len(moved - changed) == 12


def test_germany_excerpt_leaves_countries_unlisted_never_withdrawn() -> None:
    germany = HISTORIES["de_auswaertiges_amt"]
    counted = count(germany)
    full, excerpt = (raw(v.file)["response"] for v in germany.versions)
    shared = [k for k in excerpt if k.isdigit()]
    moved = [k for k in shared if full[k]["lastModified"] != excerpt[k]["lastModified"]]
    flags = ("warning", "partialWarning", "situationWarning", "situationPartWarning")
    assert all(full[k][f] == excerpt[k][f] for k in shared for f in flags)
    step = counted.steps[1]
    assert step.listed == len(shared) == 17
    assert step.changes == ()  # no flag moved, and the index carries nothing else
    assert step.republished == len(moved) == 5
    assert step.unlisted == len([k for k in full if k.isdigit()]) - 17 == 183


def test_netherlands_republication_is_one_text_change_and_the_daily_restamp_none() -> None:
    netherlands = HISTORIES["nl_nederland_wereldwijd"]
    counted = count(netherlands)
    texts = [
        capture_file(v.file, default_fixtures_root()).read_text("utf-8")
        for v in netherlands.versions
    ]
    # 09-23 → 09-24 republished with new text; 10-07 is 09-24 with one date re-stamped.
    assert "Laatst gewijzigd op: 24-09-2026" in texts[1] and texts[1] != texts[0]
    assert (
        texts[2].replace("Nog steeds geldig op: 07-10-2026", "Nog steeds geldig op: 24-09-2026")
        == texts[1]
    )
    kinds = [{k: n for k, n in step.counts().items() if n} for step in counted.steps]
    assert kinds == [{"new": 1}, {"text": 1}, {}]
    assert counted.steps[2].republished == 0


def map_levels(file: str) -> dict[str, int]:
    return {a["country"]["alpha_2"]: a["level"] for a in raw(file)["advisories"]}


def test_smartraveller_exports_carry_each_derived_map_exactly_and_say_they_are_synthetic() -> None:
    australia = HISTORIES["au_smartraveller"]
    parse = SOURCES["au_smartraveller"].parser.parse_file
    for version, body in zip(australia.versions, read_versions(australia), strict=True):
        entries = json.loads(body)
        assert all(
            next(iter(e)) == SYNTHETIC_KEY and "SYNTHETIC" in e[SYNTHETIC_KEY] for e in entries
        )
        parsed = parse(body, url=version.file, fetched_at=T0)
        assert {a.country: int(a.level) for a in parsed} == map_levels(version.file)
        assert all(a.regional_level is None for a in parsed)


def test_smartraveller_changes_are_the_level_differences_between_maps() -> None:
    australia = HISTORIES["au_smartraveller"]
    counted = count(australia)
    files = [v.file for v in australia.versions]
    expected, seen = [], map_levels(files[0])
    for file in files[1:]:
        levels = map_levels(file)
        expected.append(sorted(
            (c, "raised" if n > seen[c] else "lowered", seen[c], n)
            for c, n in levels.items() if c in seen and seen[c] != n
        ))  # fmt: skip
        seen = {**seen, **levels}
    got = [
        sorted((c.country, c.kind.value, c.level_before, c.level_after) for c in step.changes)
        for step in counted.steps[1:]
    ]
    assert got == expected
    # The real changes the research names (SOURCES.md), and nothing for the one-run drop-outs.
    assert [c for step in got for c in step] == [
        ("IL", "raised", 3, 4), ("PS", "raised", 3, 4), ("KZ", "lowered", 2, 1),
        ("RS", "lowered", 2, 1), ("IL", "lowered", 4, 3), ("PS", "lowered", 4, 3),
    ]  # fmt: skip
    # One-run drop-outs of the derived maps: countries seen before that a map leaves out.
    known: set[str] = set()
    dropped = []
    for file in files:
        levels = map_levels(file)
        known |= set(levels)
        dropped.append(len(known - set(levels)))
    assert [s.unlisted for s in counted.steps] == dropped and sum(dropped) > 0


def test_smartraveller_changed_time_moves_only_with_the_level() -> None:
    australia = HISTORIES["au_smartraveller"]
    exports = [json.loads(b) for b in read_versions(australia)]
    israel = [next(e["changed"] for e in x if e["title"] == "Israel") for x in exports]
    # Raised on 2024-10-14 (12:20 UTC = 23:20 in Canberra), lowered on 2024-11-01.
    assert sorted(set(israel)) == sorted(
        {"Sat, 2024-10-05 14:58", "Mon, 2024-10-14 23:20", "Fri, 2024-11-01 17:05"}
    )


def test_a_map_with_a_country_the_export_lacks_is_refused() -> None:
    export = capture_file(au_smartraveller.EXPORT_CAPTURE, default_fixtures_root()).read_bytes()
    level_map = {"last_updated": "2024-10-05T04:58:07+00:00", "advisories": [
        {"country": {"name": "Atlantis", "alpha_2": "XA"}, "level": 1},
    ]}  # fmt: skip
    with pytest.raises(ValueError, match="no entry for XA"):
        history.smartraveller_exports([json.dumps(level_map).encode()], export)


def test_the_script_prints_every_registered_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert history.main([]) == 0
    printed = capsys.readouterr().out
    for source in SOURCES:
        assert f"| `{source}` |" in printed
    assert history.main(["--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [h["source"] for h in body] == list(SOURCES)
    canada = next(h for h in body if h["source"] == "canada_travel")
    assert len(canada["steps"]) == len(HISTORIES["canada_travel"].versions)
    assert canada["totals"]["raised"] + canada["totals"]["lowered"] == sum(
        len(s["level_changes"]) for s in canada["steps"]
    )


def test_readme_shows_the_table_the_script_prints() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Real histories", 1)[1].split("\n## ", 1)[0]
    shown = {line for line in section.splitlines() if line.startswith("| `")}
    printed = history.table(history.count_all()).splitlines()
    with_history = {line for line in printed if any(f"| `{s}` |" in line for s in HISTORIES)}
    # Every history row as printed now; a source added later without a history may be missing.
    assert with_history <= shown
    assert shown <= set(printed)

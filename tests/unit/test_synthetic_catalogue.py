"""Tests of the SYNTHETIC catalogue builder: every generated document is read
back with the project's parsers, through the replay server's directory lookup."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from advisories.models import Advisory, Level
from advisories.sources import (
    CANADA_TRAVEL,
    SOURCES,
    UK_FOREIGN_OFFICE,
    US_STATE_DEPT,
    IndexEntry,
    canada_travel,
    get_source,
    us_state_dept,
)
from advisories.sources.nl_nederland_wereldwijd import PAGE_ROWS as NL_PAGE_ROWS
from replay._catalogue import Catalogue
from replay.synthetic import (
    SMALL,
    SYNTHETIC_KEY,
    SYNTHETIC_NOTE,
    CatalogueSummary,
    build_catalogue,
    main,
    set_level,
)
from tests.fixtures_path import REAL_FIXTURES, shared_fixtures

FETCHED_AT = datetime(2026, 10, 8, tzinfo=UTC)
REPOSITORY = Path(__file__).resolve().parents[2]
UK = UK_FOREIGN_OFFICE.id
CA = CANADA_TRAVEL.id
US = US_STATE_DEPT.id
AU = "au_smartraveller"
DE = "de_auswaertiges_amt"


@dataclass
class Parsed:
    """One source of a catalogue, as the parsers read it."""

    index: dict[str, IndexEntry]
    documents: dict[str, Advisory]
    files: set[Path]  # per-country document files on disk


def build(root: Path, *, small: bool, seed: int = 0) -> CatalogueSummary:
    count = SMALL if small else None
    return build_catalogue(
        root, fixtures=REAL_FIXTURES, seed=seed, uk_countries=count, canada_destinations=count
    )


def read(root: Path, source: str) -> Parsed:
    """Parse a source's index and every document it points to, served by directory lookup."""
    catalogue = Catalogue(directory=root)
    spec = get_source(source)
    parser = spec.parser
    index_doc = catalogue.lookup(source, spec.index_path)
    assert index_doc is not None and index_doc.content_type == "application/json"
    entries = parser.parse_index(index_doc.body, url=spec.index_path, fetched_at=FETCHED_AT)
    documents = {}
    for entry in entries:
        assert entry.document_path is not None
        doc = catalogue.lookup(source, entry.document_path)
        assert doc is not None, entry.document_path
        advisory = parser.parse_document(doc.body, url=entry.document_path, fetched_at=FETCHED_AT)
        documents[advisory.country] = advisory
    files = {p for p in (root / source).rglob("*.json") if p.read_bytes() != index_doc.body}
    return Parsed({e.country: e for e in entries}, documents, files)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CatalogueSummary]:
    root = tmp_path_factory.mktemp("small") / "catalogue"
    return root, build(root, small=True)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CatalogueSummary]:
    root = tmp_path_factory.mktemp("full") / "catalogue"
    return root, build(root, small=False)


def test_counts(small: tuple[Path, CatalogueSummary], full: tuple[Path, CatalogueSummary]) -> None:
    small_summary, full_summary = small[1], full[1]
    assert set(small_summary.countries) == set(full_summary.countries) == set(SOURCES)
    real = {s for s, spec in SOURCES.items() if spec.synthetic.real}
    assert full_summary.real == small_summary.real == real >= {US, AU}
    for source, spec in SOURCES.items():
        if source in full_summary.real:  # the whole real capture, whatever the size
            assert small_summary.countries[source] == full_summary.countries[source]
            assert small_summary.documents[source] == full_summary.documents[source] == 1
            continue
        assert small_summary.countries[source] == SMALL
        # The index (a paged one, Nederland Wereldwijd's: a file per page) and, when the
        # source has them, one document per country.
        per_country = 1 if spec.document_path else 0
        for summary in (small_summary, full_summary):
            count = summary.countries[source]
            pages = 1 + count // NL_PAGE_ROWS if spec.index_pager else 1
            assert summary.documents[source] == pages + per_country * count
    assert {s: full_summary.countries[s] for s in (US, UK, CA, AU, DE)} == {
        US: 223, UK: 225, CA: 229, AU: 179, DE: 200,
    }  # fmt: skip
    assert "SYNTHETIC" in str(full_summary)
    assert f"{AU}: 179 countries, 1 documents (real capture, unmodified)" in str(full_summary)


@pytest.mark.parametrize("size", ["small", "full"])
@pytest.mark.parametrize("source", [UK, CA, DE])
def test_index_and_documents_agree(source: str, size: str, request: pytest.FixtureRequest) -> None:
    root, summary = request.getfixturevalue(size)
    parsed = read(root, source)
    assert len(parsed.index) == len(parsed.documents) == summary.countries[source]
    assert set(parsed.index) == set(parsed.documents)
    # Every document on disk is listed in the index (and vice versa, above).
    assert len(parsed.files) == len(parsed.index)
    for country, entry in parsed.index.items():
        advisory = parsed.documents[country]
        assert advisory.source_updated_at == entry.published_at, country
        if entry.level is not None:  # Canada's and Germany's indexes state levels; GOV.UK's not
            assert advisory.level == entry.level, country
            if advisory.level < Level.DO_NOT_TRAVEL:
                assert (advisory.regional_level is not None) == entry.has_regional, country


def test_uk_levels_are_spread(full: tuple[Path, CatalogueSummary]) -> None:
    documents = read(full[0], UK).documents
    levels = Counter(int(a.level) for a in documents.values())
    assert set(levels) == {1, 3, 4}
    assert levels[1] > levels[3] + levels[4]
    assert sum(a.regional_level is not None for a in documents.values()) > 20
    assert "GB" not in documents


def test_canada_keeps_the_real_index_destinations_and_levels(
    full: tuple[Path, CatalogueSummary],
) -> None:
    real = canada_travel.parse_index(
        (shared_fixtures(canada_travel.SOURCE_ID) / "index_cta-cap_2015-11-30.json").read_bytes(),
        url="real",
        fetched_at=FETCHED_AT,
    )
    synthetic = read(full[0], CA).index
    assert [e.country for e in real] == list(synthetic)
    assert [(e.level, e.has_regional) for e in real] == [
        (s.level, s.has_regional) for s in synthetic.values()
    ]
    # Times are new, whole minutes (so that friendly-date states them exactly).
    assert all(s.published_at and s.published_at.second == 0 for s in synthetic.values())


def test_small_catalogues_keep_every_level(small: tuple[Path, CatalogueSummary]) -> None:
    assert {int(a.level) for a in read(small[0], CA).documents.values()} == {1, 2, 3, 4}
    assert {int(a.level) for a in read(small[0], UK).documents.values()} == {1, 3, 4}
    # The real German index has no situation flag: 1, 1 with regional 4, and 4.
    german = read(small[0], DE).documents.values()
    assert {(int(a.level), a.regional_level) for a in german} == {(1, None), (1, 4), (4, None)}


def test_germany_keeps_the_real_index_countries_and_flags(
    full: tuple[Path, CatalogueSummary],
) -> None:
    real = get_source(DE).parser.parse_index(
        (
            REPOSITORY / "replay/captures/de_auswaertiges_amt/travelwarning_index_2026-07-11.json"
        ).read_bytes(),
        url="real",
        fetched_at=FETCHED_AT,
    )
    synthetic = read(full[0], DE)
    assert [e.country for e in real] == list(synthetic.index)
    assert [(e.level, e.has_regional, e.document_path) for e in real] == [
        (s.level, s.has_regional, s.document_path) for s in synthetic.index.values()
    ]
    assert all("SYNTHETIC" in a.summary for a in synthetic.documents.values())


def test_australia_is_the_real_export_unmodified(small: tuple[Path, CatalogueSummary]) -> None:
    export = Catalogue(directory=small[0]).lookup(AU, get_source(AU).index_path)
    assert export is not None and export.content_type == "application/json"
    assert (
        export.body
        == (REAL_FIXTURES / "au_smartraveller/destinations-export_2026-04-10.json").read_bytes()
    )


def test_us_feed_is_the_real_capture_unmodified(small: tuple[Path, CatalogueSummary]) -> None:
    catalogue = Catalogue(directory=small[0])
    feed = catalogue.lookup(US, US_STATE_DEPT.index_path)
    assert feed is not None
    assert feed.body == (REAL_FIXTURES / "us_state_dept/TAsTWs_2026-10-07.xml").read_bytes()
    assert len(us_state_dept.parse_file(feed.body, url="x", fetched_at=FETCHED_AT)) == 213


def test_every_generated_document_is_labelled_synthetic(
    small: tuple[Path, CatalogueSummary],
) -> None:
    root, summary = small
    generated = [p for p in root.rglob("*.*") if p.relative_to(root).parts[0] not in summary.real]
    assert len(generated) == sum(
        n for source, n in summary.documents.items() if source not in summary.real
    )
    assert len(generated) >= 3 * (SMALL + 1)  # GOV.UK, Canada, Auswärtiges Amt at least
    for path in generated:
        if path.suffix == ".xml":  # an XML document says so in a comment
            assert b"<!-- SYNTHETIC: " + SYNTHETIC_NOTE.encode() in path.read_bytes(), path
            continue
        document = json.loads(path.read_bytes())
        # A JSON array (a list endpoint) is labelled in every record.
        for labelled in document if isinstance(document, list) else [document]:
            assert next(iter(labelled)) == SYNTHETIC_KEY
            assert labelled[SYNTHETIC_KEY].startswith(SYNTHETIC_NOTE), path


def test_deterministic_for_a_seed(tmp_path: Path, small: tuple[Path, CatalogueSummary]) -> None:
    def contents(root: Path) -> dict[Path, bytes]:
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    build(tmp_path / "again", small=True)
    build(tmp_path / "other", small=True, seed=1)
    assert contents(tmp_path / "again") == contents(small[0])
    assert contents(tmp_path / "other") != contents(small[0])


@pytest.mark.parametrize(
    ("source", "new_level"),
    [(UK, Level.DO_NOT_TRAVEL), (CA, Level(1)), (DE, Level.DO_NOT_TRAVEL), (DE, Level(3))],
)
def test_set_level_changes_exactly_one_country(
    tmp_path: Path, source: str, new_level: Level
) -> None:
    root = tmp_path / "catalogue"
    build(root, small=True)
    before = read(root, source)
    # A country whose level differs from the new one.
    country = next(c for c, a in sorted(before.documents.items()) if a.level != new_level)
    at = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    published = set_level(root, source, country, new_level, at=at)
    assert published == at
    after = read(root, source)

    assert after.documents[country].level == new_level
    assert after.documents[country].source_updated_at == at
    assert after.index[country].published_at == at
    changed_documents = [c for c in before.documents if before.documents[c] != after.documents[c]]
    changed_entries = [c for c in before.index if before.index[c] != after.index[c]]
    assert changed_documents == changed_entries == [country]
    assert before.index[country].entry_hash != after.index[country].entry_hash
    assert before.documents[country].content_hash != after.documents[country].content_hash
    if source in (CA, DE):
        assert after.index[country].level == new_level


def test_set_level_never_goes_back_in_time(tmp_path: Path) -> None:
    root = tmp_path / "catalogue"
    build(root, small=True)
    country, advisory = sorted(read(root, CA).documents.items())[0]
    published = set_level(root, CA, country, 4, at=datetime(2000, 1, 1, tzinfo=UTC))
    assert published > advisory.source_updated_at
    assert read(root, CA).documents[country].source_updated_at == published


def test_set_level_refusals(small: tuple[Path, CatalogueSummary]) -> None:
    root = small[0]
    country = sorted(read(root, UK).documents)[0]
    with pytest.raises(ValueError, match="has no level 2"):
        set_level(root, UK, country, Level.INCREASED_CAUTION)
    with pytest.raises(ValueError, match="not 'us_state_dept'"):
        set_level(root, US, "SA", 4)
    with pytest.raises(ValueError, match="not 'au_smartraveller'"):
        set_level(root, AU, "FR", 4)
    with pytest.raises(ValueError, match="has no level 2"):
        set_level(root, DE, sorted(read(root, DE).documents)[0], 2)
    with pytest.raises(KeyError, match="has no country 'ZZ'"):
        set_level(root, CA, "ZZ", 4)


def test_refuses_a_non_empty_root(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        build(tmp_path, small=True)


@pytest.mark.parametrize(
    ("uk", "canada", "match"),
    [(249, None, "between 1 and 248"), (0, None, "count 0 must be"),
     (None, 230, "between 1 and 229")],
)  # fmt: skip
def test_bad_counts(tmp_path: Path, uk: int | None, canada: int | None, match: str) -> None:
    root = tmp_path / "catalogue"
    with pytest.raises(ValueError, match=match):
        build_catalogue(root, fixtures=REAL_FIXTURES, uk_countries=uk, canada_destinations=canada)
    assert not root.exists()  # nothing written


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main([str(out), "--small", "--seed", "3", "--fixtures", str(REAL_FIXTURES)]) == 0
    assert f"{UK}: {SMALL} countries" in capsys.readouterr().out
    assert main([str(out), "--small", "--fixtures", str(REAL_FIXTURES)]) == 2
    assert "not empty" in capsys.readouterr().err

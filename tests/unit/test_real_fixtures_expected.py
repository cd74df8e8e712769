"""Every real capture against its expected output, beside it in ``tests/expected/``.

``tests/expected/<folder>/<file>.expected.json`` mirrors
``<REAL_FIXTURES>/<folder>/<file>``. It holds what the source's parser makes
of the capture:

* ``advisories``: what ``parse_file`` returns (the fields that decide a
  version: country, levels, raw level, source time, title, withdrawn), or
  ``parse_file_error``: the class of the error it raises (the UK index);
* ``index``: what ``parse_index`` returns for an index document (UK and
  Canada; the US feed's index entries are its advisories).

The files were written once from the parsers' output and then checked by hand
against the documents; a capture without one fails here, as does an
expectation whose capture is gone. Summaries and hashes are left out, so that
a wording fix in text extraction does not churn every file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest

from advisories.errors import ParseError
from advisories.models import Advisory
from advisories.parsers import parser_for
from advisories.parsers.base import IndexEntry
from tests.fixtures_path import REAL_FIXTURES

EXPECTED: Final = Path(__file__).resolve().parents[1] / "expected"
SUFFIX: Final = ".expected.json"
FETCHED_AT: Final = datetime(2026, 10, 8, tzinfo=UTC)

#: Fixture folder → source id of its parser.
FOLDER_SOURCES: Final = {
    "us_state_dept": "us_state_dept",
    "uk_fcdo": "uk_foreign_office",
    "canada": "canada_travel",
}


def captures() -> list[Path]:
    """Every capture under the fixtures root (all but SOURCES.md), relative to it."""
    return sorted(
        path.relative_to(REAL_FIXTURES)
        for path in REAL_FIXTURES.rglob("*")
        if path.is_file() and path.name != "SOURCES.md"
    )


def expected_path(capture: Path) -> Path:
    return EXPECTED / capture.parent / (capture.name + SUFFIX)


def advisory_record(advisory: Advisory) -> dict[str, Any]:
    return {
        "country": advisory.country,
        "level": int(advisory.level),
        "regional_level": None if advisory.regional_level is None else int(advisory.regional_level),
        "raw_level": advisory.raw_level,
        "source_updated_at": advisory.source_updated_at.isoformat(),
        "title": advisory.title,
        "withdrawn": advisory.withdrawn,
    }


def index_record(entry: IndexEntry) -> dict[str, Any]:
    return {
        "country": entry.country,
        "published_at": None if entry.published_at is None else entry.published_at.isoformat(),
        "document_path": entry.document_path,
        "level": None if entry.level is None else int(entry.level),
        "has_regional": entry.has_regional,
    }


def parse_capture(capture: Path) -> dict[str, Any]:
    """What the parser of ``capture``'s source makes of it, as stored in its expectation."""
    source = FOLDER_SOURCES[capture.parts[0]]
    parser = parser_for(source)
    body = (REAL_FIXTURES / capture).read_bytes()
    url = f"file:///{capture.as_posix()}"
    result: dict[str, Any] = {}
    try:
        advisories = parser.parse_file(body, url=url, fetched_at=FETCHED_AT)
    except ParseError as exc:
        result["parse_file_error"] = type(exc).__name__
    else:
        result["advisories"] = [advisory_record(a) for a in advisories]
    if source != "us_state_dept":
        try:
            entries = parser.parse_index(body, url=url, fetched_at=FETCHED_AT)
        except ParseError:
            pass  # a per-country document is not an index
        else:
            result["index"] = [index_record(e) for e in entries]
    return result


def write_expected(capture: Path) -> Path:
    """Write ``capture``'s expectation from the parser (used once, then checked by hand)."""
    path = expected_path(capture)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_one_record_per_line(parse_capture(capture)), encoding="utf-8")
    return path


def _one_record_per_line(result: dict[str, Any]) -> str:
    """JSON with one record per line, so that a reader can check a country at a glance."""
    blocks = []
    for key, value in result.items():
        if isinstance(value, list):
            rows = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in value)
            blocks.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            blocks.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def test_every_folder_has_a_parser() -> None:
    folders = {p.parts[0] for p in captures()}
    assert folders == set(FOLDER_SOURCES)


def test_no_expectation_without_its_capture() -> None:
    known = {expected_path(c) for c in captures()}
    orphans = [p for p in EXPECTED.rglob("*" + SUFFIX) if p not in known]
    assert orphans == []


@pytest.mark.parametrize("capture", captures(), ids=lambda p: p.as_posix())
def test_capture_matches_its_expectation(capture: Path) -> None:
    path = expected_path(capture)
    if not path.is_file():
        pytest.fail(f"{capture} has no expected output at {path.relative_to(EXPECTED.parent)}")
    expected = json.loads(path.read_text(encoding="utf-8"))
    actual = parse_capture(capture)
    assert actual.keys() == expected.keys()
    for key, records in expected.items():
        if isinstance(records, list):
            assert len(actual[key]) == len(records), key
            for got, want in zip(actual[key], records, strict=True):
                assert got == want
        else:
            assert actual[key] == records

"""Every real capture against its expected output in ``tests/expected/<source id>/``.

Each registered source names its folder of real captures
(``SOURCE.fixtures`` under ``<REAL_FIXTURES>``); captures found later in
public repositories may also sit in the repository under
``replay/captures/<source id>/`` (derived data beside them is not a
capture). For each capture
``tests/expected/<source id>/<file>.expected.json`` (``captures/<file>...``
for the repository's own) holds what the source's parser makes of it:

* ``advisories``: what ``parse_file`` returns (the fields that decide a
  version: country, levels, raw level, source time, title, withdrawn), or
  ``parse_file_error``: the class of the error it raises (the UK index);
* ``index``: what ``parse_index`` returns for an index document, for sources
  with per-country documents (an index that carries every advisory has its
  advisories as entries).

The files were written once from the parsers' output and then checked by hand
against the documents; a capture without one fails here, as does an
expectation whose capture is gone, and a source without expected outputs.
Summaries and hashes are left out, so that a wording fix in text extraction
does not churn every file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest

from advisories.errors import ParseError
from advisories.models import Advisory
from advisories.parsers import PARSERS
from advisories.sources import SOURCES, IndexEntry
from tests.fixtures_path import REAL_FIXTURES, shared_fixtures

REPOSITORY: Final = Path(__file__).resolve().parents[2]
EXPECTED: Final = REPOSITORY / "tests" / "expected"
#: Captures kept in the repository itself, one folder per source id.
REPOSITORY_CAPTURES: Final = REPOSITORY / "replay" / "captures"
#: Where every file under ``REPOSITORY_CAPTURES`` came from, one table row per file.
CAPTURES_SOURCES: Final = REPOSITORY_CAPTURES / "SOURCES.md"
SUFFIX: Final = ".expected.json"
FETCHED_AT: Final = datetime(2026, 10, 8, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Capture:
    """One real capture of one source.

    Attributes:
        source: The source id.
        file: The capture on disk.
        name: Its path under ``tests/expected/<source>/`` without the suffix.
    """

    source: str
    file: Path
    name: str

    def __str__(self) -> str:
        return f"{self.source}/{self.name}"


def _is_capture(path: Path) -> bool:
    """A raw document: not notes, not derived data (``derived*`` folders, e.g. a
    third party's level map built from the source), which no parser of ours reads."""
    return (
        path.is_file()
        and path.suffix != ".md"
        and not any(part.startswith("derived") for part in path.parts)
    )


def captures() -> list[Capture]:
    """Every capture of every registered source, shared folder first."""
    found: list[Capture] = []
    for spec in SOURCES.values():
        shared = shared_fixtures(spec.id)
        found += [
            Capture(spec.id, p, p.relative_to(shared).as_posix())
            for p in sorted(shared.rglob("*"))
            if _is_capture(p)
        ]
        own = REPOSITORY_CAPTURES / spec.id
        found += [
            Capture(spec.id, p, "captures/" + p.relative_to(own).as_posix())
            for p in sorted(own.rglob("*"))
            if _is_capture(p)
        ]
    return found


def documented_capture_folders() -> set[str]:
    """The folders under ``replay/captures/`` whose files ``SOURCES.md`` lists."""
    text = CAPTURES_SOURCES.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([^`/]+)/", text, flags=re.MULTILINE))


def expected_path(capture: Capture) -> Path:
    return EXPECTED / capture.source / (capture.name + SUFFIX)


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


def parse_capture(capture: Capture) -> dict[str, Any]:
    """What the parser of ``capture``'s source makes of it, as stored in its expectation."""
    spec = SOURCES[capture.source]
    body = capture.file.read_bytes()
    url = f"file:///{capture}"
    result: dict[str, Any] = {}
    try:
        advisories = spec.parser.parse_file(body, url=url, fetched_at=FETCHED_AT)
    except ParseError as exc:
        result["parse_file_error"] = type(exc).__name__
    else:
        result["advisories"] = [advisory_record(a) for a in advisories]
    if spec.document_path is not None:
        try:
            entries = spec.parser.parse_index(body, url=url, fetched_at=FETCHED_AT)
        except ParseError:
            pass  # a per-country document is not an index
        else:
            result["index"] = [index_record(e) for e in entries]
    return result


def write_expected(capture: Capture) -> Path:
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


def test_every_capture_folder_belongs_to_a_source() -> None:
    shared = {p.name for p in REAL_FIXTURES.iterdir() if p.is_dir()}
    assert shared <= {spec.fixtures for spec in SOURCES.values()}
    # A source found later may have its captures in the repository only (no
    # shared folder), but every source has some.
    assert {c.source for c in captures()} == set(SOURCES)
    # replay/captures/ may also hold governments not registered yet (their
    # module comes later); a registered source's own captures are all tested.


def test_sources_parsers_and_expected_folders_are_one_set() -> None:
    """Registered sources, parsers, expected outputs and repository captures: one set of ids.

    ``replay/captures/`` may also hold governments not registered yet (their module
    comes later), each listed in its ``SOURCES.md``; every other folder there is a
    registered source's, named by its id.
    """
    expected = {p.name for p in EXPECTED.iterdir() if p.is_dir()}
    captured = {p.name for p in REPOSITORY_CAPTURES.iterdir() if p.is_dir()}
    not_registered = captured - set(SOURCES)
    assert not_registered <= documented_capture_folders()
    assert set(SOURCES) == set(PARSERS) == expected == captured - not_registered


def test_no_expectation_without_its_capture() -> None:
    known = {expected_path(c) for c in captures()}
    orphans = [p for p in EXPECTED.rglob("*" + SUFFIX) if p not in known]
    assert orphans == []


@pytest.mark.parametrize("capture", captures(), ids=str)
def test_capture_matches_its_expectation(capture: Capture) -> None:
    path = expected_path(capture)
    if not path.is_file():
        pytest.fail(f"{capture} has no expected output at {path.relative_to(REPOSITORY)}")
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

"""Parse cost: milliseconds per document per source over the real captures.

Every registered source's captures — its folder in ``../shared/fixtures/real``
(``tests.fixtures_path.REAL_FIXTURES``) and ``replay/captures/<source id>/`` — are parsed
``repeats`` times by the function the crawl uses for each — ``parse_index`` for an index (the
document of a source whose index carries every advisory, ``*index*`` files),
``parse_document`` for a per-country document — after one untimed
parse (imports, caches). A capture that does not parse is reported as a failure, unless its
expected output is that error (``not_parser_input``: a spec, a third party's reshaped copy, an
HTML page of a JSON source); whether each parses *right* is what
``tests/unit/test_real_fixtures_expected.py`` checks against ``tests/expected``.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from advisories.sources import SOURCES

#: Captures kept in the repository, one folder per source id.
REPOSITORY_CAPTURES = Path(__file__).resolve().parents[1] / "replay" / "captures"
#: Expected parser outputs of every capture (``tests/unit/test_real_fixtures_expected.py``).
EXPECTED = Path(__file__).resolve().parents[1] / "tests" / "expected"


def _is_index(source: str, file: Path, name: str) -> bool:
    if SOURCES[source].document_path is None or "index" in file.name:
        return True
    # An index not named so (the Nederland Wereldwijd list): its expected output has entries.
    expected = EXPECTED / source / (name + ".expected.json")
    return expected.is_file() and "index" in json.loads(expected.read_bytes())


def _captures(fixtures: Path, source: str) -> list[tuple[Path, str]]:
    """The source's capture files (shared folder first, history folders included), each with
    its name under ``tests/expected/<source>/``; derived data is no capture."""
    folders = (
        (fixtures / SOURCES[source].fixtures, ""),
        (REPOSITORY_CAPTURES / source, "captures/"),
    )
    return [
        (file, prefix + file.relative_to(folder).as_posix())
        for folder, prefix in folders
        for file in sorted(folder.rglob("*"))
        if file.is_file()
        and file.suffix != ".md"
        and not any(part.startswith("derived") for part in file.relative_to(folder).parts)
    ]


def _rejected_by_design(source: str, name: str) -> bool:
    """Whether the capture's expected output is a parse error: not a document the parser
    reads (a spec, a third party's reshaped copy, an HTML page of a JSON source)."""
    expected = EXPECTED / source / (name + ".expected.json")
    if not expected.is_file():
        return False
    outcome = json.loads(expected.read_bytes())
    # The GOV.UK index is no parse_file input but is parse_index's.
    return "parse_file_error" in outcome and "index" not in outcome


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[position]


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values), 3),
        "p95_ms": round(_percentile(values, 0.95), 3),
    }


def parse_cost(fixtures: Path, *, repeats: int) -> dict[str, Any]:
    """Per source: per-document and per-index parse times (ms), and captures that failed."""
    fetched_at = datetime.now(UTC)
    out: dict[str, Any] = {}
    for source, spec in SOURCES.items():
        parser = spec.parser
        documents: list[float] = []
        indexes: list[float] = []
        per_entry: list[float] = []
        files = doc_files = index_files = entries = 0
        failures: list[str] = []
        skipped: list[str] = []
        for file, name in _captures(fixtures, source):
            if _rejected_by_design(source, name):
                skipped.append(name)
                continue
            files += 1
            body = file.read_bytes()
            index = _is_index(source, file, name)
            parse = parser.parse_index if index else parser.parse_document
            try:
                first = parse(body, url=str(file), fetched_at=fetched_at)
            except Exception as exc:  # reported, not raised: the bench goes on
                failures.append(f"{file.name}: {type(exc).__name__}: {exc}")
                continue
            count = len(first) if isinstance(first, list) else 1
            for _ in range(repeats):
                started = time.perf_counter()
                parse(body, url=str(file), fetched_at=fetched_at)
                elapsed = (time.perf_counter() - started) * 1000
                if index:
                    indexes.append(elapsed)
                    per_entry.append(elapsed / max(1, count))
                else:
                    documents.append(elapsed)
            if index:
                index_files += 1
                entries = max(entries, count)
            else:
                doc_files += 1
        entry: dict[str, Any] = {
            "captures": files,
            "failures": failures,
            "not_parser_input": skipped,
            "repeats": repeats,
        }
        if documents:
            entry["document"] = {"files": doc_files, **_stats(documents)}
        if indexes:
            entry["index"] = {"files": index_files, "entries": entries, **_stats(indexes)}
            entry["index_per_entry"] = _stats(per_entry)
        # "Per document" of the crawl: a per-country document, or for a source whose index
        # carries every advisory (the US feed), one entry of it.
        entry["per_document"] = entry.get("document") or entry.get("index_per_entry")
        out[source] = entry
    return out

"""Parse cost: milliseconds per document per source over the real captures.

Every capture in ``../shared/fixtures/real`` (``tests.fixtures_path.REAL_FIXTURES``) is parsed
``repeats`` times by the function the crawl uses for it — ``parse_index`` for an index (the US
feed, ``*index*`` files), ``parse_document`` for a per-country document — after one untimed
parse (imports, caches). A capture that does not parse is reported; whether each parses *right*
is what ``tests/unit/test_real_fixtures_expected.py`` checks against ``tests/expected``.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from advisories.parsers import parser_for

#: Capture directory → source id.
CAPTURE_DIRS = {
    "us_state_dept": "us_state_dept",
    "uk_fcdo": "uk_foreign_office",
    "canada": "canada_travel",
}


def _is_index(source: str, file: Path) -> bool:
    return source == "us_state_dept" or "index" in file.name


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
    for directory, source in CAPTURE_DIRS.items():
        parser = parser_for(source)
        documents: list[float] = []
        indexes: list[float] = []
        per_entry: list[float] = []
        files = doc_files = index_files = entries = 0
        failures: list[str] = []
        for file in sorted((fixtures / directory).glob("*")):
            if not file.is_file():
                continue
            files += 1
            body = file.read_bytes()
            index = _is_index(source, file)
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
        entry: dict[str, Any] = {"captures": files, "failures": failures, "repeats": repeats}
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

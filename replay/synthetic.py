"""SYNTHETIC full-size catalogue for the replay server's directory mode.

Every registered source declares how the catalogue imitates it
(``SOURCE.synthetic`` in ``advisories/sources/<id>.py``); this module asks
each one for its documents and writes them under ``<root>/<source id>/<URL
path>`` (see :mod:`replay._catalogue`). What a source generates is SYNTHETIC:
made from the structure of real captures (``../shared/fixtures/real``), with
countries, levels and times chosen from a seed, and each generated JSON
document says so in a top-level ``"_synthetic"`` key. A source whose real
capture is complete (the US feed, the Smartraveller export) is served as that
capture, copied byte for byte, and :class:`CatalogueSummary` says "real".

:func:`set_level` changes one country's level and publication time in the
index and its document (for freshness benchmarks and tests). Run
``python -m replay.synthetic OUT_DIR [--seed N] [--small]`` to build one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from advisories.models import Level
from advisories.sources import (
    SOURCES,
    SyntheticInput,
    canada_travel,
    get_source,
    uk_foreign_office,
    us_state_dept,
)
from advisories.sources._synthetic import SYNTHETIC_KEY, SYNTHETIC_NOTE
from replay._catalogue import capture_file, default_fixtures_root

__all__ = [
    "CANADA_INDEX_FILE",
    "CANADA_INDEX_TEMPLATE",
    "SMALL",
    "SYNTHETIC_KEY",
    "SYNTHETIC_NOTE",
    "UK_DOCUMENTS",
    "UK_FULL",
    "UK_INDEX_FILE",
    "US_FEED",
    "CatalogueSummary",
    "build_catalogue",
    "canada_from_real_index",
    "main",
    "set_level",
]

#: Countries per source with ``--small`` (for CI).
SMALL: Final = 20
#: GOV.UK countries in a full catalogue (the live index lists about this many).
UK_FULL: Final = uk_foreign_office.SYNTHETIC_FULL
#: Real captures the bench reads for its per-day figures.
US_FEED: Final = us_state_dept.FEED_CAPTURE
CANADA_INDEX_TEMPLATE: Final = canada_travel.SYNTHETIC_INDEX_TEMPLATE
# Where the GOV.UK and Canada catalogues keep their files (under <root>/<source id>/).
UK_INDEX_FILE: Final = uk_foreign_office.SYNTHETIC_INDEX_FILE
UK_DOCUMENTS: Final = uk_foreign_office.SYNTHETIC_DOCUMENTS
CANADA_INDEX_FILE: Final = canada_travel.SYNTHETIC_INDEX_FILE


@dataclass(frozen=True, slots=True)
class CatalogueSummary:
    """What :func:`build_catalogue` wrote.

    Attributes:
        root: The catalogue's root directory.
        countries: Countries per source id (index entries; the US feed's items).
        documents: Files written per source id (index included).
        real: Source ids served as a real capture, unmodified.
    """

    root: Path
    countries: Mapping[str, int]
    documents: Mapping[str, int]
    real: frozenset[str] = frozenset()

    def __str__(self) -> str:
        lines = [f"SYNTHETIC catalogue at {self.root}"]
        lines += [
            f"  {source}: {self.countries[source]} countries, {self.documents[source]} documents"
            + (" (real capture, unmodified)" if source in self.real else "")
            for source in self.countries
        ]
        return "\n".join(lines)


def build_catalogue(
    root: Path,
    *,
    fixtures: Path | None = None,
    seed: int = 0,
    countries: int | None = None,
    sizes: Mapping[str, int | None] | None = None,
    uk_countries: int | None = None,
    canada_destinations: int | None = None,
) -> CatalogueSummary:
    """Write the catalogue of every registered source under ``root``.

    The same seed gives the same bytes. Which countries a smaller catalogue
    keeps is drawn so that every level present in the full one stays present.
    A source copied from a complete real capture ignores its count.

    Args:
        root: Directory to write; must not exist yet or be empty.
        fixtures: Root of the real captures (default: the replay server's).
        seed: Seed for countries, levels and times.
        countries: Countries per source (default: each source's full size).
        sizes: Countries for named sources, overriding ``countries``.
        uk_countries: Same as ``sizes={"uk_foreign_office": n}``.
        canada_destinations: Same as ``sizes={"canada_travel": n}``. When
            only these two are given, the smaller stands for every other source.

    Raises:
        FileExistsError: if ``root`` holds anything.
        ValueError: for a count below 1 or above what the source can have.
    """
    fixtures = fixtures if fixtures is not None else default_fixtures_root()
    named: dict[str, int | None] = dict(sizes or {})
    legacy = {
        uk_foreign_office.SOURCE_ID: uk_countries,
        canada_travel.SOURCE_ID: canada_destinations,
    }
    for source, count in legacy.items():
        if count is not None:
            named.setdefault(source, count)
    given = [c for c in legacy.values() if c is not None]
    others = countries if countries is not None or not given else min(given)

    def read_capture(relative: str) -> bytes:
        return capture_file(relative, fixtures).read_bytes()

    # Every source's documents first, so that a refused count leaves no half catalogue.
    # Sources given a count of their own first: a refusal names the count that was asked for.
    ordered = sorted(SOURCES.values(), key=lambda spec: spec.id not in named)
    built = {
        spec.id: spec.synthetic.build(
            SyntheticInput(
                read_capture, seed, named.get(spec.id, countries if spec.id in legacy else others)
            )
        )
        for spec in ordered
    }
    outputs = {source: built[source] for source in SOURCES}
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; build a catalogue into a new directory")
    root.mkdir(parents=True, exist_ok=True)
    for source, output in outputs.items():
        for relative, document in output.files.items():
            _write(root / source / relative, document)
    return CatalogueSummary(
        root=root,
        countries={source: output.countries for source, output in outputs.items()},
        documents={source: len(output.files) for source, output in outputs.items()},
        real=frozenset(spec.id for spec in SOURCES.values() if spec.synthetic.real),
    )


def set_level(
    root: Path, source: str, country: str, level: Level | int, *, at: datetime | None = None
) -> datetime:
    """Give one country a new level, published later than before, in index and document.

    Args:
        root: A catalogue written by :func:`build_catalogue`.
        source: A source whose imitation can change levels (not one served
            as a real capture).
        country: The country's code as the project's parser reports it
            (``TR``, ``PT-20``, ``ES-CN``).
        level: The new level, as the source can state it (GOV.UK has no
            level 2: its 1, 3 and 4 become no alert, all but essential travel
            and all travel to the whole country).
        at: The new publication time (default: now); moved to one minute
            after the old one if not later.

    Returns:
        The publication time written (UTC).

    Raises:
        KeyError: if the catalogue has no such country.
        ValueError: for a source served as a real capture, or a level the
            source cannot state.
    """
    spec = get_source(source)
    change = spec.synthetic.set_level
    if change is None:
        able = ", ".join(s.id for s in SOURCES.values() if s.synthetic.set_level is not None)
        raise ValueError(f"set_level supports {able}, not {source!r}")
    at = (at or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    out = root / source
    published, files = change(
        lambda relative: (out / relative).read_bytes(), country, Level(level), at
    )
    for relative, document in files:
        _write(out / relative, document)
    return published


def canada_from_real_index(root: Path, index_file: Path, *, fixtures: Path | None = None) -> int:
    """Serve a REAL Canada index capture, with SYNTHETIC per-country documents to match.

    The index is copied byte for byte (so its entries, dates and update notes
    are the real ones); each destination gets a per-country document generated
    from the real template and that entry (and its key, which is its code in
    the 2014 layout), so a crawl can follow the index. Used to replay the real
    2015 captures in order. Existing per-country
    documents are rewritten only when their content differs, keeping their
    validators stable otherwise.

    Returns:
        The number of destinations.
    """
    fixtures = fixtures if fixtures is not None else default_fixtures_root()
    out = root / canada_travel.SOURCE_ID
    index: dict[str, Any] = json.loads(index_file.read_bytes())
    template_text = (fixtures / canada_travel.SYNTHETIC_TEMPLATE).read_text(encoding="utf-8")
    for key, entry in index["data"].items():
        path = out / canada_travel.document_path(key).lstrip("/")
        document = canada_travel.synthetic_document(template_text, entry, key=key)
        if not path.exists() or path.read_text(encoding="utf-8") != _json(document):
            _write(path, document)
    target = out / canada_travel.SYNTHETIC_INDEX_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    shutil.copyfile(index_file, temporary)
    temporary.replace(target)
    return len(index["data"])


def _json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def _write(path: Path, document: Mapping[str, Any] | bytes) -> None:
    """Write atomically, so that a server reading the catalogue never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = document if isinstance(document, bytes) else _json(document).encode("utf-8")
    with tempfile.NamedTemporaryFile(
        "wb", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        handle.write(data)
    os.replace(handle.name, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m replay.synthetic OUT_DIR [--seed N] [--small]``."""
    parser = argparse.ArgumentParser(
        prog="python -m replay.synthetic",
        description="Write a SYNTHETIC full-size catalogue for `python -m replay --directory`.",
    )
    parser.add_argument("out_dir", type=Path, help="new or empty directory")
    parser.add_argument("--seed", type=int, default=0, help="default %(default)s")
    parser.add_argument(
        "--small", action="store_true", help=f"{SMALL} countries per source (for CI)"
    )
    parser.add_argument("--fixtures", type=Path, default=None, help="root of the real captures")
    args = parser.parse_args(argv)
    try:
        summary = build_catalogue(
            args.out_dir,
            fixtures=args.fixtures,
            seed=args.seed,
            countries=SMALL if args.small else None,
        )
    except (OSError, ValueError) as exc:
        print(f"replay.synthetic: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The replay catalogue of a run: built once, changed in waves, read back as the truth.

A *wave* republishes every country of every source whose catalogue can change (GOV.UK,
Canada, Germany ...) with a new level (``replay.synthetic.set_level``) so that each fault lands
on real work: new index entries, new documents to fetch, new versions to store. Sources served
as their real capture (the US feed, the Smartraveller export) are never changed (their cycles
after the first are a conditional index request answered 304). No wave brings back an earlier
content: the GOV.UK and German notes carry the publication minute, and a source whose index
states levels (Canada) steps every destination one level further each wave (three waves at
most, four levels), so a content hash seen twice in ``advisory_versions`` is always a
duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from advisories.models import Level
from advisories.parsers import parser_for
from advisories.sources import SOURCES, IndexEntry, page_url
from replay._catalogue import Catalogue
from replay.synthetic import CatalogueSummary, build_catalogue, set_level

#: Waves a catalogue can take without repeating a Canada level.
MAX_WAVES = 3
_BASE = "http://replay.invalid"


def build(
    root: Path, *, uk_countries: int | None, canada_destinations: int | None
) -> CatalogueSummary:
    """Write the SYNTHETIC catalogue (full size unless counts are given)."""
    return build_catalogue(root, uk_countries=uk_countries, canada_destinations=canada_destinations)


def index_entries(root: Path, source: str) -> list[IndexEntry]:
    """The source's index as the project's own parser reads it (a paged one: every page)."""
    spec = SOURCES[source]
    catalogue = Catalogue(directory=root)
    url = _BASE + spec.index_path
    query: str | None = spec.index_query
    entries: list[IndexEntry] = []
    for number in range(spec.index_max_pages):
        if query is None:
            return entries
        document = catalogue.lookup(source, spec.index_path, query=query)
        if document is None:
            raise FileNotFoundError(f"{root}: no index for {source}")
        if spec.index_pager is None:
            return parser_for(source).parse_index(
                document.body, url=url, fetched_at=datetime.now(UTC)
            )
        page = spec.index_pager(document.body, url=page_url(url, query))
        if number == 0 or page.records:
            entries += parser_for(source).parse_index(
                document.body, url=page_url(url, query), fetched_at=datetime.now(UTC)
            )
        query = page.next_query
    if query is not None:
        raise ValueError(f"{root}: the {source} index has more than {spec.index_max_pages} pages")
    return entries


def changing_sources() -> list[str]:
    """Sources whose catalogue a wave changes (not those served as a real capture)."""
    return [s.id for s in SOURCES.values() if s.synthetic.set_level is not None]


def documents_per_wave(root: Path) -> int:
    """Per-country documents a wave makes the crawl fetch."""
    return sum(
        len([e for e in index_entries(root, s) if e.document_path is not None])
        for s in changing_sources()
    )


def publish_wave(root: Path, wave: int) -> int:
    """Give every country of every changing source a new level, published now; countries changed."""
    if not 1 <= wave <= MAX_WAVES:
        raise ValueError(f"wave must be 1..{MAX_WAVES}, got {wave}")
    changed = 0
    for source in changing_sources():
        levels = SOURCES[source].synthetic.levels
        for position, entry in enumerate(index_entries(root, source)):
            if entry.level is not None and len(levels) > MAX_WAVES:
                # One level further each wave: within MAX_WAVES no country returns to a level.
                level = levels[(levels.index(entry.level) + 1) % len(levels)]
            else:
                level = levels[(position + wave) % len(levels)]
            set_level(root, source, entry.country, Level(level))
            changed += 1
    return changed


@dataclass(frozen=True, slots=True)
class Expected:
    """What the store must hold for one source: country → content hash of the current advisory."""

    source: str
    hashes: dict[str, str]


def expected(root: Path) -> dict[str, Expected]:
    """Every source's current advisories, parsed from the catalogue with the project's parsers."""
    catalogue = Catalogue(directory=root)
    out: dict[str, Expected] = {}
    now = datetime.now(UTC)
    for source in SOURCES:
        parser = parser_for(source)
        hashes: dict[str, str] = {}
        for entry in index_entries(root, source):
            if entry.document_path is None:
                if entry.advisory is not None:
                    hashes[entry.country] = entry.advisory.content_hash
                continue
            document = catalogue.lookup(source, entry.document_path)
            if document is None:
                raise FileNotFoundError(f"{root}: {source} lists {entry.document_path}, absent")
            advisory = parser.parse_document(
                document.body, url=_BASE + entry.document_path, fetched_at=now
            )
            hashes[entry.country] = advisory.content_hash
        out[source] = Expected(source, hashes)
    return out

"""The protocol every source parser follows.

A parser module (``advisories/parsers/<source id>.py``) provides three pure
functions of ``(body: bytes, *, url: str, fetched_at: datetime)``:

* ``parse_index`` — the source's cheap index document → one :class:`IndexEntry`
  per country, with enough to decide whether the country changed (its
  published time and a hash of its entry) and where its document lives;
* ``parse_document`` — one per-country document → one :class:`Advisory`;
* ``parse_file`` — any document of the source (index or per-country) → the
  advisories it carries (the CLI's ``parse`` and ``reparse`` use it).

Malformed input raises :class:`~advisories.errors.ParseError`; a document that
parses but breaks what we rely on (an empty index) raises
:class:`~advisories.errors.ContractError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from advisories.models import Advisory, Level


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One country as a source's index lists it.

    Attributes:
        country: ISO 3166-1 alpha-2 code (or ISO 3166-2 for a sub-national entry).
        country_name: The name the source uses.
        published_at: The source's updated/published time of this country's
            advisory, if the index says.
        entry_hash: Hash of this entry's meaningful fields in the index (never of
            the whole payload, which may carry a per-request timestamp).
        document_path: Path of the per-country document under the source's base
            URL (``/api/content/foreign-travel-advice/albania``), or None when the
            index itself carries the whole advisory.
        advisory: The complete advisory when the index carries it.
        withdrawn: The index marks this country as withdrawn.
        level: The level the index states, if it states one (a hint; the
            per-country document is authoritative).
        has_regional: Whether the index flags a regional advisory, if it says.
    """

    country: str
    country_name: str
    published_at: datetime | None
    entry_hash: str
    document_path: str | None = None
    advisory: Advisory | None = None
    withdrawn: bool = False
    level: Level | None = None
    has_regional: bool | None = None


class SourceParser(Protocol):
    """What a parser module provides (modules satisfy this protocol)."""

    def parse_index(self, body: bytes, *, url: str, fetched_at: datetime) -> list[IndexEntry]:
        """Index document → entries."""
        ...

    def parse_document(self, body: bytes, *, url: str, fetched_at: datetime) -> Advisory:
        """Per-country document → advisory."""
        ...

    def parse_file(self, body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]:
        """Any document of the source → the advisories it carries."""
        ...

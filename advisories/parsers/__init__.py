"""Per-source parsers: pure functions of (bytes, url, fetched_at) to domain objects.

One module per source, named by its id, each following
:class:`advisories.parsers.base.SourceParser`; :data:`PARSERS` is the registry.
"""

from __future__ import annotations

from typing import Final

from advisories.parsers import canada_travel, uk_foreign_office, us_state_dept
from advisories.parsers.base import IndexEntry, SourceParser
from advisories.sources import get_source

PARSERS: Final[dict[str, SourceParser]] = {
    "us_state_dept": us_state_dept,
    "uk_foreign_office": uk_foreign_office,
    "canada_travel": canada_travel,
}


def parser_for(source: str) -> SourceParser:
    """The parser of ``source``.

    Raises:
        UnknownSourceError: for an unregistered source.
    """
    return PARSERS[get_source(source).id]


__all__ = ["PARSERS", "IndexEntry", "SourceParser", "parser_for"]

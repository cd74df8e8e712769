"""Per-source parsers: pure functions of (bytes, url, fetched_at) to domain objects.

Each source module (``advisories/sources/<source id>.py``) declares its parser
in its ``SOURCE``; :data:`PARSERS` is read from the registry.
"""

from __future__ import annotations

from typing import Final

from advisories.sources import SOURCES, get_source
from advisories.sources._base import IndexEntry, Parser, SourceParser

#: Every registered source's parser, by source id.
PARSERS: Final[dict[str, Parser]] = {spec.id: spec.parser for spec in SOURCES.values()}


def parser_for(source: str) -> Parser:
    """The parser of ``source``.

    Raises:
        UnknownSourceError: for an unregistered source.
    """
    return get_source(source).parser


__all__ = ["PARSERS", "IndexEntry", "Parser", "SourceParser", "parser_for"]

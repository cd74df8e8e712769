"""The parser protocol's former home: it lives in :mod:`advisories.sources._base` now."""

from __future__ import annotations

from advisories.sources._base import IndexEntry, Parser, SourceParser

__all__ = ["IndexEntry", "Parser", "SourceParser"]

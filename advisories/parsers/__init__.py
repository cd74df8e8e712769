"""Per-source parsers: pure functions of (bytes, url, fetched_at) to domain objects.

One module per source, named by its id; :data:`INDEX_PARSERS` is the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from advisories.models import Advisory
from advisories.parsers import us_state_dept
from advisories.sources import get_source

#: A parser of a source's index document into advisories.
IndexParser = Callable[..., list[Advisory]]

INDEX_PARSERS: Final[dict[str, IndexParser]] = {
    "us_state_dept": us_state_dept.parse_index,
}


def parse_index(source: str, body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]:
    """Parse ``source``'s index document.

    Raises:
        UnknownSourceError: for an unregistered source.
        ParseError: for a malformed document.
    """
    spec = get_source(source)
    return INDEX_PARSERS[spec.id](body, url=url, fetched_at=fetched_at)

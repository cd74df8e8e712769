"""Custom Temporal search attributes the project registers (name → type)."""

from __future__ import annotations

from typing import Final

SOURCE: Final = "AdvisorySource"
COUNTRY: Final = "AdvisoryCountry"
FAILURE_KIND: Final = "FailureKind"

#: Registered with the dev server (``--search-attribute Name=Type``) and in production.
SEARCH_ATTRIBUTES: Final[dict[str, str]] = {
    SOURCE: "Keyword",
    COUNTRY: "Keyword",
    FAILURE_KIND: "Keyword",
}

"""Domain objects shared by parsers, the store, activities and the CLI."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Final

#: Version of the source-level → 1–4 mapping; stored with every advisory so a
#: later change of mapping can be told apart from a change at the source.
MAPPING_VERSION: Final = "1"


class Level(IntEnum):
    """The one normalised advisory scale."""

    NORMAL_PRECAUTIONS = 1
    INCREASED_CAUTION = 2
    RECONSIDER_TRAVEL = 3
    DO_NOT_TRAVEL = 4


@dataclass(frozen=True, slots=True)
class Advisory:
    """One source's current advisory for one country, normalised.

    Attributes:
        source: Source id (``us_state_dept`` ...).
        country: ISO 3166-1 alpha-2 code, or an ISO 3166-2 code for a
            sub-national entry (``PT-20``).
        country_name: The name the source uses.
        level: Level for the country as a whole, 1–4.
        regional_level: Strictest level that applies to part of the country, or None.
        raw_level: The source's own level text or code, unchanged.
        title: The source's title of the advisory.
        summary: Plain text of the advisory.
        url: Where the source publishes it.
        source_updated_at: The source's own updated/published time (UTC).
        mapping_version: Version of the level mapping that produced ``level``.
        withdrawn: The source withdrew this advisory (the country is no longer covered).
    """

    source: str
    country: str
    country_name: str
    level: Level
    regional_level: Level | None
    raw_level: str
    title: str
    summary: str
    url: str
    source_updated_at: datetime
    mapping_version: str = MAPPING_VERSION
    withdrawn: bool = False
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_hash", content_hash(self))


def content_hash(advisory: Advisory) -> str:
    """SHA-256 of the fields whose change is a change of the advisory.

    The source's timestamp, URL and fetch time are left out on purpose: a
    document re-published with the same content is not a new version.
    """
    meaningful = {
        "country": advisory.country,
        "level": int(advisory.level),
        "regional_level": None if advisory.regional_level is None else int(advisory.regional_level),
        "raw_level": advisory.raw_level,
        "title": advisory.title,
        "summary": advisory.summary,
        "mapping_version": advisory.mapping_version,
        "withdrawn": advisory.withdrawn,
    }
    blob = json.dumps(meaningful, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class RetryConfig:
    """Activity retry policy parameters, from configuration.

    Attributes:
        initial_seconds: First retry delay.
        maximum_seconds: Cap on the retry delay.
        maximum_attempts: Attempts in all (first try included).
    """

    initial_seconds: float = 60.0
    maximum_seconds: float = 600.0
    maximum_attempts: int = 4

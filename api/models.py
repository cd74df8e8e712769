"""Response models of the read API: what ``/openapi.json`` promises and every body conforms to.

Bodies are built through these models (``model_dump(mode="json")``) and serialised once with
orjson, so the served JSON and the published schema cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AdvisoriesOut",
    "AdvisoryOut",
    "AdvisoryWithSummaryOut",
    "ChangeKindName",
    "ChangeOut",
    "ChangesOut",
    "CountryOut",
    "CountrySourceOut",
    "ErrorOut",
    "FreshnessOut",
    "HealthCheckOut",
    "HealthzOut",
    "HistoryOut",
    "ScheduleOut",
    "SourceOut",
    "SourcesOut",
    "VersionOut",
]

Level = Field(ge=1, le=4)
#: ``advisories.changes.ChangeKind``'s values, spelled out for the schema (a unit test keeps
#: them equal).
ChangeKindName = Literal["new", "raised", "lowered", "regional", "text", "withdrawn"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorOut(_Model):
    """Every 4xx and 5xx body: one line saying what is wrong."""

    error: str = Field(description="What went wrong, on one line")


class HealthzOut(_Model):
    """``/healthz``: whether PostgreSQL answers."""

    status: Literal["ok"]
    database: bool = Field(description="PostgreSQL answered a query just now")


class ScheduleOut(_Model):
    """When the scheduler scrapes a source (the Temporal schedule's spec)."""

    schedule_id: str
    every_seconds: float | None = Field(description="Interval, when the schedule is one")
    cron: str | None = Field(description="Cron expression, when the schedule is one")
    jitter_seconds: float


class FreshnessOut(_Model):
    """Age of the newest successful index fetch against the health check's limit.

    ``stale`` is the health check's freshness rule: no successful index fetch within
    ``HEALTH_FRESHNESS_FACTOR`` (2) scrape intervals, or none at all.
    """

    age_seconds: float | None = Field(description="None: no successful index fetch yet")
    limit_seconds: float
    stale: bool


class HealthCheckOut(_Model):
    """The latest stored result of one health check about a source."""

    name: str
    ok: bool
    value: float | None
    threshold: float | None
    detail: str
    checked_at: datetime


class SourceOut(_Model):
    """One registered source and how its collection is doing."""

    id: str
    name: str = Field(description="The publisher")
    priority: Literal["high", "regular"]
    task_queue: str
    schedule: ScheduleOut
    last_success_at: datetime | None = Field(
        description="End of the newest successful index fetch (a successful cycle)"
    )
    freshness: FreshnessOut
    dead_letters_open: int = Field(ge=0, description="Quarantined jobs open or requeued")
    advisories: int = Field(ge=0, description="Current advisories stored for the source")
    success_rate_24h: float | None = Field(
        description="Percent of index and country fetches finished in the last 24 h that"
        " succeeded (None: none finished)"
    )
    fetches_finished_24h: int = Field(ge=0)
    health: list[HealthCheckOut] = Field(description="Latest result of each health check")


class SourcesOut(_Model):
    """``/v1/sources``."""

    sources: list[SourceOut]


class _AdvisoryFields(_Model):
    """The fields of a current advisory that every list row has."""

    source: str
    country: str = Field(description="ISO 3166-1 alpha-2, or ISO 3166-2 for a part (PT-20)")
    country_name: str = Field(description="The name the source uses")
    level: int = Level
    regional_level: int | None = Field(
        ge=1, le=4, description="Strictest level for part of the country"
    )
    raw_level: str = Field(description="The source's own level text, unchanged")
    title: str
    url: str
    source_updated_at: datetime = Field(description="The source's own updated time")
    mapping_version: str
    withdrawn: bool
    version_id: int
    content_hash: str = Field(
        description="SHA-256 of the version's content (level, title, summary ...): a"
        " new value means the summary may have changed"
    )
    changed_at: datetime = Field(description="When this version was stored")
    last_checked_at: datetime = Field(description="When the source last confirmed it")


class AdvisoryOut(_AdvisoryFields):
    """One source's current advisory for one country, on the common 1–4 scale, without its
    summary (the list's default row; ``content_hash`` tells when the summary changed)."""


class AdvisoryWithSummaryOut(_AdvisoryFields):
    """A list row with the advisory's summary (``include=summary``)."""

    summary: str = Field(description="The source's summary text (up to ~15 KB)")


class AdvisoriesOut(_Model):
    """``/v1/advisories``: compact rows, or rows with their summaries (``include=summary``)."""

    # Two sibling models, neither a subclass of the other, so a row is exactly one of them.
    advisories: list[AdvisoryOut] | list[AdvisoryWithSummaryOut]


class CountrySourceOut(_Model):
    """One source's view of a country, in ``/v1/countries/{iso}``."""

    source: str
    publisher: str
    level: int = Level
    regional_level: int | None = Field(ge=1, le=4)
    raw_level: str
    source_updated_at: datetime
    title: str
    summary: str
    url: str
    mapping_version: str
    withdrawn: bool
    changed_at: datetime
    last_checked_at: datetime


class CountryOut(_Model):
    """A country across every source.

    ``strictest``, ``spread`` and ``disagreement`` are computed over the sources whose
    advisory is not withdrawn, from the level for the country as a whole (regional levels
    are shown per source but not compared): ``strictest`` is the highest level, ``spread``
    the highest minus the lowest, and ``disagreement`` is true when ``spread`` ≥ 1, i.e.
    at least two governments put the whole country on different levels.
    """

    country: str
    name: str
    sources: list[CountrySourceOut]
    missing_sources: list[str] = Field(description="Registered sources with no advisory for it")
    strictest: int | None = Field(ge=1, le=4)
    spread: int | None = Field(ge=0, le=3)
    disagreement: bool


class VersionOut(_Model):
    """One stored version of a source's advisory for a country, with its change kind."""

    source: str
    version_id: int
    change_id: int | None
    kind: ChangeKindName | None
    level_before: int | None = Field(ge=1, le=4)
    level: int = Level
    regional_level: int | None = Field(ge=1, le=4)
    raw_level: str
    title: str
    summary: str
    url: str
    source_updated_at: datetime
    mapping_version: str
    withdrawn: bool
    content_hash: str
    fetched_at: datetime
    stored_at: datetime


class HistoryOut(_Model):
    """``/v1/countries/{iso}/history``: versions grouped by source, oldest first in each."""

    country: str
    name: str
    versions: list[VersionOut]


class ChangeOut(_Model):
    """One classified change."""

    id: int
    source: str
    country: str
    country_name: str
    kind: ChangeKindName
    level_before: int | None = Field(ge=1, le=4)
    level_after: int = Level
    regional_before: int | None = Field(ge=1, le=4)
    regional_after: int | None = Field(ge=1, le=4)
    title: str
    url: str
    source_updated_at: datetime
    detected_at: datetime
    version_id: int
    previous_version_id: int | None


class ChangesOut(_Model):
    """``/v1/changes``: newest first, one page."""

    changes: list[ChangeOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page")
    next: str | None = Field(description="URL of the next page (also in the Link header)")

"""What a source module declares, and the protocol its parser follows.

A source module (``advisories/sources/<source id>.py``) exports ``SOURCE``, a
:class:`SourceSpec` holding everything that differs between governments:
publisher, endpoints, allowed hosts, priority, rate-limit defaults and time
zone, the level mapping with its version, the parser, its real captures and
their replay routes, and how the synthetic catalogue imitates it.

The parser is three pure functions of ``(body: bytes, *, url: str,
fetched_at: datetime)``:

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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from advisories.models import Advisory, Level
from advisories.queues import SCRAPING, SCRAPING_HIGH_PRIORITY


class Priority(StrEnum):
    """Scheduling priority of a source."""

    HIGH = "high"
    REGULAR = "regular"

    @property
    def interval(self) -> timedelta:
        """Default scrape interval for this priority."""
        return timedelta(hours=2) if self is Priority.HIGH else timedelta(hours=12)

    @property
    def task_queue(self) -> str:
        """Task queue that runs this priority's scrape activities."""
        return SCRAPING_HIGH_PRIORITY if self is Priority.HIGH else SCRAPING

    @property
    def priority_key(self) -> int:
        """Temporal task priority key (1 is the most urgent, 5 the least)."""
        return 1 if self is Priority.HIGH else 3


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """How fast one source may be asked for documents, by every worker together.

    Attributes:
        requests_per_hour: At most this many requests in any rolling hour.
        burst_limit: At most this many requests in any rolling ``burst_window_seconds``.
        burst_window_seconds: The burst window.
        min_delay_seconds: At least this long between two consecutive requests.
        respectful_start_hour: Start (inclusive) of the source's business hours, local time.
        respectful_end_hour: End (exclusive) of the business hours, local time.
        respectful_factor: During business hours the hourly and burst budgets are
            multiplied by this and the minimum delay divided by it (slower pace).
        timezone: The source's own IANA time zone.
        enabled: False switches the limit off (benchmarks, offline demo).
    """

    requests_per_hour: int
    burst_limit: int
    min_delay_seconds: float
    timezone: str
    burst_window_seconds: float = 60.0
    respectful_start_hour: int = 9
    respectful_end_hour: int = 17
    respectful_factor: float = 0.5
    enabled: bool = True


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


def index_of_advisories(advisories: Iterable[Advisory]) -> list[IndexEntry]:
    """Index entries for an index that carries every complete advisory itself.

    Each entry holds its advisory (so no per-country document is fetched), the
    advisory's content hash as the entry hash, and the level and regional flag
    it states.
    """
    return [
        IndexEntry(
            country=adv.country,
            country_name=adv.country_name,
            published_at=adv.source_updated_at,
            entry_hash=adv.content_hash,
            advisory=adv,
            level=adv.level,
            has_regional=adv.regional_level is not None,
        )
        for adv in advisories
    ]


@dataclass(frozen=True, slots=True)
class IndexPage:
    """What a source's pager reads off one page of its index.

    Attributes:
        records: Records the page holds (0: a page past the last one).
        next_query: Query string of the next page (sent with the index path), or
            None when this page is the last.
    """

    records: int
    next_query: str | None


class IndexPager(Protocol):
    """One page of a paged index (its body and the URL it was fetched from) → the next page.

    Raises:
        ParseError: if the page is not the source's index.
    """

    def __call__(self, body: bytes, *, url: str) -> IndexPage: ...


def page_url(index_url: str, query: str) -> str:
    """``index_url`` (with or without a query) with its query replaced by ``query``."""
    return urlunsplit(urlsplit(index_url)._replace(query=query))


def query_file(path: str, query: str) -> str:
    """Catalogue file name of the document at ``path?query``: ``<path>@<query>``, keys sorted.

    The replay server's directory mode serves a request with a query from this file
    when it exists (else from ``path``), so a paged index can be written page by page.
    """
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return f"{path}@{urlencode(pairs)}" if pairs else path


class ParseIndex(Protocol):
    """Index document → entries."""

    def __call__(self, body: bytes, *, url: str, fetched_at: datetime) -> list[IndexEntry]: ...


class ParseDocument(Protocol):
    """Per-country document → advisory."""

    def __call__(self, body: bytes, *, url: str, fetched_at: datetime) -> Advisory: ...


class ParseFile(Protocol):
    """Any document of the source → the advisories it carries."""

    def __call__(self, body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]: ...


@dataclass(frozen=True, slots=True)
class Parser:
    """A source's three parse functions (see the module docstring)."""

    parse_index: ParseIndex
    parse_document: ParseDocument
    parse_file: ParseFile


#: The name the parser protocol had when parsers lived in ``advisories.parsers``.
SourceParser = Parser


@dataclass(frozen=True, slots=True)
class ReplayRoute:
    """One real capture served by the replay server at the real site's path.

    Attributes:
        path: Path on the real site, starting with ``/``.
        file: The capture, relative to the real-captures root
            (``../shared/fixtures/real``), or to the repository when it starts
            ``replay/captures/`` (captures kept with the code).
        content_type: Explicit Content-Type, or None to follow the file's suffix.
    """

    path: str
    file: str
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class SyntheticInput:
    """What a source's synthetic imitation is given.

    Attributes:
        read_capture: Reads a real capture by its path under the real-captures root
            (``../shared/fixtures/real``), or under the repository for a path
            starting ``replay/captures/`` (captures kept with the code).
        seed: The catalogue's seed (each source draws from its own generator).
        count: Countries wanted (None: the full size the imitation is built for).
    """

    read_capture: Callable[[str], bytes]
    seed: int
    count: int | None


@dataclass(frozen=True, slots=True)
class SyntheticOutput:
    """The documents a synthetic imitation made.

    Attributes:
        countries: Countries the source's index lists.
        files: File path under ``<catalogue>/<source id>/`` → a JSON document
            (written as JSON) or bytes (written as they are). An index stored
            at a path without a suffix (``/opendata/travelwarning``) is written
            with ``.json`` appended, as the replay server's directory mode reads it.
    """

    countries: int
    files: Mapping[str, Mapping[str, Any] | bytes]


class SetLevel(Protocol):
    """Give one country a new level in a catalogue; returns (time written, files to write).

    ``read`` reads a file of the source's catalogue by its path under
    ``<catalogue>/<source id>/``. The files are written in the order returned
    (per-country document before the index, so that a poller that sees the
    new index finds the new document).
    """

    def __call__(
        self, read: Callable[[str], bytes], country: str, level: Level, at: datetime
    ) -> tuple[datetime, list[tuple[str, Mapping[str, Any] | bytes]]]: ...


@dataclass(frozen=True, slots=True)
class SyntheticImitation:
    """How the replay server's catalogue imitates a source.

    Attributes:
        build: Makes the source's documents.
        set_level: Changes one country's level (None: the source's catalogue is
            a real capture served unmodified).
        levels: The levels ``set_level`` can write, in scale order.
        real: True when ``build`` copies a real, complete capture.
    """

    build: Callable[[SyntheticInput], SyntheticOutput]
    set_level: SetLevel | None = None
    levels: tuple[Level, ...] = ()
    real: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class SourceSpec:
    """Everything about one source that differs from the others.

    Compared by identity: there is one spec per source.

    Attributes:
        id: The source id used everywhere (the module's name).
        name: Human name of the publisher.
        publisher: The publisher as README's source table names it.
        priority: Scheduling priority (decides interval and task queue).
        default_base_url: Origin of the real site; overridable per source in settings.
        index_path: Path of the cheap index document under the base URL.
        document_path: Path pattern of a per-country document (``<slug>`` for the
            variable part), or None when the index carries every advisory.
        allowed_hosts: Hosts a redirect may lead to.
        rate_limit: Default rate limits (the database holds the ones in force).
        mapping_version: Version of the source-level → 1–4 mapping, stored with
            every advisory.
        levels: The source's level values (as its ``raw_level`` states them) → the
            level each gives: the country's, or the regional level for a value about
            parts of a country (GOV.UK's ``..._to_parts``).
        parser: The parse functions.
        fixtures: Folder of the source's real captures under the real-captures root.
        replay_routes: Real captures the replay server serves at the real paths.
        synthetic: How the synthetic catalogue imitates the source.
        index_note: README's description of the index, when its path alone says
            too little.
        index_query: Query string sent with every index request (``output=json&rows=200``),
            or empty; kept apart from ``index_path`` because the replay server, its
            catalogues and the bench find documents by path alone.
        index_pager: For an index served in pages (at most so many records per
            request): reads each page and gives the next page's query; the index
            fetch follows the pages and merges their entries. None (the default):
            the index is one document.
        index_max_pages: The most pages an index may take; past it the index fetch
            fails (a pager that never ends, or an index far larger than it should be).
    """

    id: str
    name: str
    publisher: str
    priority: Priority
    default_base_url: str
    index_path: str
    document_path: str | None
    allowed_hosts: tuple[str, ...]
    rate_limit: RateLimitPolicy
    mapping_version: str
    levels: Mapping[str, Level]
    parser: Parser
    fixtures: str
    synthetic: SyntheticImitation
    replay_routes: tuple[ReplayRoute, ...] = ()
    index_note: str | None = field(default=None)
    index_query: str = ""
    index_pager: IndexPager | None = None
    index_max_pages: int = 10

    @property
    def schedule_id(self) -> str:
        """Id of the Temporal schedule that scrapes this source."""
        return f"scrape-{self.id}"

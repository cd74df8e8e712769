"""HTTP helpers of the read API (pure): bodies, validators, CSV, Atom, the response cache.

A response is built once per data version into a :class:`Prepared` (body, strong ETag,
Last-Modified, media type) and kept in a :class:`ResponseCache`; repeated and conditional
requests are answered from it without touching PostgreSQL.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import gzip
import hashlib
import io
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Final
from xml.etree import ElementTree as ET

import orjson

__all__ = [
    "ATOM",
    "CACHE_CONTROL",
    "CSV",
    "CURSOR_PATTERN",
    "GZIP_MIN_BYTES",
    "JSON",
    "NOSNIFF",
    "AtomEntry",
    "CsvTable",
    "Prepared",
    "ResponseCache",
    "accepts_gzip",
    "atom_feed",
    "csv_body",
    "decode_cursor",
    "encode_cursor",
    "etag_of",
    "fresh",
    "http_date",
    "json_body",
    "negotiate",
    "not_modified",
    "safe_cell",
]

JSON: Final = "application/json"
CSV: Final = "text/csv; charset=utf-8"
ATOM: Final = "application/atom+xml; charset=utf-8"
#: Bodies smaller than this are sent as they are (compressing them saves next to nothing).
GZIP_MIN_BYTES: Final = 1024
#: Short: the data changes at most every few minutes, and a 304 costs almost nothing.
CACHE_CONTROL: Final = "public, max-age=30"
#: On every response (304s and errors too): a browser must never guess another media type
#: than the one sent, e.g. run scraped text in a JSON or CSV body as HTML.
NOSNIFF: Final = ("X-Content-Type-Options", "nosniff")
_ATOM_NS: Final = "http://www.w3.org/2005/Atom"
# Cells a spreadsheet would evaluate as a formula (OWASP's CSV-injection list).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
#: Every cursor :func:`encode_cursor` makes, and nothing else: a change id as 8 bytes,
#: big-endian, in unpadded base64url (11 characters; the first keeps the sign bit clear, the
#: last has its two padding bits zero). The OpenAPI document declares it, so any string that
#: matches is a cursor the API accepts.
CURSOR_PATTERN: Final = r"^[A-Za-f][A-Za-z0-9_-]{9}[AEIMQUYcgkosw048]$"
_CURSOR_RE: Final = re.compile(CURSOR_PATTERN)
_CURSOR_ERROR: Final = "invalid cursor: pass the next_cursor of a previous page"


# --------------------------------------------------------------------------- bodies


def json_body(payload: Any) -> bytes:
    """``payload`` (plain JSON types, datetimes) as compact UTF-8 JSON."""
    return orjson.dumps(payload, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def etag_of(body: bytes) -> str:
    """A strong ETag of ``body``: equal bodies, equal tags."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def http_date(moment: datetime) -> str:
    """``moment`` as an HTTP-date (``Last-Modified``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def negotiate(format_param: str | None, accept: str | None) -> str:
    """``json`` or ``csv``: the ``format`` parameter wins, then ``Accept: text/csv``."""
    if format_param:
        return format_param
    if accept and "text/csv" in accept:
        # The one alternative representation: a client asking for CSV and JSON at
        # once gets CSV only if it does not rank JSON higher.
        return "csv" if _quality(accept, "text/csv") > _quality(accept, JSON) else "json"
    return "json"


def _weighted(header: str) -> Iterator[tuple[str, float]]:
    """Each item of an ``Accept``-style header: its value (lower case) and its ``q``.

    ``q`` is 1 when the item states none and 0 when it states one that is no number.
    """
    for part in header.split(","):
        value, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, weight = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(weight)
                except ValueError:
                    q = 0.0
        yield value.strip().lower(), q


def _quality(accept: str, media: str) -> float:
    best = 0.0
    for kind, q in _weighted(accept):
        if kind not in (media, media.split("/")[0] + "/*", "*/*"):
            continue
        # An exact match outranks a wildcard of the same quality.
        best = max(best, q if kind == media else q - 0.001)
    return best


# --------------------------------------------------------------------------- CSV


def safe_cell(value: Any) -> str:
    """A CSV cell that no spreadsheet runs as a formula.

    Scraped text starting with ``= + - @`` (or a tab or carriage return) gets a leading
    apostrophe, the usual neutralisation; numbers, booleans and times are written plainly.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A list endpoint's rows as CSV: the columns, in order, and one mapping per row."""

    columns: Sequence[str]
    rows: Iterable[Mapping[str, Any]]


def csv_body(table: CsvTable) -> bytes:
    """``table`` as RFC 4180 CSV with a header row."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([safe_cell(row.get(column)) for column in table.columns])
    return out.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- cursors


def encode_cursor(last_id: int) -> str:
    """The opaque cursor after the change ``last_id`` (0 ≤ ``last_id`` < 2**63, a bigint id)."""
    return base64.urlsafe_b64encode(last_id.to_bytes(8, "big")).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The change id a cursor continues after.

    Raises:
        ValueError: with a one-line reason, for anything that does not match
            :data:`CURSOR_PATTERN` (every match decodes to an id).
    """
    if _CURSOR_RE.fullmatch(cursor) is None:
        raise ValueError(_CURSOR_ERROR)
    return int.from_bytes(base64.urlsafe_b64decode(cursor + "="), "big")


# --------------------------------------------------------------------------- Atom


@dataclass(frozen=True, slots=True)
class AtomEntry:
    """One entry of an Atom feed."""

    id: str
    title: str
    updated: datetime
    link: str
    summary: str
    category: str


def atom_feed(
    *, feed_id: str, title: str, self_url: str, updated: datetime, entries: Sequence[AtomEntry]
) -> bytes:
    """A valid Atom 1.0 (RFC 4287) document; every text is escaped by the XML writer."""
    ET.register_namespace("", _ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{_ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = _xml_text(text)
        return element

    feed = ET.Element(f"{{{_ATOM_NS}}}feed")
    sub(feed, "id", feed_id)
    sub(feed, "title", title)
    sub(feed, "updated", _rfc3339(updated))
    sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    author = sub(feed, "author")
    sub(author, "name", "travel-advisory-scheduler")
    for item in entries:
        entry = sub(feed, "entry")
        sub(entry, "id", item.id)
        sub(entry, "title", item.title)
        sub(entry, "updated", _rfc3339(item.updated))
        sub(entry, "link", rel="alternate", href=item.link, type="text/html")
        sub(entry, "category", term=item.category)
        sub(entry, "summary", item.summary, type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


# XML 1.0 forbids most control characters even escaped; scraped text may hold them.
_XML_INVALID: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- prepared responses


@dataclass(frozen=True, slots=True)
class Prepared:
    """A response built once: its body, validators and headers, ready to send again."""

    body: bytes
    media_type: str
    etag: str
    last_modified: str | None
    extra_headers: tuple[tuple[str, str], ...] = ()
    status: int = 200
    #: ``time.monotonic()`` after which it must be rebuilt (None: valid for its data version).
    expires_at: float | None = None
    #: ``last_modified`` as a time, whole seconds (what ``If-Modified-Since`` compares).
    modified_at: datetime | None = None
    #: ``gzip`` for a compressed representation (None: the body as built).
    encoding: str | None = None
    #: The gzip representation of this body, when it is worth compressing.
    gzipped: Prepared | None = None

    @classmethod
    def build(
        cls,
        body: bytes,
        media_type: str,
        *,
        last_modified: datetime | None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Prepared:
        """Compute the ETag of ``body``, format ``last_modified``, compress a large body once."""
        identity = cls(
            body=body,
            media_type=media_type,
            etag=etag_of(body),
            last_modified=None if last_modified is None else http_date(last_modified),
            extra_headers=tuple((extra_headers or {}).items()),
            modified_at=None
            if last_modified is None
            else last_modified.astimezone(UTC).replace(microsecond=0),
        )
        if len(body) < GZIP_MIN_BYTES:
            return identity
        # mtime=0: the same body always compresses to the same bytes (a stable ETag).
        compressed = gzip.compress(body, compresslevel=6, mtime=0)
        if len(compressed) >= len(body):
            return identity
        # A strong ETag names one representation: the gzip one has its own (RFC 9110 8.8.3).
        variant = dataclasses.replace(
            identity, body=compressed, etag=identity.etag[:-1] + '-gzip"', encoding="gzip"
        )
        return dataclasses.replace(identity, gzipped=variant)

    def select(self, accept_encoding: str | None) -> Prepared:
        """The representation for a client sending ``accept_encoding``."""
        if self.gzipped is not None and accepts_gzip(accept_encoding):
            return self.gzipped
        return self

    @property
    def size(self) -> int:
        """Bytes of body held, every representation counted."""
        return len(self.body) + (0 if self.gzipped is None else len(self.gzipped.body))

    def expiring(self, seconds: float) -> Prepared:
        """The same response, to be rebuilt after ``seconds`` even if the data version holds."""
        return dataclasses.replace(self, expires_at=time.monotonic() + seconds)

    def headers(self, *, with_body: bool) -> list[tuple[bytes, bytes]]:
        """Raw ASGI headers: validators, caching, ``Vary``; content headers with the body."""
        out = [
            (NOSNIFF[0].lower().encode(), NOSNIFF[1].encode()),
            (b"etag", self.etag.encode()),
            (b"cache-control", CACHE_CONTROL.encode()),
            (b"vary", b"Accept, Accept-Encoding"),
        ]
        if self.last_modified is not None:
            out.append((b"last-modified", self.last_modified.encode()))
        for name, value in self.extra_headers:
            out.append((name.lower().encode(), value.encode("latin-1")))
        if with_body:
            if self.encoding is not None:
                out.append((b"content-encoding", self.encoding.encode()))
            out.append((b"content-type", self.media_type.encode()))
            out.append((b"content-length", str(len(self.body)).encode()))
        return out


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` admits gzip (``gzip``/``x-gzip`` or ``*``, q > 0)."""
    if not accept_encoding:
        return False
    wildcard = False
    for name, q in _weighted(accept_encoding):
        if name in ("gzip", "x-gzip"):
            return q > 0
        if name == "*":
            wildcard = q > 0
    return wildcard


def fresh(prepared: Prepared, *, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """Whether the client's copy is current: a 304 (RFC 9110 13.2.2 order).

    ``If-None-Match`` decides when present; otherwise ``If-Modified-Since`` against the
    response's ``Last-Modified`` (an unparseable date is ignored, as the RFC says).
    """
    if if_none_match:
        return not_modified(if_none_match, prepared.etag)
    if not if_modified_since or prepared.modified_at is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return prepared.modified_at <= since


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` matches ``etag`` (RFC 9110: weak comparison, ``*``)."""
    if not if_none_match:
        return False
    bare = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == bare:
            return True
    return False


@dataclass
class ResponseCache:
    """Prepared responses of one data version, by request key; bounded, oldest dropped first.

    Bounded twice: by entries and by body bytes (the full advisory list is about 5.5 MB,
    the summaries about 4.9 MB of it, and every distinct query string is an entry of its
    own).

    A new data version gets a new, empty cache: a response computed while the version
    changed lands in the old one and is never served under the new version.
    """

    version: tuple[Any, ...]
    max_entries: int = 4096
    max_bytes: int = 64 * 1024 * 1024
    _items: dict[tuple[str, ...], Prepared] = field(default_factory=dict)
    _bytes: int = 0

    def get(self, key: tuple[str, ...]) -> Prepared | None:
        """The response stored under ``key``, if any."""
        return self._items.get(key)

    def put(self, key: tuple[str, ...], prepared: Prepared) -> None:
        """Keep ``prepared`` under ``key``, evicting the oldest entries to stay in bounds."""
        if prepared.size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        while self._items and (
            len(self._items) >= self.max_entries or self._bytes + prepared.size > self.max_bytes
        ):
            evicted = self._items.pop(next(iter(self._items)))
            self._bytes -= evicted.size
        self._items[key] = prepared
        self._bytes += prepared.size

    @property
    def size_bytes(self) -> int:
        """Bytes of body held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

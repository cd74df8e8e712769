"""The API's HTTP helpers (pure): validators, negotiation, CSV defusing, cursors, Atom, cache."""

from __future__ import annotations

import csv
import gzip
import io
import re
from datetime import UTC, datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.http import (
    CSV,
    CURSOR_PATTERN,
    AtomEntry,
    CsvTable,
    Prepared,
    ResponseCache,
    accepts_gzip,
    atom_feed,
    csv_body,
    decode_cursor,
    encode_cursor,
    etag_of,
    fresh,
    http_date,
    negotiate,
    not_modified,
    safe_cell,
)

ATOM = "{http://www.w3.org/2005/Atom}"


def test_etag_is_strong_and_follows_the_body() -> None:
    assert etag_of(b"a") == etag_of(b"a")
    assert etag_of(b"a") != etag_of(b"b")
    assert etag_of(b"a").startswith('"') and etag_of(b"a").endswith('"')


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),  # If-None-Match compares weakly (RFC 9110 13.1.2)
        ('"x", "abc"', True),
        ('"x","y"', False),
        ("*", True),
        ('"abcd"', False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert not_modified(header, '"abc"') is matches


@pytest.mark.parametrize(
    ("param", "accept", "wanted"),
    [
        (None, None, "json"),
        (None, "*/*", "json"),
        (None, "text/csv", "csv"),
        (None, "text/csv;q=0.5, application/json", "json"),
        (None, "application/json;q=0.1, text/csv", "csv"),
        (None, "text/html, text/csv", "csv"),
        ("json", "text/csv", "json"),
        ("csv", None, "csv"),
    ],
)
def test_negotiation(param: str | None, accept: str | None, wanted: str) -> None:
    assert negotiate(param, accept) == wanted


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+33 1", "'+33 1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        (-2, "-2"),  # numbers are data, not formulas
        (None, ""),
        (True, "true"),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1))),
            "2026-01-02T02:04:05Z",
        ),
    ],
)
def test_csv_cells_never_start_a_formula(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_csv_body_round_trips_with_a_header() -> None:
    rows: list[dict[str, str | None]] = [
        {"a": "x,y", "b": 'say "hi"\nthere'},
        {"a": "=cmd", "b": None},
    ]
    parsed = list(csv.DictReader(io.StringIO(csv_body(CsvTable(["a", "b"], rows)).decode())))
    assert parsed == [{"a": "x,y", "b": 'say "hi"\nthere'}, {"a": "'=cmd", "b": ""}]


def test_cursor_round_trip_and_rejects_anything_else() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    bad_cursors = ("", "abc", "!!!!", encode_cursor(1)[:-1] + "*", encode_cursor(1) + "\n")
    for bad in (*bad_cursors, "YzE6LTE", "gAAAAAAAAAA"):  # "c1:-1"; the sign bit set
        with pytest.raises(ValueError, match="invalid cursor"):
            decode_cursor(bad)


@pytest.mark.parametrize("change_id", [0, 1, 255, 12345, 2**31, 2**63 - 1])
def test_every_cursor_matches_the_declared_pattern(change_id: int) -> None:
    cursor = encode_cursor(change_id)
    assert re.fullmatch(CURSOR_PATTERN, cursor), cursor
    assert decode_cursor(cursor) == change_id


@given(st.from_regex(CURSOR_PATTERN, fullmatch=True))
def test_every_string_of_the_declared_pattern_is_a_cursor(cursor: str) -> None:
    # The OpenAPI document declares the pattern: whatever matches it must be accepted.
    change_id = decode_cursor(cursor)
    assert 0 <= change_id < 2**63
    assert encode_cursor(change_id) == cursor


def test_atom_feed_is_valid_xml_with_escaped_text() -> None:
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    body = atom_feed(
        feed_id="tag:example,2026:changes",
        title="Changes",
        self_url="http://127.0.0.1/v1/changes.atom",
        updated=moment,
        entries=[
            AtomEntry(
                id="tag:example,2026:change:1",
                title="<script>alert(1)</script> & co\x01",
                updated=moment,
                link="http://127.0.0.1/countries/FR",
                summary="a < b",
                category="raised",
            )
        ],
    )
    feed = ET.fromstring(body)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}updated") == "2026-05-01T12:00:00Z"
    entry = feed.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}title") == "<script>alert(1)</script> & co"
    assert b"<script>" not in body


def test_prepared_headers_and_cache_bounds() -> None:
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    prepared = Prepared.build(b"a,b\r\n", CSV, last_modified=moment)
    with_body = dict(prepared.headers(with_body=True))
    assert with_body[b"last-modified"] == http_date(moment).encode()
    assert with_body[b"content-length"] == b"5"
    assert with_body[b"vary"] == b"Accept, Accept-Encoding"
    assert b"content-type" not in dict(prepared.headers(with_body=False))
    for body in (True, False):  # a 304 as well as a 200
        assert dict(prepared.headers(with_body=body))[b"x-content-type-options"] == b"nosniff"

    cache = ResponseCache(version=(1,), max_entries=2)
    for key in ("a", "b", "c"):
        cache.put((key,), prepared)
    assert len(cache) == 2 and cache.get(("a",)) is None and cache.get(("c",)) is prepared

    small = ResponseCache(version=(1,), max_bytes=12)
    for key in ("a", "b", "c"):
        small.put((key,), prepared)  # 5 bytes each: two fit
    assert len(small) == 2 and small.size_bytes == 10 and small.get(("a",)) is None
    small.put(("c",), prepared)  # replacing an entry does not count it twice
    assert small.size_bytes == 10
    small.put(("big",), Prepared.build(b"x" * 13, CSV, last_modified=None))
    assert small.get(("big",)) is None and small.size_bytes == 10


def test_if_modified_since_only_without_if_none_match() -> None:
    moment = datetime(2026, 5, 1, 12, 0, 30, 500_000, tzinfo=UTC)
    prepared = Prepared.build(b"x", CSV, last_modified=moment)
    same = http_date(moment)
    earlier = http_date(moment - timedelta(seconds=1))
    assert fresh(prepared, if_none_match=None, if_modified_since=same)
    assert not fresh(prepared, if_none_match=None, if_modified_since=earlier)
    assert not fresh(prepared, if_none_match=None, if_modified_since="not a date")
    # If-None-Match wins (RFC 9110 13.2.2): a stale tag is a 200 whatever the date says.
    assert not fresh(prepared, if_none_match='"old"', if_modified_since=same)
    assert fresh(prepared, if_none_match=prepared.etag, if_modified_since=earlier)
    undated = Prepared.build(b"x", CSV, last_modified=None)
    assert not fresh(undated, if_none_match=None, if_modified_since=same)


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
        ("*, gzip;q=0", False),
        ("x-gzip", True),
    ],
)
def test_accepts_gzip(header: str | None, wanted: bool) -> None:
    assert accepts_gzip(header) is wanted


def test_large_bodies_have_a_gzip_representation_of_their_own() -> None:
    body = b'{"advisories":[' + b'{"level":1,"title":"same text"},' * 200 + b"{}]}"
    prepared = Prepared.build(body, "application/json", last_modified=None)
    gzipped = prepared.select("gzip, deflate")
    assert gzipped is prepared.gzipped and gzipped is not None
    assert gzip.decompress(gzipped.body) == body
    assert gzipped.etag != prepared.etag and gzipped.etag.endswith('-gzip"')
    assert dict(gzipped.headers(with_body=True))[b"content-encoding"] == b"gzip"
    assert b"content-encoding" not in dict(prepared.headers(with_body=True))
    assert prepared.select("identity") is prepared and prepared.select(None) is prepared
    # Deterministic: the same body compresses to the same bytes, so the tag is stable.
    assert Prepared.build(body, "application/json", last_modified=None).gzipped == gzipped
    assert prepared.size == len(body) + len(gzipped.body)
    small = Prepared.build(b"{}", "application/json", last_modified=None)
    assert small.gzipped is None and small.select("gzip") is small

"""The Netherlands: Nederland Wereldwijd (Ministerie van Buitenlandse Zaken), open data v2.

Two documents on ``https://opendata.nederlandwereldwijd.nl``:

* the list (``/v2/sources/nederlandwereldwijd/infotypes/traveladvice?output=json``):
  a JSON array, one record per destination (``id``, ``isocode``, ``location``,
  ``locationkey``, ``title``, ``introduction`` (the "In het kort" HTML),
  ``dataurl``, ``lastmodified``, and ``classification``, which says "Dit veld
  wordt niet meer ondersteund" (no longer supported));
* a destination's document (``.../infotypes/countries/<iso>/traveladvice``):
  XML ``<document>`` with the same fields, ``modificationdate`` ("Laatst
  gewijzigd op: 24-09-2026 | Nog steeds geldig op: 07-10-2026"), ``content``
  (categories of ``contentblock``: ``paragraphtitle`` + HTML ``paragraph``),
  ``lastmodified``, ``issued``, ``available`` and map files.

Built from the real documents in ``replay/captures/nl_nederland_wereldwijd/``:
Burkina Faso at 2026-09-23, 09-24 and 10-07, Egypt at 2026-10-07 and a
12-record excerpt of the list (2026-09). The list is paged: at most 200 records
per request (``rows``, ``offset``), so the index is read page by page
(:func:`next_page`: the next offset while a page is full) and the pages' records
are one index.

There is no level field: the colour code is only in the text, in sentences
with the word "kleurcode" ("De kleurcode van het reisadvies voor Spanje is
groen", "Voor de rest van Egypte geldt kleurcode geel", "Kleurcode oranje
geldt voor het westen van Egypte") in the introduction, and in the headings
of the "Regionale risico's" block ("Rood: niet reizen"). Mapping (version
`MAPPING_VERSION`): groen 1, geel 2, oranje 3, rood 4.

* The country level is the colour a sentence gives the country as a whole:
  "De kleurcode van het reisadvies voor <land> is <kleur>" (an exception in
  brackets, "rood (behalve voor de steden Hargeisa en Berbera)", does not
  change it), "voor het grootste deel <kleur>", "Voor de rest van <land>" or
  "Voor het grootste deel van <land> geldt kleurcode <kleur>". So Burkina Faso,
  "voor het grootste deel rood" with two orange cities, is 4; Somalia likewise.
* When no sentence speaks of the whole country (Iraq, the Palestinian
  Territories: every colour is given to named areas), the country level is the
  least strict colour stated: the advice for the least restricted part.
* The regional level is the strictest colour stated, when it is stricter than
  the country level.
* The raw level is the country's colour, then the other colours stated:
  ``geel; delen: oranje, rood``.

Times: ``lastmodified`` (UTC, milliseconds) is the updated time, the same
value the list gives; without it, the "Laatst gewijzigd op" date is read as
midnight in Europe/Amsterdam. The "Nog steeds geldig op" (still valid on) date
is re-stamped every day without any other change, so it is left out of the
summary (and so of the content hash): the real Burkina Faso document of
2026-10-07 is the 2026-09-24 one with only that date moved, and makes no new
version. The summary is the introduction and every content block's title and
text, whitespace collapsed (a re-flow of the HTML is no change).

Codes: ``isocode`` is ISO 3166-1 alpha-3 (``BFA``), ``XKX`` for Kosovo
(read as ``XK``) or an ISO 3166-2 code for the Caribbean Netherlands
(``BQ-BO`` Bonaire), kept as a sub-national entry.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pycountry
from lxml import etree

from advisories.countries import KOSOVO, from_alpha3
from advisories.errors import ContractError, ParseError
from advisories.models import Advisory, Level
from advisories.sources._base import (
    IndexEntry,
    IndexPage,
    Parser,
    Priority,
    RateLimitPolicy,
    ReplayRoute,
    SourceSpec,
    SyntheticImitation,
    SyntheticInput,
    SyntheticOutput,
    query_file,
)
from advisories.sources._html import html_tree, plain_text
from advisories.sources._json import load_json
from advisories.sources._synthetic import SYNTHETIC_KEY, SYNTHETIC_NOTE, checked, draw_time
from advisories.text import collapse

SOURCE_ID: Final = "nl_nederland_wereldwijd"
HOST: Final = "opendata.nederlandwereldwijd.nl"
BASE_URL: Final = f"https://{HOST}"
_API: Final = "/v2/sources/nederlandwereldwijd/infotypes"
INDEX_PATH: Final = f"{_API}/traveladvice"
#: The most records the list gives in one request.
PAGE_ROWS: Final = 200
#: JSON (the default is XML), and a page as large as the API gives.
INDEX_QUERY: Final = f"output=json&rows={PAGE_ROWS}"
#: Version of the colour → level mapping (see the module docstring).
MAPPING_VERSION: Final = "nl-1"
AMSTERDAM: Final = ZoneInfo("Europe/Amsterdam")

#: The four colour codes, least strict first.
COLOURS: Final[Mapping[str, Level]] = {
    "groen": Level.NORMAL_PRECAUTIONS,
    "geel": Level.INCREASED_CAUTION,
    "oranje": Level.RECONSIDER_TRAVEL,
    "rood": Level.DO_NOT_TRAVEL,
}
_COLOUR: Final = r"(groen|geel|oranje|rood)"
# A sentence that states a colour code: everything after "kleurcode" up to the full stop.
_KLEURCODE: Final = re.compile(r"\bkleurcode\b([^.]*)", re.IGNORECASE)
_COLOUR_WORD: Final = re.compile(rf"\b{_COLOUR}\b", re.IGNORECASE)
# Sentences about the country as a whole (see the module docstring).
_WHOLE_COUNTRY: Final = (
    re.compile(
        rf"\bkleurcode van het reisadvies voor (?!de rest\b)[^.]*? is "
        rf"(?:voor het grootste deel |grotendeels )?{_COLOUR}\b(?! voor\b)",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\bvoor (?:de rest|het grootste deel) van [^.]*? geldt (?:grotendeels )?"
        rf"kleurcode {_COLOUR}\b",
        re.IGNORECASE,
    ),
)
# The "Regionale risico's" block's headings: "Rood: niet reizen".
_HEADING: Final = re.compile(rf"^{_COLOUR}\s*:", re.IGNORECASE)
_REGIONAL_BLOCK: Final = "regionale risico"
# "Laatst gewijzigd op: 24-09-2026"
_LAST_CHANGED: Final = re.compile(r"Laatst gewijzigd op:\s*(\d{1,2})-(\d{1,2})-(\d{4})")
#: Codes that are neither ISO 3166-1 alpha-3 nor ISO 3166-2.
_CODE_EXCEPTIONS: Final[Mapping[str, str]] = {"XKX": KOSOVO}
_XML_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)

_Fail = Callable[[str], ParseError]


def document_path(isocode: str) -> str:
    """Path of a destination's document (``.../infotypes/countries/<iso>/traveladvice``)."""
    return f"{_API}/countries/{isocode.lower()}/traveladvice"


# --- colour codes -------------------------------------------------------------------------


def colours(fragments: list[str]) -> tuple[list[str], list[str]]:
    """The colours ``fragments`` (plain text) state: (for the whole country, for any part).

    Each list is in the order the colours first appear, without repeats.
    """
    whole: list[str] = []
    stated: list[str] = []
    for text in fragments:
        for sentence in _KLEURCODE.findall(text):
            stated += [c.lower() for c in _COLOUR_WORD.findall(sentence)]
        heading = _HEADING.match(text)
        if heading is not None:
            stated.append(heading[1].lower())
        for pattern in _WHOLE_COUNTRY:
            whole += [c.lower() for c in pattern.findall(text)]
    return list(dict.fromkeys(whole)), list(dict.fromkeys(whole + stated))


def levels_of(fragments: list[str], fail: _Fail) -> tuple[Level, Level | None, str]:
    """Country level, regional level and raw level from the text's colour codes.

    Raises:
        ParseError: if the text states no colour code.
    """
    whole, stated = colours(fragments)
    if not stated:
        raise fail("no colour code (kleurcode groen, geel, oranje or rood) in the text")
    country = min(whole or stated, key=COLOURS.__getitem__)
    strictest = max(stated, key=COLOURS.__getitem__)
    level = COLOURS[country]
    regional = COLOURS[strictest] if COLOURS[strictest] > level else None
    others = sorted((c for c in stated if c != country), key=COLOURS.__getitem__)
    raw = country + (f"; delen: {', '.join(others)}" if others else "")
    return level, regional, raw


# --- the list (index) ---------------------------------------------------------------------


def parse_index(body: bytes, *, url: str, fetched_at: datetime) -> list[IndexEntry]:
    """The list → one entry per destination, in the list's order.

    Raises:
        ParseError: if the document is not the JSON list, or a record lacks a
            readable code or ``lastmodified``.
        ContractError: if the list is empty or names a country twice.
    """
    records = _records(body, url)
    entries = [_index_entry(r, _fail_for(url, r)) for r in records]
    _one_per_country([e.country for e in entries], url)
    return entries


def next_page(body: bytes, *, url: str) -> IndexPage:
    """One page of the list (fetched from ``url``) → its record count and the next page's query.

    A full page (``rows`` records, at most `PAGE_ROWS`) may have a next one, at
    ``offset`` moved on by the records read; a shorter or empty page is the last, and
    so is a longer one (a server that does not page gave the whole list).

    Raises:
        ParseError: if the page is not the JSON list, or ``url`` has no page size
            (``rows=``) or a bad ``offset=``.
    """
    records = _records(body, url, allow_empty=True)
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    params = dict(query)
    try:
        rows = min(int(params["rows"]), PAGE_ROWS)
        offset = int(params.get("offset", "0"))
    except (KeyError, ValueError) as exc:
        raise ParseError(
            SOURCE_ID, url, "the list URL needs a page size (rows=N) and a numeric offset"
        ) from exc
    if len(records) != rows:
        return IndexPage(len(records), None)
    following = [(k, v) for k, v in query if k != "offset"] + [
        ("offset", str(offset + len(records)))
    ]
    return IndexPage(len(records), urlencode(following))


def parse_document(body: bytes, *, url: str, fetched_at: datetime) -> Advisory:
    """A destination's XML document → its advisory.

    Raises:
        ParseError: if the document is not well-formed XML with a ``<document>``
            root, or lacks a code, a colour code or an updated time.
    """
    root = _xml(body, url)
    fields = {child.tag: child.text or "" for child in root if isinstance(child.tag, str)}
    fail = _fail_for(url, fields)
    country = _country(fields.get("isocode") or fields.get("id"), fail)
    introduction = _html(fields.get("introduction", ""))
    blocks = _content_blocks(root)
    regional = [text for title, text, _ in blocks if _REGIONAL_BLOCK in title.lower()]
    headings = [h for title, _, hs in blocks if _REGIONAL_BLOCK in title.lower() for h in hs]
    level, regional_level, raw = levels_of([*introduction[1], *regional, *headings], fail)
    summary = "\n\n".join(
        [introduction[0]] + [f"{title}: {text}" if title else text for title, text, _ in blocks]
    )
    name = collapse(fields.get("location", "")) or country
    return Advisory(
        source=SOURCE_ID,
        country=country,
        country_name=name,
        level=level,
        regional_level=regional_level,
        raw_level=raw,
        title=collapse(fields.get("title", "")) or f"Reisadvies {name}",
        summary=summary,
        url=collapse(fields.get("canonical", "")) or BASE_URL + document_path(country),
        source_updated_at=_updated(fields, fail),
        mapping_version=MAPPING_VERSION,
    )


def parse_file(body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]:
    """The list or a destination's document → the advisories it carries.

    The list's introductions state every destination's colour codes, so it
    gives one advisory per destination (its summary is the introduction).

    Raises:
        ParseError: for anything that is neither.
        ContractError: for an empty list.
    """
    if body.lstrip()[:1] != b"[":
        return [parse_document(body, url=url, fetched_at=fetched_at)]
    advisories = [_list_advisory(r, _fail_for(url, r)) for r in _records(body, url)]
    _one_per_country([a.country for a in advisories], url)
    return advisories


def _fail_for(url: str, record: Mapping[str, Any]) -> _Fail:
    label = record.get("isocode") or record.get("id") or record.get("location") or "?"

    def fail(reason: str) -> ParseError:
        return ParseError(SOURCE_ID, url, f"{label}: {reason}")

    return fail


def _records(body: bytes, url: str, *, allow_empty: bool = False) -> list[dict[str, Any]]:
    # Before the JSON is read; an empty body has no "<", so load_json still calls it empty.
    if body.lstrip()[:1] == b"<":
        raise ParseError(SOURCE_ID, url, "this is a destination's XML document, not the list")
    records = load_json(SOURCE_ID, body, url)
    if not isinstance(records, list):
        raise ParseError(
            SOURCE_ID, url, f"expected the list (a JSON array), got a JSON {type(records).__name__}"
        )
    if not records and not allow_empty:
        raise ContractError(SOURCE_ID, url, "the list has no destinations")
    if not all(isinstance(r, dict) for r in records):
        raise ParseError(SOURCE_ID, url, "a record of the list is not an object")
    return records


def _one_per_country(countries: list[str], url: str) -> None:
    seen: set[str] = set()
    for country in countries:
        if country in seen:
            raise ContractError(SOURCE_ID, url, f"{country} is listed twice")
        seen.add(country)


def _index_entry(record: Mapping[str, Any], fail: _Fail) -> IndexEntry:
    country = _country(record.get("isocode") or record.get("id"), fail)
    level, regional, _ = levels_of(_html(_text(record, "introduction"))[1], fail)
    meaningful = {
        key: record.get(key)
        for key in ("id", "isocode", "location", "title", "introduction", "dataurl", "lastmodified")
    }
    blob = json.dumps(meaningful, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return IndexEntry(
        country=country,
        country_name=collapse(_text(record, "location")) or country,
        published_at=_updated(record, fail),
        entry_hash=hashlib.sha256(blob).hexdigest(),
        document_path=_document_path(record, country, fail),
        level=level,
        has_regional=regional is not None,
    )


def _list_advisory(record: Mapping[str, Any], fail: _Fail) -> Advisory:
    country = _country(record.get("isocode") or record.get("id"), fail)
    text, fragments = _html(_text(record, "introduction"))
    level, regional, raw = levels_of(fragments, fail)
    name = collapse(_text(record, "location")) or country
    return Advisory(
        source=SOURCE_ID,
        country=country,
        country_name=name,
        level=level,
        regional_level=regional,
        raw_level=raw,
        title=collapse(_text(record, "title")) or f"Reisadvies {name}",
        summary=text,
        url=collapse(_text(record, "canonical")) or BASE_URL + document_path(country),
        source_updated_at=_updated(record, fail),
        mapping_version=MAPPING_VERSION,
    )


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    return value if isinstance(value, str) else ""


def _document_path(record: Mapping[str, Any], country: str, fail: _Fail) -> str:
    """The record's ``dataurl`` path (on the API's host), else the path its code gives."""
    dataurl = _text(record, "dataurl")
    if not dataurl:
        code = _text(record, "isocode") or _text(record, "id")
        return document_path(code or country)
    parts = urlsplit(dataurl)
    if parts.hostname != HOST or not parts.path.startswith(f"{_API}/countries/"):
        raise fail(f"dataurl {dataurl!r} is not a document of {HOST}")
    return parts.path


def _country(code: object, fail: _Fail) -> str:
    """ISO 3166-1 alpha-2 from ``isocode`` (alpha-3, ``XKX``), or the ISO 3166-2 code as is."""
    if not isinstance(code, str) or not code.strip():
        raise fail("no isocode")
    upper = code.strip().upper()
    if upper in _CODE_EXCEPTIONS:
        return _CODE_EXCEPTIONS[upper]
    if "-" in upper and pycountry.subdivisions.get(code=upper) is not None:
        return upper
    country = from_alpha3(upper)
    if country is None:
        raise fail(f"unknown isocode {code!r}")
    return country


def _updated(fields: Mapping[str, Any], fail: _Fail) -> datetime:
    """``lastmodified`` (UTC), else the "Laatst gewijzigd op" date at midnight in Amsterdam."""
    value = fields.get("lastmodified")
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise fail(f"bad lastmodified {value!r}") from exc
        if parsed.tzinfo is None:
            raise fail(f"lastmodified {value!r} has no time zone")
        return parsed.astimezone(UTC)
    found = _LAST_CHANGED.search(_text(fields, "modificationdate"))
    if found is None:
        raise fail("no lastmodified and no 'Laatst gewijzigd op' date")
    day, month, year = (int(g) for g in found.groups())
    try:
        return datetime(year, month, day, tzinfo=AMSTERDAM).astimezone(UTC)
    except ValueError as exc:
        raise fail(f"bad date {found[0]!r}: {exc}") from exc


def _xml(body: bytes, url: str) -> Any:
    if not body.strip():
        raise ParseError(SOURCE_ID, url, "the document is empty")
    if body.lstrip()[:1] == b"[":
        raise ParseError(SOURCE_ID, url, "this is the list, not a destination's document")
    try:
        root = etree.fromstring(body, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ParseError(SOURCE_ID, url, f"malformed XML: {exc}") from exc
    if root is None or root.tag != "document":
        tag = None if root is None else root.tag
        raise ParseError(SOURCE_ID, url, f"expected a <document> root element, got <{tag}>")
    return root


def _html(fragment: str) -> tuple[str, list[str]]:
    """An HTML fragment's plain text and its statement blocks (paragraphs, items, headings)."""
    if not fragment.strip():
        return "", []
    blocks: list[str] = []
    with html_tree(fragment) as soup:
        text = collapse(plain_text(soup, blocks))
    # Block by block, so that no sentence is read across two list items.
    return text, blocks or [text]


def _content_blocks(root: Any) -> list[tuple[str, str, list[str]]]:
    """Each content block: (paragraph title, plain text, its h4 headings), in order."""
    found = []
    for block in root.iterfind("content/category/contentblock"):
        title = collapse(block.findtext("paragraphtitle") or "")
        paragraph = block.findtext("paragraph") or ""
        text, headings = "", []
        if paragraph.strip():
            with html_tree(paragraph) as soup:
                text = collapse(plain_text(soup, []))
                headings = [collapse(h.get_text(" ")) for h in soup.find_all("h4")]
        found.append((title, text, headings))
    return found


# --- the synthetic catalogue's imitation ------------------------------------------------
#
# The real list excerpt's 12 records, the Egypt record built from its real
# document, and (up to `SYNTHETIC_FULL`) destinations from pycountry with a
# colour drawn from the seed. Every document is the real Egypt document with
# the record's fields and introduction, its regional block replaced (the
# colours are the introduction's) and an XML comment saying SYNTHETIC; every
# record of the generated list carries a ``"_synthetic"`` key first. Times of
# generated destinations are drawn from the seed. (The real Burkina Faso and
# Egypt documents are served unmodified by the real-capture routes.)

SYNTHETIC_INDEX_TEMPLATE: Final = (
    "replay/captures/nl_nederland_wereldwijd/traveladvice_list_12-item-excerpt_2026-09.json"
)
SYNTHETIC_TEMPLATE: Final = (
    "replay/captures/nl_nederland_wereldwijd/traveladvice_EGY_2026-10-07.xml"
)
#: The real documents the real-capture routes serve (Burkina Faso's newest version).
REAL_DOCUMENTS: Final[Mapping[str, str]] = {
    "BFA": "replay/captures/nl_nederland_wereldwijd/history/traveladvice_BFA_2026-10-07.xml",
    "EGY": SYNTHETIC_TEMPLATE,
}
#: The list's first page (the list asked for without an offset).
SYNTHETIC_INDEX_FILE: Final = INDEX_PATH.lstrip("/") + ".json"
#: Destinations in a full catalogue (the real list has about this many).
SYNTHETIC_FULL: Final = 226
_SYNTHETIC_LABEL: Final = f"SYNTHETIC: {SYNTHETIC_NOTE}"
# The value of every generated record's "_synthetic" key (as ``labelled`` writes it).
_RECORD_LABEL: Final = f"{SYNTHETIC_NOTE} ({SYNTHETIC_INDEX_TEMPLATE})"
_COLOUR_OF: Final[Mapping[Level, str]] = {level: colour for colour, level in COLOURS.items()}
# Of generated destinations: the share of each colour, and of a stricter region.
_COLOUR_WEIGHTS: Final = {"groen": 50, "geel": 30, "oranje": 12, "rood": 8}
_REGIONAL_SHARE: Final = 0.3


def synthetic_page_file(page: int) -> str:
    """The catalogue file of the list's ``page`` (0 first), at the query a poller asks it by."""
    if page == 0:
        return SYNTHETIC_INDEX_FILE
    query = f"{INDEX_QUERY}&offset={page * PAGE_ROWS}"
    return query_file(INDEX_PATH.lstrip("/"), query) + ".json"


def _synthetic_file(isocode: str) -> str:
    return document_path(isocode).lstrip("/") + ".xml"


def _millis(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _introduction(name: str, colour: str, regional: str | None) -> str:
    items = [f"De kleurcode van het reisadvies voor {name} is {colour}."]
    if regional is not None:
        items.insert(
            0, f"De kleurcode van het reisadvies is {regional} voor het noorden van {name}."
        )
        items[1] = f"Voor de rest van {name} geldt kleurcode {colour}."
    lis = "".join(f"<li>{item}</li>" for item in items)
    return f"<h2>In het kort</h2><p>{_SYNTHETIC_LABEL}</p><ul>{lis}</ul>"


def _record(isocode: str, name: str, introduction: str, at: datetime) -> dict[str, Any]:
    key = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return {
        SYNTHETIC_KEY: _RECORD_LABEL,
        "id": isocode,
        "type": "reisadvies",
        "canonical": f"https://www.nederlandwereldwijd.nl/reisadvies/{key}",
        "dataurl": BASE_URL + document_path(isocode),
        "title": f"Reisadvies {name} | Ministerie van Buitenlandse Zaken",
        "introduction": introduction,
        "location": name,
        "locationkey": key,
        "isocode": isocode,
        "classification": "Dit veld wordt niet meer ondersteund",
        "lastmodified": _millis(at),
    }


def _synthetic_document(template: bytes, record: Mapping[str, Any]) -> bytes:
    """The Egypt document rewritten for one record (fields, introduction, regional block)."""
    root = etree.fromstring(template, _XML_PARSER)
    for tag in ("id", "isocode", "location", "locationkey", "canonical", "dataurl", "title"):
        element = root.find(tag)
        if element is not None:
            element.text = str(record[tag])
    root.find("introduction").text = etree.CDATA(record["introduction"])
    root.find("lastmodified").text = record["lastmodified"]
    changed = datetime.fromisoformat(record["lastmodified"]).astimezone(AMSTERDAM)
    root.find("modificationdate").text = f"Laatst gewijzigd op: {changed:%d-%m-%Y}"
    for block in root.iterfind("content/category/contentblock"):
        paragraph = block.find("paragraph")
        if paragraph is None:
            continue
        title = (block.findtext("paragraphtitle") or "").lower()
        text = (
            "Zie In het kort voor de kleurcodes."
            if _REGIONAL_BLOCK in title
            else (block.findtext("paragraph") or "").replace("Egypte", str(record["location"]))
        )
        paragraph.text = etree.CDATA(f"<p>{_SYNTHETIC_LABEL}</p>{text}")
    root.insert(0, etree.Comment(f" {_SYNTHETIC_LABEL} ({SYNTHETIC_TEMPLATE}) "))
    body: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return body


def synthetic_build(inp: SyntheticInput) -> SyntheticOutput:
    """The SYNTHETIC Nederland Wereldwijd catalogue: the list and one document per destination."""
    count = checked(inp.count, default=SYNTHETIC_FULL, maximum=SYNTHETIC_FULL)
    rng = random.Random(f"nl:{inp.seed}")
    real: list[dict[str, Any]] = json.loads(inp.read_capture(SYNTHETIC_INDEX_TEMPLATE))
    template = inp.read_capture(SYNTHETIC_TEMPLATE)
    egypt = etree.fromstring(template, _XML_PARSER)
    records = [{SYNTHETIC_KEY: _RECORD_LABEL, **r} for r in real]
    records.append(
        {
            SYNTHETIC_KEY: _RECORD_LABEL,
            **{t: egypt.findtext(t) or "" for t in ("id", "type", "canonical", "dataurl")},
            **{t: egypt.findtext(t) or "" for t in ("title", "introduction", "location")},
            **{t: egypt.findtext(t) or "" for t in ("locationkey", "isocode", "lastmodified")},
        }
    )
    taken = {str(r["isocode"]).upper() for r in records} | {"NLD"}
    for country in sorted(pycountry.countries, key=lambda c: str(c.alpha_3)):
        if len(records) >= SYNTHETIC_FULL:
            break
        if country.alpha_3 in taken:
            continue
        name = str(getattr(country, "common_name", None) or country.name)
        colour = rng.choices(list(_COLOUR_WEIGHTS), weights=list(_COLOUR_WEIGHTS.values()))[0]
        stricter = [c for c in COLOURS if COLOURS[c] > COLOURS[colour]]
        regional = rng.choice(stricter) if stricter and rng.random() < _REGIONAL_SHARE else None
        intro = _introduction(name, colour, regional)
        records.append(_record(str(country.alpha_3), name, intro, draw_time(rng)))
    # The real records first, so a small catalogue keeps real introductions.
    kept = records[:count]
    files: dict[str, Mapping[str, Any] | bytes] = {}
    for record in kept:
        files[_synthetic_file(str(record["isocode"]))] = _synthetic_document(template, record)
    # Pages of PAGE_ROWS as the API gives them; a list filling its last page exactly is
    # followed by an empty page, as the pager asks for one more.
    for page in range(len(kept) // PAGE_ROWS + 1):
        files[synthetic_page_file(page)] = _list_bytes(
            kept[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
        )
    return SyntheticOutput(countries=len(kept), files=files)


def _list_bytes(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8")


def _synthetic_record(
    read: Callable[[str], bytes], country: str
) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    """The page of the catalogue's list that holds ``country``: (page, its records, the record)."""
    for page in itertools.count():
        try:
            records: list[dict[str, Any]] = json.loads(read(synthetic_page_file(page)))
        except FileNotFoundError:
            records = []
        fail = _fail_for(synthetic_page_file(page), {})
        for record in records:
            if _country(record.get("isocode"), fail) == country:
                return page, records, record
        if len(records) < PAGE_ROWS:
            break
    raise KeyError(f"{SOURCE_ID} catalogue has no country {country!r}")


def synthetic_set_level(
    read: Callable[[str], bytes], country: str, level: Level, at: datetime
) -> tuple[datetime, list[tuple[str, Mapping[str, Any] | bytes]]]:
    """One destination's new colour for ``level`` (regional colours dropped)."""
    page, records, found = _synthetic_record(read, country)
    old = datetime.fromisoformat(str(found["lastmodified"]))
    published = max(at, old + timedelta(minutes=1)).replace(microsecond=0)
    name = str(found["location"])
    found[SYNTHETIC_KEY] = _RECORD_LABEL
    found["introduction"] = _introduction(name, _COLOUR_OF[level], None).replace(
        _SYNTHETIC_LABEL, f"{_SYNTHETIC_LABEL} (level change to {int(level)})"
    )
    found["lastmodified"] = _millis(published)
    template = read(_synthetic_file(str(found["isocode"])))
    document = _synthetic_document(template, found)
    return published, [
        (_synthetic_file(str(found["isocode"])), document),
        (synthetic_page_file(page), _list_bytes(records)),
    ]


SOURCE: Final = SourceSpec(
    id=SOURCE_ID,
    name="Ministerie van Buitenlandse Zaken (Nederland Wereldwijd)",
    publisher="Netherlands BZ (Nederland Wereldwijd open data)",
    priority=Priority.REGULAR,
    default_base_url=BASE_URL,
    index_path=INDEX_PATH,
    index_query=INDEX_QUERY,
    index_pager=next_page,
    document_path=f"{_API}/countries/<iso>/traveladvice",
    allowed_hosts=(HOST,),
    # The API gateway answered 429 to 6 parallel requests (SOURCES.md): one at a time,
    # 2 s apart, few per hour; a cycle fetches only the destinations whose record changed.
    rate_limit=RateLimitPolicy(30, 5, 2.0, "Europe/Amsterdam"),
    mapping_version=MAPPING_VERSION,
    levels=COLOURS,
    parser=Parser(parse_index, parse_document, parse_file),
    fixtures=SOURCE_ID,
    replay_routes=(
        ReplayRoute(INDEX_PATH, SYNTHETIC_INDEX_TEMPLATE),
        *(ReplayRoute(document_path(code), file) for code, file in REAL_DOCUMENTS.items()),
    ),
    synthetic=SyntheticImitation(
        build=synthetic_build, set_level=synthetic_set_level, levels=tuple(COLOURS.values())
    ),
    index_note="list `/v2/sources/nederlandwereldwijd/infotypes/traveladvice?output=json&rows=200`",
)

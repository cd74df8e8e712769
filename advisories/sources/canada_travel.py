"""Parser for Global Affairs Canada's travel advice data (JSON).

Two documents, both ``{"metadata": {"generated": ...}, "data": ...}``:

* the country index (``/travel-voyage/index-updated.json``): ``data`` maps a
  destination code to its entry (``advisory-state``, ``date-published``,
  ``has-regional-advisory`` and ``eng``/``fra`` blocks with the name, URL slug
  and level text);
* a destination's document (``/travel-voyage/cta-cap-<code>.json``): ``data``
  is that one destination, with the advisory HTML in ``eng.advisories``.

What this parser has to cope with, all seen in the captures:

* ``metadata.generated`` changes on every request: it is never hashed.
* Level: ``advisory-state`` 0–3, always with the same English phrase in
  ``eng.advisory-text`` (see `ADVISORY_STATES`), plus " (with regional
  advisories)" when ``has-regional-advisory`` is 1.
* ``date-published`` (index only) holds the same instant three ways: a Unix
  ``timestamp`` (whole seconds), a zone-less ``date`` in Eastern time and
  ``asp``, ISO 8601 with its offset (``-05:00``, ``-04:00`` in summer) and
  seven fractional digits. The per-country documents have no
  ``date-published``, only ``eng.friendly-date`` ("October 7, 2026 11:16 EDT").
* Two index layouts: from 2015 each entry repeats its key as ``country-iso``
  (which must then equal the key); the 2014 indexes key each entry by its code
  and have no ``country-iso`` in it, so the key is the code.
* Destination codes that are not ISO 3166-1 countries: ``PT-20`` (Azores, an
  ISO 3166-2 code already), ``IC`` (Canary Islands, a code ISO reserves but
  does not assign; the subdivision is ``ES-CN``) and ``XK`` (Kosovo).
* Names that resolve to nothing (``Korea, North (DPRK)``, ``Swaziland``) and a
  destination wider than its code (``IL`` is "Israel, the West Bank and the
  Gaza Strip"): the code, not the name, identifies the destination.
* Regional levels live only in the advisory HTML: one ``AdvisoryContainer``
  per level, the regional ones with class ``RegionalAdv`` and a heading
  "Regional Advisory - Avoid non-essential travel" (Mexico).
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from zoneinfo import ZoneInfo

import pycountry
from bs4 import BeautifulSoup, Tag

from advisories.countries import destination_from_name, from_alpha2
from advisories.errors import ContractError, ParseError
from advisories.models import MAPPING_VERSION, Advisory, Level
from advisories.sources._base import (
    IndexEntry,
    Parser,
    Priority,
    RateLimitPolicy,
    ReplayRoute,
    SourceSpec,
    SyntheticImitation,
    SyntheticInput,
    SyntheticOutput,
)
from advisories.sources._html import html_tree, plain_text
from advisories.sources._json import load_json_object
from advisories.sources._synthetic import checked, draw_time, json_text, labelled, spread
from advisories.text import collapse

SOURCE_ID: Final = "canada_travel"
BASE_URL: Final = "https://data.international.gc.ca"
#: Where travel.gc.ca publishes a destination's page (``<slug>`` appended).
WEB_PAGE: Final = "https://travel.gc.ca/destinations/"
#: Where the per-country documents live on the data host.
DATA_BASE: Final = BASE_URL

#: Canada publishes in Eastern time; a time without a zone is read in it.
EASTERN: Final = ZoneInfo("America/Toronto")


@dataclass(frozen=True, slots=True)
class AdvisoryState:
    """One value of Canada's ``advisory-state``.

    Attributes:
        level: Our level for it.
        phrase: The English phrase Canada gives it (``eng.advisory-text``).
    """

    level: Level
    phrase: str


#: ``advisory-state`` → our level. Checked against the data: in all 229
#: entries of the three 2015 indexes and the five 2026 documents, each state
#: comes with one phrase only (0 normal security precautions, 1 high degree of
#: caution, 2 avoid non-essential travel, 3 avoid all travel), and the
#: 2015-11-24 index raises Mali from 2 to 3 with the note "avoid all travel to
#: Mali" ("National advisory added").
ADVISORY_STATES: Final[Mapping[int, AdvisoryState]] = {
    0: AdvisoryState(Level.NORMAL_PRECAUTIONS, "Exercise normal security precautions"),
    1: AdvisoryState(Level.INCREASED_CAUTION, "Exercise a high degree of caution"),
    2: AdvisoryState(Level.RECONSIDER_TRAVEL, "Avoid non-essential travel"),
    3: AdvisoryState(Level.DO_NOT_TRAVEL, "Avoid all travel"),
}

# Destination codes that are neither ISO 3166-1 nor ISO 3166-2, as Canada
# uses them: ISO reserves IC for the Canary Islands without assigning it.
_CODE_EXCEPTIONS: Final[Mapping[str, str]] = {"IC": "ES-CN"}

# "October 7, 2026 11:16 EDT"; the zone is optional.
_FRIENDLY_DATE: Final = re.compile(
    r"([A-Za-z]+)\s+(\d{1,2}),\s*(\d{4})\s+(\d{1,2}):(\d{2})(?:\s+([A-Z]{2,4}))?"
)
_MONTHS: Final = (
    "january february march april may june july august september october november december"
).split()
# Abbreviations Canada prints after a friendly date, as fixed offsets.
_ZONES: Final[Mapping[str, timezone]] = {
    "EST": timezone(timedelta(hours=-5), "EST"),
    "EDT": timezone(timedelta(hours=-4), "EDT"),
}
# A container that is about part of the destination, not all of it.
_REGIONAL_CLASS: Final = "RegionalAdv"
_REGIONAL_HEADING: Final = re.compile(r"^\s*regional advisor", re.IGNORECASE)
_HEADINGS: Final = ("h1", "h2", "h3", "h4", "h5", "h6")

_Fail = Callable[[str], ParseError]


def parse_index(body: bytes, *, url: str, fetched_at: datetime) -> list[IndexEntry]:
    """The country index → one entry per destination, in the index's order.

    Args:
        body: The index as fetched.
        url: Where it was fetched from (for error messages).
        fetched_at: When it was fetched. Unused; kept for the shared signature.

    Raises:
        ParseError: if the document is not the index, or an entry has an
            unknown code, level or date (the message names the entry).
        ContractError: if the index lists no destinations, or two entries
            resolve to one code.
    """
    return [entry for entry, _, _ in _index(_data(body, url), url)]


def parse_document(body: bytes, *, url: str, fetched_at: datetime) -> Advisory:
    """A destination's ``cta-cap-<code>.json`` → its advisory.

    The regional level is the strictest level among the regional advisory
    containers of ``eng.advisories``, kept only when stricter than the
    destination's level.

    Args:
        body: The document as fetched.
        url: Where it was fetched from (for error messages).
        fetched_at: When it was fetched. Unused; kept for the shared signature.

    Raises:
        ParseError: if the document is not a destination's document or lacks
            what the advisory needs.
    """
    return _document(_data(body, url), url)


def parse_file(body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]:
    """Any Canada document → the advisories it carries.

    The index states every destination's level and date, so it gives one
    advisory per destination (no regional level: the index only flags that
    there is one; the summary is the index's English level text and latest
    update). A destination's document gives its one advisory.

    Raises:
        ParseError: for anything that is neither document, or a malformed one.
        ContractError: for an index that lists no destinations.
    """
    data = _data(body, url)
    if _is_destination(data):
        return [_document(data, url)]
    advisories = []
    for entry, raw, code in _index(data, url):
        eng = raw["eng"]
        state = ADVISORY_STATES[raw["advisory-state"]]
        assert entry.published_at is not None  # _index_entry always sets it
        advisories.append(
            Advisory(
                source=SOURCE_ID,
                country=entry.country,
                country_name=entry.country_name,
                level=state.level,
                regional_level=None,
                raw_level=_raw_level(raw, eng),
                title=_title(raw, eng, code),
                summary=_summary(collapse(str(eng.get("advisory-text") or "")), eng),
                url=_page_url(eng, code),
                source_updated_at=entry.published_at,
            )
        )
    return advisories


def document_path(code: str) -> str:
    """Path of a destination's document on the data host, from Canada's own code."""
    return f"/travel-voyage/cta-cap-{code.lower()}.json"


def _document(data: dict[str, Any], url: str) -> Advisory:
    """A destination's ``data`` → its advisory (see :func:`parse_document`)."""
    if not _is_destination(data):
        raise ParseError(SOURCE_ID, url, "expected a destination's document (data.country-iso)")

    def fail(reason: str) -> ParseError:
        return ParseError(SOURCE_ID, url, reason)

    code = _source_code(data, fail)
    country = _country(code, data, fail)
    eng = _english(data, fail)
    state = _state(data, eng, fail)
    advisories_html = eng.get("advisories")
    with html_tree(advisories_html if isinstance(advisories_html, str) else "") as soup:
        regional = _regional_level(soup, fail)
        advisory_text = collapse(plain_text(soup, []))
    published = data.get("date-published")
    updated_at = (
        _date_published(published, fail)
        if published is not None
        else _friendly_date(eng.get("friendly-date"), fail)
    )
    return Advisory(
        source=SOURCE_ID,
        country=country,
        country_name=_name(data, eng, code),
        level=state.level,
        regional_level=regional if regional is not None and regional > state.level else None,
        raw_level=_raw_level(data, eng),
        title=_title(data, eng, code),
        summary=_summary(advisory_text, eng),
        url=_page_url(eng, code),
        source_updated_at=updated_at,
    )


def _data(body: bytes, url: str) -> dict[str, Any]:
    """``data`` of a Canada document, or ParseError."""
    data = load_json_object(SOURCE_ID, body, url).get("data")
    if not isinstance(data, dict):
        raise ParseError(SOURCE_ID, url, "expected an object under 'data'")
    return data


def _is_destination(data: Mapping[str, Any]) -> bool:
    """A destination's document has its code at the top of ``data``; the index has entries."""
    return "country-iso" in data


def _index(data: dict[str, Any], url: str) -> list[tuple[IndexEntry, dict[str, Any], str]]:
    """Index entries, each with the raw entry it came from and Canada's code for it."""
    if _is_destination(data):
        raise ParseError(SOURCE_ID, url, "this is a destination's document, not the country index")
    if not data:
        raise ContractError(SOURCE_ID, url, "the index lists no destinations")
    entries: list[tuple[IndexEntry, dict[str, Any], str]] = []
    seen: dict[str, str] = {}
    for key, raw in data.items():

        def fail(reason: str, key: str = key) -> ParseError:
            return ParseError(SOURCE_ID, url, f"entry {key!r}: {reason}")

        if not isinstance(raw, dict):
            raise fail("is not an object")
        code = _entry_code(key, raw, fail)
        entry = _index_entry(code, raw, fail)
        if entry.country in seen:
            raise ContractError(
                SOURCE_ID,
                url,
                f"entries {seen[entry.country]!r} and {key!r} are both {entry.country}",
            )
        seen[entry.country] = key
        entries.append((entry, raw, code))
    return entries


def _entry_code(key: str, raw: Mapping[str, Any], fail: _Fail) -> str:
    """Canada's code for an index entry: its ``country-iso``, which must equal its key.

    Only an entry without ``country-iso`` at all (the 2014 layout) takes its
    key as the code; one whose ``country-iso`` is there but empty or not a
    string is malformed.
    """
    if "country-iso" not in raw:
        code = key.strip().upper()
        if not code:
            raise fail("has no country-iso code and an empty key")
        return code
    code = _source_code(raw, fail)
    if code != key:
        raise fail(f"is keyed {key!r} but its country-iso is {code!r}")
    return code


def _index_entry(code: str, raw: dict[str, Any], fail: _Fail) -> IndexEntry:
    eng = _english(raw, fail)
    state = _state(raw, eng, fail)
    published_at = _date_published(raw.get("date-published"), fail)
    has_regional = _flag(raw.get("has-regional-advisory"), "has-regional-advisory", fail)
    # The entry's own meaningful fields; never the payload (metadata.generated
    # changes on every request) nor the French text (it mirrors the English).
    meaningful = {
        "code": code,
        "advisory-state": raw["advisory-state"],
        "date-published": published_at.isoformat(),
        "has-regional-advisory": has_regional,
        "advisory-text": eng.get("advisory-text"),
    }
    blob = json.dumps(meaningful, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return IndexEntry(
        country=_country(code, raw, fail),
        country_name=_name(raw, eng, code),
        published_at=published_at,
        entry_hash=hashlib.sha256(blob).hexdigest(),
        document_path=document_path(code),
        level=state.level,
        has_regional=has_regional,
    )


def _source_code(data: Mapping[str, Any], fail: _Fail) -> str:
    code = data.get("country-iso")
    if not isinstance(code, str) or not code.strip():
        raise fail("has no country-iso code")
    return code.strip().upper()


def _country(code: str, data: Mapping[str, Any], fail: _Fail) -> str:
    """Our code for Canada's destination code.

    ISO 3166-1 alpha-2 (and ``XK``) as is; an ISO 3166-2 code (``PT-20``) as
    is; ``IC`` as ``ES-CN``. When the English name resolves too, it must name
    the same country, which catches a code that is not what we think.
    """
    country = from_alpha2(code) if len(code) == 2 else None
    if country is None and pycountry.subdivisions.get(code=code) is not None:
        country = code
    if country is None:
        country = _CODE_EXCEPTIONS.get(code)
    if country is None:
        raise fail(f"unknown destination code {code!r}")
    raw_eng = data.get("eng")
    name = (raw_eng.get("name") if isinstance(raw_eng, dict) else None) or data.get("country-eng")
    by_name = destination_from_name(name) if isinstance(name, str) else None
    if by_name is not None and by_name.codes != (country,):
        raise fail(f"code {code!r} is {country} but its name {name!r} is {'/'.join(by_name.codes)}")
    return country


def _english(data: Mapping[str, Any], fail: _Fail) -> dict[str, Any]:
    eng = data.get("eng")
    if not isinstance(eng, dict):
        raise fail("has no English ('eng') block")
    return eng


def _state(data: Mapping[str, Any], eng: Mapping[str, Any], fail: _Fail) -> AdvisoryState:
    """The entry's advisory state, checked against its English level text."""
    value = data.get("advisory-state")
    # bool is an int; JSON true is not a state.
    if not isinstance(value, int) or isinstance(value, bool) or value not in ADVISORY_STATES:
        raise fail(f"unknown advisory-state {value!r}")
    state = ADVISORY_STATES[value]
    text = eng.get("advisory-text")
    if isinstance(text, str) and text.strip():
        if not collapse(text).lower().startswith(state.phrase.lower()):
            raise fail(f"advisory-state {value} ({state.phrase!r}) but advisory-text {text!r}")
    return state


def _level_text(data: Mapping[str, Any], eng: Mapping[str, Any]) -> str:
    """The English level text as published, else the state's phrase."""
    text = eng.get("advisory-text")
    if isinstance(text, str) and text.strip():
        return collapse(text)
    return ADVISORY_STATES[data["advisory-state"]].phrase


def _raw_level(data: Mapping[str, Any], eng: Mapping[str, Any]) -> str:
    """``"<advisory-state>: <English level text>"``, e.g. ``"2: Avoid non-essential travel"``."""
    return f"{data['advisory-state']}: {_level_text(data, eng)}"


def _flag(value: object, field: str, fail: _Fail) -> bool:
    if value in (0, 1) and not isinstance(value, bool):
        return bool(value)
    raise fail(f"{field} is {value!r}, expected 0 or 1")


def _date_published(value: object, fail: _Fail) -> datetime:
    """``date-published`` as aware UTC.

    ``asp`` first: it has the offset Canada published with and sub-second
    precision. Then the Unix ``timestamp``. Then ``date``, which has no
    zone and is Eastern time (it equals ``asp`` without its offset in every
    captured entry).
    """
    if not isinstance(value, dict):
        raise fail("has no date-published")
    asp = value.get("asp")
    if isinstance(asp, str) and asp.strip():
        return _iso_time(asp, "date-published.asp", fail)
    timestamp = value.get("timestamp")
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        return datetime.fromtimestamp(timestamp, UTC)
    date = value.get("date")
    if isinstance(date, str) and date.strip():
        return _iso_time(date, "date-published.date", fail)
    raise fail(f"date-published has no asp, timestamp or date: {value!r}")


def _iso_time(text: str, field: str, fail: _Fail) -> datetime:
    """An ISO 8601 time as aware UTC; one without a zone is Eastern time."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise fail(f"bad {field} {text!r}") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=EASTERN)).astimezone(UTC)


def _friendly_date(value: object, fail: _Fail) -> datetime:
    """``eng.friendly-date`` ("October 7, 2026 11:16 EDT") as aware UTC.

    The stated zone (EST/EDT) is used as printed; without one the time is
    read as Eastern.
    """
    text = collapse(value) if isinstance(value, str) else ""
    match = _FRIENDLY_DATE.fullmatch(text)
    if match is None or match[1].lower() not in _MONTHS:
        raise fail(f"has no date-published and a bad eng.friendly-date {value!r}")
    month, day, year, hour, minute, zone = match.groups()
    if zone is not None and zone not in _ZONES:
        raise fail(f"unknown time zone {zone!r} in eng.friendly-date {value!r}")
    tzinfo = _ZONES[zone] if zone is not None else EASTERN
    try:
        local = datetime(
            int(year), _MONTHS.index(month.lower()) + 1, int(day), int(hour), int(minute),
            tzinfo=tzinfo,
        )  # fmt: skip
    except ValueError as exc:
        raise fail(f"bad eng.friendly-date {value!r}: {exc}") from exc
    return local.astimezone(UTC)


def _regional_level(soup: BeautifulSoup, fail: _Fail) -> Level | None:
    """Strictest level among the regional advisory containers, or None.

    A container is regional by its class (``RegionalAdv``) or its heading
    ("Regional Advisory - ..."); its level is the strictest level phrase in
    its headings, else in its "Risk Levels" links.
    """
    found: list[Level] = []
    for container in soup.find_all(class_="AdvisoryContainer"):
        if not isinstance(container, Tag):
            continue
        headings = [collapse(h.get_text(" ")) for h in container.find_all(_HEADINGS)]
        classes = container.get_attribute_list("class")
        if _REGIONAL_CLASS not in classes and not any(_REGIONAL_HEADING.match(h) for h in headings):
            continue
        level = _strictest_phrase(headings) or _strictest_phrase(
            collapse(a.get_text(" ")) for a in container.find_all("a", title="Risk Levels")
        )
        if level is None:
            raise fail(f"a regional advisory states no level: {headings!r}")
        found.append(level)
    return max(found, default=None)


def _strictest_phrase(texts: Iterable[str]) -> Level | None:
    """The strictest level whose English phrase appears in any of ``texts``."""
    levels = [
        state.level
        for text in texts
        for state in ADVISORY_STATES.values()
        if state.phrase.lower() in text.lower()
    ]
    return max(levels, default=None)


def _name(data: Mapping[str, Any], eng: Mapping[str, Any], code: str) -> str:
    name = eng.get("name") or data.get("country-eng")
    return collapse(name) if isinstance(name, str) and name.strip() else code


def _title(data: Mapping[str, Any], eng: Mapping[str, Any], code: str) -> str:
    """Canada's documents have no title: "<name>: <level text>" is what its pages head with."""
    return f"{_name(data, eng, code)}: {_level_text(data, eng)}"


def _summary(advisory_text: str, eng: Mapping[str, Any]) -> str:
    """The advisory text, then Canada's note of its latest update, as paragraphs."""
    paragraphs = [advisory_text] if advisory_text else []
    updates = eng.get("recent-updates")
    if isinstance(updates, str) and updates.strip():
        paragraphs.append(f"Latest update: {collapse(updates)}")
    return "\n\n".join(paragraphs)


def _page_url(eng: Mapping[str, Any], code: str) -> str:
    """The travel.gc.ca page by slug, else the data document."""
    slug = eng.get("url-slug")
    if isinstance(slug, str) and slug.strip():
        return WEB_PAGE + slug.strip()
    return DATA_BASE + document_path(code)


# --- the synthetic catalogue's imitation ------------------------------------------------
#
# The destinations, names, codes and levels of the real 2015-11-30 index; each
# document a copy of the real 2026 Mexico document with its fields and
# advisory HTML rewritten for the destination's level. Times are whole
# minutes, so the index's ``date-published`` and the document's minute-precise
# ``friendly-date`` state the same instant. Every document is labelled SYNTHETIC.

SYNTHETIC_INDEX_TEMPLATE: Final = "canada/index_cta-cap_2015-11-30.json"
SYNTHETIC_TEMPLATE: Final = "canada/cta-cap-mx_2026-10-07_trimmed.json"
INDEX_PATH: Final = "/travel-voyage/index-updated.json"
SYNTHETIC_INDEX_FILE: Final = INDEX_PATH.lstrip("/")

# AdvisoryContainer classes by advisory-state: ExHigh and AvoidAll are in the
# captures; the other two are made up (no capture has such a country).
_SYNTHETIC_CLASSES: Final = {0: "ExNormal", 1: "ExHigh", 2: "AvoidNonEssential", 3: "AvoidAll"}
_REGIONAL_SUFFIX: Final = " (with regional advisories)"
_TEMPLATE_NAME: Final = "Mexico"
_FRENCH_MONTHS: Final = (
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
).split()


def synthetic_build(inp: SyntheticInput) -> SyntheticOutput:
    """The SYNTHETIC Canada catalogue: index and one document per destination."""
    index: dict[str, Any] = json.loads(inp.read_capture(SYNTHETIC_INDEX_TEMPLATE))
    entries: dict[str, dict[str, Any]] = index["data"]
    count = checked(inp.count, default=len(entries), maximum=len(entries))
    rng = random.Random(f"ca:{inp.seed}")
    times = {key: draw_time(rng) for key in entries}
    keys = spread(list(entries), count, lambda k: entries[k]["advisory-state"], rng)
    template_text = inp.read_capture(SYNTHETIC_TEMPLATE).decode("utf-8")
    files: dict[str, Mapping[str, Any] | bytes] = {}
    data = {}
    chosen = set(keys)
    for key in [k for k in entries if k in chosen]:  # the index's own order
        entry = entries[key]
        _synthetic_publish(entry, times[key], note="SYNTHETIC republication.")
        data[key] = entry
        files[document_path(key).lstrip("/")] = synthetic_document(template_text, entry, key=key)
    newest = max(times[key] for key in keys)
    index["metadata"]["generated"] = _synthetic_generated(newest + timedelta(hours=1))
    index["data"] = data
    files[SYNTHETIC_INDEX_FILE] = labelled(index, SYNTHETIC_INDEX_TEMPLATE)
    return SyntheticOutput(countries=len(keys), files=files)


def _synthetic_publish(entry: dict[str, Any], published: datetime, *, note: str) -> None:
    """Set an index entry's publication time (all three forms) and update notes."""
    eastern = published.astimezone(EASTERN)
    entry["date-published"] = {
        "timestamp": int(published.timestamp()),
        "date": eastern.strftime("%Y-%m-%d %H:%M:%S"),
        "asp": eastern.isoformat(timespec="microseconds"),
    }
    entry["eng"]["friendly-date"] = _synthetic_friendly_date(published)
    zone = "HAE" if eastern.dst() else "HNE"
    entry["fra"]["friendly-date"] = (
        f"{eastern.day} {_FRENCH_MONTHS[eastern.month - 1]} {eastern.year} {eastern:%H:%M} {zone}"
    )
    entry["eng"]["recent-updates"] = note
    entry["fra"]["recent-updates"] = f"{note} (SYNTHÉTIQUE)"


def synthetic_document(
    template_text: str, entry: Mapping[str, Any], *, key: str | None = None
) -> dict[str, Any]:
    """The per-country template (the Mexico capture's text) rewritten for one index entry.

    Args:
        template_text: The per-country template's text.
        entry: The index entry.
        key: The entry's key in the index: its code when it has no
            ``country-iso`` (the 2014 layout), as :func:`parse_index` reads it.

    Raises:
        ValueError: if the entry has no ``country-iso`` and no key is given.
    """
    code = entry.get("country-iso", key)
    if code is None:
        raise ValueError("a Canada index entry without country-iso needs its key")
    eng = entry["eng"]
    name = eng["name"]
    text = template_text.replace(_TEMPLATE_NAME, json_text(html.escape(name, quote=False)))
    document: dict[str, Any] = json.loads(text)
    document["metadata"]["generated"] = _synthetic_generated(
        datetime.fromtimestamp(entry["date-published"]["timestamp"], UTC)
    )
    data = document["data"]
    state = entry["advisory-state"]
    data.update({
        "country-iso": code,
        "advisory-state": state,
        "has-advisory-warning": entry["has-advisory-warning"],
        "has-regional-advisory": entry["has-regional-advisory"],
    })  # fmt: skip
    data["eng"].update({
        "name": name,
        "url-slug": eng["url-slug"],
        "friendly-date": eng["friendly-date"],
        "advisory-text": eng["advisory-text"],
        "recent-updates": eng["recent-updates"],
        "advisories": _synthetic_advisories(name, state, bool(entry["has-regional-advisory"])),
    })  # fmt: skip
    return labelled(document, SYNTHETIC_TEMPLATE)


def _synthetic_advisories(name: str, state: int, regional: bool) -> str:
    """Advisory HTML in the markup of the real documents (see the Mexico capture)."""
    phrase = ADVISORY_STATES[state].phrase
    safe = html.escape(name)
    link = '<a class="wb-lbx" title="Risk Levels" href="#levels">{}</a>'
    blocks = [
        f'<div class="AdvisoryContainer {_SYNTHETIC_CLASSES[state]}"><h3>{safe} - {phrase}</h3>'
        f"<p>{link.format(phrase)} in {safe} (SYNTHETIC advisory text).</p></div>"
    ]
    if regional:
        # One step stricter than the country, as far as the scale goes.
        regional_phrase = ADVISORY_STATES[min(state + 1, 3)].phrase
        blocks.append(
            f'<div class="AdvisoryContainer RegionalAdv"><h3>Regional Advisory - '
            f"{regional_phrase}</h3><p>{link.format(regional_phrase)} to some regions "
            f"(SYNTHETIC).</p></div>"
        )
    return "".join(blocks)


def synthetic_set_level(
    read: Callable[[str], bytes], country: str, level: Level, at: datetime
) -> tuple[datetime, list[tuple[str, Mapping[str, Any] | bytes]]]:
    """One destination's new ``advisory-state``, in its index entry and document."""
    state = int(level) - 1
    index_body = read(SYNTHETIC_INDEX_FILE)
    index: dict[str, Any] = json.loads(index_body)
    entries = parse_index(index_body, url=SYNTHETIC_INDEX_FILE, fetched_at=at)
    found = next((e for e in entries if e.country == country), None)
    if found is None:
        raise KeyError(f"{SOURCE_ID} catalogue has no country {country!r}")
    key = next(k for k in index["data"] if document_path(k) == found.document_path)
    entry = index["data"][key]
    assert found.published_at is not None  # the parser always sets it
    published = max(at, found.published_at + timedelta(minutes=1))
    entry["advisory-state"] = state
    entry["has-advisory-warning"] = int(state >= 2)
    phrases = {
        "eng": ADVISORY_STATES[state].phrase,
        "fra": f"SYNTHÉTIQUE {ADVISORY_STATES[state].phrase}",
    }
    for language, phrase in phrases.items():
        suffix = _REGIONAL_SUFFIX if entry["has-regional-advisory"] else ""
        entry[language]["advisory-text"] = phrase + suffix
    _synthetic_publish(entry, published, note=f"SYNTHETIC level change to advisory-state {state}.")
    document_file = document_path(key).lstrip("/")
    template_text = read(document_file).decode("utf-8")
    document = synthetic_document(template_text, entry, key=key)
    index["metadata"]["generated"] = _synthetic_generated(published)
    return published, [(document_file, document), (SYNTHETIC_INDEX_FILE, index)]


def _synthetic_generated(when: datetime) -> dict[str, Any]:
    """``metadata.generated`` as Canada writes it: Unix time and Eastern local time."""
    eastern = when.astimezone(EASTERN)
    return {"timestamp": int(when.timestamp()), "date": eastern.strftime("%Y-%m-%d %H:%M:%S")}


def _synthetic_friendly_date(when: datetime) -> str:
    """``"October 7, 2026 11:16 EDT"``."""
    eastern = when.astimezone(EASTERN)
    return f"{eastern:%B} {eastern.day}, {eastern.year} {eastern:%H:%M} {eastern.tzname()}"


def _cta_cap(code: str, capture: str) -> ReplayRoute:
    return ReplayRoute(document_path(code), f"canada/{capture}")


SOURCE: Final = SourceSpec(
    id=SOURCE_ID,
    name="Global Affairs Canada",
    publisher="Global Affairs Canada",
    priority=Priority.REGULAR,
    default_base_url=BASE_URL,
    index_path=INDEX_PATH,
    document_path="/travel-voyage/cta-cap-<iso>.json",
    allowed_hosts=("data.international.gc.ca", "travel.gc.ca"),
    rate_limit=RateLimitPolicy(100, 12, 1.2, "America/Toronto"),
    mapping_version=MAPPING_VERSION,
    levels={f"{state}: {s.phrase}": s.level for state, s in ADVISORY_STATES.items()},
    parser=Parser(parse_index, parse_document, parse_file),
    fixtures="canada",
    replay_routes=(
        # The newest of the three 2015 index captures (no current index-updated.json
        # capture exists); the older two are swapped in by the tests that need them.
        ReplayRoute(INDEX_PATH, SYNTHETIC_INDEX_TEMPLATE),
        _cta_cap("fr", "cta-cap-fr_2026-10-05_trimmed.json"),
        _cta_cap("hk", "cta-cap-hk_2026-09-24_trimmed.json"),
        _cta_cap("ht", "cta-cap-ht_2026-09-24_trimmed.json"),
        _cta_cap("mx", "cta-cap-mx_2026-10-07_trimmed.json"),
        _cta_cap("ua", "cta-cap-ua_2026-09-24_trimmed.json"),
    ),
    synthetic=SyntheticImitation(
        build=synthetic_build,
        set_level=synthetic_set_level,
        levels=tuple(s.level for s in ADVISORY_STATES.values()),
    ),
)

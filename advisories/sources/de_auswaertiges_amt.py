"""Germany: Auswärtiges Amt, its open-data travel-warning API (JSON).

Two documents, both ``{"response": {<contentId>: {...}, "contentList": [...]}}``:

* the index (``/opendata/travelwarning``): every country's entry by content
  id, with ``lastModified``, ``effective``, ``title``, ``countryCode``,
  ``iso3CountryCode``, ``countryName`` and four flags: ``warning``
  (Reisewarnung), ``partialWarning`` (Teilreisewarnung), ``situationWarning``
  and ``situationPartWarning``; plus the response's own ``lastModified``;
* a country's document (``/opendata/travelwarning/<contentId>``): the same
  entry with ``content`` (the page's HTML), ``lastChanges`` and ``disclaimer``.

Built from the real index and Nepal document of 2026-07-11 (200 entries:
155 without a flag, 27 ``partialWarning``, 18 ``warning``; no situation flag
set) and the community OpenAPI spec (bundesAPI/travelwarning-api 1.2.6).
What rests on the spec alone: the meaning of the two situation flags (the spec:
"currently (January 2022) COVID-19 travel warning / partial travel warning,
may change"), the empty-object answer when the API is switched off or fails,
the capitalised ``CountryCode``/``CountryName`` spelling the spec's schema
uses (the real documents spell them ``countryCode``/``countryName``; both are
read), and millisecond timestamps (the spec's examples are milliseconds, the
real documents seconds: a value above 10^11 is read as milliseconds).

Level mapping (version `MAPPING_VERSION`), from the German semantics:

* ``warning`` — Reisewarnung, "Vor Reisen nach ... wird gewarnt": 4.
* ``situationWarning`` — a travel warning for a situation (COVID-19 when the
  spec was written), which advised against tourist travel: 3.
* ``partialWarning`` — Teilreisewarnung, a warning for parts of the country:
  regional 4; the country as a whole has no warning, so 1 unless another flag
  says more.
* ``situationPartWarning`` — the situation warning for parts: regional 3.
* no flag — Reise- und Sicherheitshinweise only: 1. The API states no level 2
  (the pages' "Sicherheitshinweise" are text, not a flag).

The raw level is the set flags in that order, comma-joined, or ``none``.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bs4 import Tag

from advisories.countries import from_alpha2, from_alpha3
from advisories.errors import ContractError, ParseError
from advisories.models import Advisory, Level
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
from advisories.sources._json import load_json
from advisories.sources._synthetic import checked, draw_time, iso, labelled, spread
from advisories.text import collapse

SOURCE_ID: Final = "de_auswaertiges_amt"
BASE_URL: Final = "https://www.auswaertiges-amt.de"
INDEX_PATH: Final = "/opendata/travelwarning"
#: Version of the flag → level mapping (see the module docstring).
MAPPING_VERSION: Final = "de-1"

#: The four flags, in the order ``raw_level`` lists them.
FLAGS: Final = ("warning", "partialWarning", "situationWarning", "situationPartWarning")
#: Flags about the whole country → its level.
WHOLE_COUNTRY_LEVELS: Final[Mapping[str, Level]] = {
    "warning": Level.DO_NOT_TRAVEL,
    "situationWarning": Level.RECONSIDER_TRAVEL,
}
#: Flags about parts of the country → the regional level.
PARTS_LEVELS: Final[Mapping[str, Level]] = {
    "partialWarning": Level.DO_NOT_TRAVEL,
    "situationPartWarning": Level.RECONSIDER_TRAVEL,
}
#: ``raw_level`` of an entry without any flag.
NO_FLAG: Final = "none"
#: What each flag is called on the Auswärtiges Amt's pages.
FLAG_NAMES: Final[Mapping[str, str]] = {
    "warning": "Reisewarnung",
    "partialWarning": "Teilreisewarnung",
    "situationWarning": "Situationsbedingte Reisewarnung",
    "situationPartWarning": "Situationsbedingte Teilreisewarnung",
}
_NO_FLAG_NAME: Final = "Reise- und Sicherheitshinweise (keine Reisewarnung)"

# Timestamps above this are milliseconds (10^11 seconds is the year 5138).
_MILLISECONDS_FROM: Final = 10**11
# The security section of a country's page (heading "Sicherheit" or "Sicherheit - Reisewarnung").
_SECURITY_HEADING: Final = "Sicherheit"

_Fail = Callable[[str], ParseError]


def document_path(content_id: str) -> str:
    """Path of a country's document (``/opendata/travelwarning/<contentId>``)."""
    return f"{INDEX_PATH}/{content_id}"


def parse_index(body: bytes, *, url: str, fetched_at: datetime) -> list[IndexEntry]:
    """The index → one entry per country, in the index's order.

    Raises:
        ParseError: if the document is not an API response, or an entry has no
            readable code, flag or ``lastModified`` (the message names it).
        ContractError: if the index lists no countries (the API answers ``{}``
            when it is switched off or failing), or two entries are one country.
    """
    entries = _entries(_response(body, url), url)
    if any("content" in raw for _, raw in entries) and len(entries) == 1:
        raise ParseError(SOURCE_ID, url, "this is a country's document, not the index")
    return [
        _index_entry(content_id, raw, _fail_for(url, content_id)) for content_id, raw in entries
    ]


def parse_document(body: bytes, *, url: str, fetched_at: datetime) -> Advisory:
    """A country's ``/opendata/travelwarning/<contentId>`` → its advisory.

    Raises:
        ParseError: if the document is not one country's document (with
            ``content``) or lacks what the advisory needs.
    """
    entries = _entries(_response(body, url), url)
    if len(entries) != 1 or "content" not in entries[0][1]:
        raise ParseError(
            SOURCE_ID,
            url,
            f"expected one country's document with content, got {len(entries)} entries",
        )
    content_id, raw = entries[0]
    return _advisory(content_id, raw, _fail_for(url, content_id), with_content=True)


def parse_file(body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]:
    """Any document of the API → the advisories it carries.

    The index states every country's flags and time, so it gives one advisory
    per country (its summary is the flags' names); a country's document gives
    its one advisory with the page's text.

    Raises:
        ParseError: for anything that is not an API response.
        ContractError: for an index that lists no countries.
    """
    entries = _entries(_response(body, url), url)
    if len(entries) == 1 and "content" in entries[0][1]:
        return [parse_document(body, url=url, fetched_at=fetched_at)]
    advisories = [
        _advisory(content_id, raw, _fail_for(url, content_id), with_content=False)
        for content_id, raw in entries
    ]
    _one_per_country([(a.country, c) for a, (c, _) in zip(advisories, entries, strict=True)], url)
    return advisories


def _fail_for(url: str, content_id: str) -> _Fail:
    def fail(reason: str) -> ParseError:
        return ParseError(SOURCE_ID, url, f"entry {content_id}: {reason}")

    return fail


def _response(body: bytes, url: str) -> dict[str, Any]:
    """``response`` of an API document, or ParseError / ContractError."""
    document = load_json(SOURCE_ID, body, url)
    if not isinstance(document, dict):
        raise ParseError(
            SOURCE_ID,
            url,
            f'expected the API\'s {{"response": ...}} object, got a JSON {type(document).__name__}',
        )
    if not document:
        raise ContractError(
            SOURCE_ID, url, "the API answered {} (it does when switched off or failing)"
        )
    response = document.get("response")
    if not isinstance(response, dict):
        raise ParseError(SOURCE_ID, url, "expected an object under 'response'")
    return response


def _entries(response: dict[str, Any], url: str) -> list[tuple[str, dict[str, Any]]]:
    """The response's entries by content id, in ``contentList`` order when it has one."""
    entries = {key: value for key, value in response.items() if key.isdigit()}
    if not all(isinstance(value, dict) for value in entries.values()):
        raise ParseError(SOURCE_ID, url, "an entry of 'response' is not an object")
    if not entries:
        raise ContractError(SOURCE_ID, url, "the response lists no countries")
    listed = response.get("contentList")
    order = [str(c) for c in listed] if isinstance(listed, list) else []
    ordered = [c for c in order if c in entries] + [c for c in entries if c not in set(order)]
    return [(content_id, entries[content_id]) for content_id in ordered]


def _one_per_country(countries: list[tuple[str, str]], url: str) -> None:
    seen: dict[str, str] = {}
    for country, content_id in countries:
        if country in seen:
            raise ContractError(
                SOURCE_ID, url, f"entries {seen[country]} and {content_id} are both {country}"
            )
        seen[country] = content_id


def _index_entry(content_id: str, raw: Mapping[str, Any], fail: _Fail) -> IndexEntry:
    country = _country(raw, fail)
    flags = _flags(raw, fail)
    level, regional = _levels(flags)
    published = _timestamp(raw.get("lastModified"), "lastModified", fail)
    # The entry's own fields; never the response's lastModified, which moves
    # whenever any country changes.
    meaningful = {
        "contentId": content_id,
        "country": country,
        "title": raw.get("title"),
        "lastModified": raw.get("lastModified"),
        "effective": raw.get("effective"),
        **{flag: flags[flag] for flag in FLAGS},
    }
    blob = json.dumps(meaningful, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return IndexEntry(
        country=country,
        country_name=_name(raw, country),
        published_at=published,
        entry_hash=hashlib.sha256(blob).hexdigest(),
        document_path=document_path(content_id),
        level=level,
        has_regional=regional is not None,
    )


def _advisory(
    content_id: str, raw: Mapping[str, Any], fail: _Fail, *, with_content: bool
) -> Advisory:
    country = _country(raw, fail)
    flags = _flags(raw, fail)
    level, regional = _levels(flags)
    set_flags = [flag for flag in FLAGS if flags[flag]]
    label = ", ".join(FLAG_NAMES[f] for f in set_flags) or _NO_FLAG_NAME
    paragraphs = [label]
    if with_content:
        changes = _html_text(raw.get("lastChanges"))
        if changes:
            paragraphs.append(changes)
        security = security_text(raw.get("content"))
        if security:
            paragraphs.append(security)
    title = raw.get("title")
    return Advisory(
        source=SOURCE_ID,
        country=country,
        country_name=_name(raw, country),
        level=level,
        regional_level=regional,
        raw_level=",".join(set_flags) or NO_FLAG,
        title=collapse(title) if isinstance(title, str) and title.strip() else _name(raw, country),
        summary="\n\n".join(paragraphs),
        url=BASE_URL + document_path(content_id),
        source_updated_at=_timestamp(raw.get("lastModified"), "lastModified", fail),
        mapping_version=MAPPING_VERSION,
    )


def _country(raw: Mapping[str, Any], fail: _Fail) -> str:
    """``countryCode`` (the spec's ``CountryCode``), checked against ``iso3CountryCode``."""
    code = raw.get("countryCode", raw.get("CountryCode"))
    country = from_alpha2(code) if isinstance(code, str) else None
    if country is None:
        raise fail(f"unknown countryCode {code!r}")
    iso3 = raw.get("iso3CountryCode")
    by_iso3 = from_alpha3(iso3) if isinstance(iso3, str) else None
    # Kosovo's XKX is no ISO code and resolves to nothing: only a contradiction fails.
    if by_iso3 is not None and by_iso3 != country:
        raise fail(f"countryCode {code!r} is {country} but iso3CountryCode {iso3!r} is {by_iso3}")
    return country


def _name(raw: Mapping[str, Any], country: str) -> str:
    name = raw.get("countryName", raw.get("CountryName"))
    return collapse(name) if isinstance(name, str) and name.strip() else country


def _flags(raw: Mapping[str, Any], fail: _Fail) -> dict[str, bool]:
    flags = {}
    for flag in FLAGS:
        value = raw.get(flag)
        if not isinstance(value, bool):
            raise fail(f"{flag} is {value!r}, expected true or false")
        flags[flag] = value
    return flags


def _levels(flags: Mapping[str, bool]) -> tuple[Level, Level | None]:
    """Country level and regional level (if stricter) from the flags."""
    level = max(
        (WHOLE_COUNTRY_LEVELS[f] for f in WHOLE_COUNTRY_LEVELS if flags[f]),
        default=Level.NORMAL_PRECAUTIONS,
    )
    regional = max((PARTS_LEVELS[f] for f in PARTS_LEVELS if flags[f]), default=None)
    return level, regional if regional is not None and regional > level else None


def _timestamp(value: object, field: str, fail: _Fail) -> datetime:
    """A Unix time in seconds (the real documents) or milliseconds (the spec) as aware UTC."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise fail(f"{field} is {value!r}, expected a Unix time")
    seconds = value / 1000 if value >= _MILLISECONDS_FROM else value
    return datetime.fromtimestamp(seconds, UTC)


def _html_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        return ""
    with html_tree(value) as soup:
        return collapse(plain_text(soup, []))


def security_text(content: object) -> str:
    """The plain text of the page's security section ("Sicherheit ..." up to the next h2).

    Pages without such a section give the text of the whole page. The info box
    every page opens with (newsletter, app, crisis list) is left out.
    """
    if not isinstance(content, str) or not content.strip():
        return ""
    with html_tree(content) as soup:
        for box in soup.select("blockquote.info-box"):
            box.decompose()
        heading = next(
            (
                h
                for h in soup.find_all("h2")
                if collapse(h.get_text(" ")).startswith(_SECURITY_HEADING)
            ),
            None,
        )
        if not isinstance(heading, Tag):
            return collapse(plain_text(soup, []))
        parts = [collapse(heading.get_text(" "))]
        for sibling in heading.next_siblings:
            if isinstance(sibling, Tag) and sibling.name == "h2":
                break
            if isinstance(sibling, Tag):
                parts.append(collapse(plain_text(sibling, [])) if sibling.contents else "")
            elif isinstance(sibling, str):
                parts.append(collapse(sibling))
        return " ".join(p for p in parts if p)


# --- the synthetic catalogue's imitation ------------------------------------------------
#
# The content ids, codes, names and flags of the real 2026-07-11 index; each
# country's document a copy of the real Nepal document with the entry's
# fields, its names replaced and a SYNTHETIC note in ``lastChanges`` and
# ``content``; times drawn from the seed (whole minutes). Every document is
# labelled SYNTHETIC at its top level, beside ``response``.

SYNTHETIC_INDEX_TEMPLATE: Final = (
    "replay/captures/de_auswaertiges_amt/travelwarning_index_2026-07-11.json"
)
SYNTHETIC_TEMPLATE: Final = (
    "replay/captures/de_auswaertiges_amt/travelwarning_221216_nepal_2026-07-11.json"
)
SYNTHETIC_INDEX_FILE: Final = INDEX_PATH.lstrip("/") + ".json"
_TEMPLATE_ID: Final = "221216"
_TEMPLATE_NAME: Final = "Nepal"
# What set_level writes: the API has no level 2.
_SYNTHETIC_LEVEL_FLAGS: Final[Mapping[Level, tuple[str, ...]]] = {
    Level.NORMAL_PRECAUTIONS: (),
    Level.RECONSIDER_TRAVEL: ("situationWarning",),
    Level.DO_NOT_TRAVEL: ("warning",),
}


def _synthetic_file(content_id: str) -> str:
    return document_path(content_id).lstrip("/") + ".json"


def synthetic_build(inp: SyntheticInput) -> SyntheticOutput:
    """The SYNTHETIC Auswärtiges Amt catalogue: index and one document per country."""
    index: dict[str, Any] = json.loads(inp.read_capture(SYNTHETIC_INDEX_TEMPLATE))
    response = index["response"]
    entries = dict(_entries(response, SYNTHETIC_INDEX_TEMPLATE))
    count = checked(inp.count, default=len(entries), maximum=len(entries))
    rng = random.Random(f"de:{inp.seed}")
    times = {content_id: draw_time(rng) for content_id in entries}
    chosen = set(spread(list(entries), count, lambda c: tuple(entries[c][f] for f in FLAGS), rng))
    template: dict[str, Any] = json.loads(inp.read_capture(SYNTHETIC_TEMPLATE))
    files: dict[str, Mapping[str, Any] | bytes] = {}
    kept: dict[str, Any] = {}
    for content_id in [c for c in entries if c in chosen]:  # the index's own order
        entry = dict(entries[content_id])
        note = _synthetic_publish(entry, times[content_id], note="SYNTHETIC republication")
        kept[content_id] = entry
        files[_synthetic_file(content_id)] = _synthetic_document(template, content_id, entry, note)
    newest = max(times[c] for c in kept)
    out = {"lastModified": int(newest.timestamp()), **kept, "contentList": list(kept)}
    files[SYNTHETIC_INDEX_FILE] = labelled({"response": out}, SYNTHETIC_INDEX_TEMPLATE)
    return SyntheticOutput(countries=len(kept), files=files)


def _synthetic_publish(entry: dict[str, Any], published: datetime, *, note: str) -> str:
    """Set an entry's times; the note that says so (with the minute, so no two are alike)."""
    entry["lastModified"] = entry["effective"] = int(published.timestamp())
    return html.escape(f"{note} of {iso(published)}", quote=False)


def _synthetic_document(
    template: Mapping[str, Any], content_id: str, entry: Mapping[str, Any], note: str
) -> dict[str, Any]:
    """The Nepal document rewritten for one index entry (its fields, names and note)."""
    real = template["response"][_TEMPLATE_ID]
    name = html.escape(str(entry.get("countryName") or entry["countryCode"]), quote=False)
    document = {
        **entry,
        "lastChanges": f"Letzte Änderungen: <br><span>{note}</span>",
        "content": f"<p>{note} (SYNTHETIC text).</p>"
        + real["content"].replace(_TEMPLATE_NAME, name),
        "disclaimer": real.get("disclaimer", ""),
    }
    return labelled(
        {"response": {content_id: document, "contentList": [content_id]}}, SYNTHETIC_TEMPLATE
    )


def synthetic_set_level(
    read: Callable[[str], bytes], country: str, level: Level, at: datetime
) -> tuple[datetime, list[tuple[str, Mapping[str, Any] | bytes]]]:
    """One country's new flags for ``level`` (1, 3 or 4; regional flags dropped)."""
    if level not in _SYNTHETIC_LEVEL_FLAGS:
        raise ValueError(f"{SOURCE_ID} has no level {int(level)} (the API states 1, 3 or 4)")
    index: dict[str, Any] = json.loads(read(SYNTHETIC_INDEX_FILE))
    response = index["response"]
    found = next(
        (c for c, e in _entries(response, SYNTHETIC_INDEX_FILE) if e.get("countryCode") == country),
        None,
    )
    if found is None:
        raise KeyError(f"{SOURCE_ID} catalogue has no country {country!r}")
    entry = response[found]
    old = datetime.fromtimestamp(entry["lastModified"], UTC)
    published = max(at, old + timedelta(minutes=1))
    for flag in FLAGS:
        entry[flag] = flag in _SYNTHETIC_LEVEL_FLAGS[level]
    note = _synthetic_publish(entry, published, note=f"SYNTHETIC level change to {int(level)}")
    response["lastModified"] = int(published.timestamp())
    document: dict[str, Any] = json.loads(read(_synthetic_file(found)))
    text = document["response"][found]
    text.update({f: entry[f] for f in (*FLAGS, "lastModified", "effective")})
    text["lastChanges"] = f"Letzte Änderungen: <br><span>{note}</span>"
    return published, [(_synthetic_file(found), document), (SYNTHETIC_INDEX_FILE, index)]


SOURCE: Final = SourceSpec(
    id=SOURCE_ID,
    name="Auswärtiges Amt (German Federal Foreign Office)",
    publisher="Germany Auswärtiges Amt (open-data API)",
    priority=Priority.REGULAR,
    default_base_url=BASE_URL,
    index_path=INDEX_PATH,
    document_path=INDEX_PATH + "/<contentId>",
    allowed_hosts=("www.auswaertiges-amt.de",),
    rate_limit=RateLimitPolicy(60, 10, 1.5, "Europe/Berlin"),
    mapping_version=MAPPING_VERSION,
    levels={NO_FLAG: Level.NORMAL_PRECAUTIONS, **WHOLE_COUNTRY_LEVELS},
    parser=Parser(parse_index, parse_document, parse_file),
    fixtures="de_auswaertiges_amt",
    replay_routes=(
        ReplayRoute(INDEX_PATH, SYNTHETIC_INDEX_TEMPLATE),
        ReplayRoute(document_path(_TEMPLATE_ID), SYNTHETIC_TEMPLATE),
    ),
    synthetic=SyntheticImitation(
        build=synthetic_build, set_level=synthetic_set_level, levels=tuple(_SYNTHETIC_LEVEL_FLAGS)
    ),
)

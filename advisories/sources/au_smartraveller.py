"""Australia: Smartraveller (DFAT), from its destinations export (JSON).

One document carries every advisory, like the US feed:
``https://www.smartraveller.gov.au/destinations-export``, a Drupal view export,
a JSON array with one object per destination (``title``,
``field_overall_advice_level``, ``field_advice_levels``, ``field_last_update``,
``field_last_update_notes``, ``field_region``, ``field_url``, ``changed`` ...).
No per-country document is fetched.

What this parser has to cope with, all seen in the real export of 2026-04-10
(180 entries):

* Level: ``field_overall_advice_level`` is one of four phrases (see
  `LEVELS`), mapped 1–4, or "No travel advice". The one entry with "No travel
  advice" is not a destination at all but the site's page about countries
  Smartraveller does not advise on (title "No travel advice", empty fields):
  such an entry is skipped, never stored (there is no level to state).
* Regional levels live in ``field_advice_levels``: the advice items joined by
  ", ", each starting with its level phrase ("Do not travel Do not travel to
  the area within 450km of the borders with Mali and Niger ...", or "Reconsider
  your need to travel to Cabinda, Lunda Norte and Lunda Sul. Reconsider ...").
  Items are split where ", " is followed by a level phrase (the item texts
  contain commas, never a capitalised phrase after one); the strictest item
  stricter than the overall level is the regional level. Typos in the phrases
  ("Exercise normal safety cautions", "Exercise a normal safety precautions")
  are read as the phrase they misspell.
* ``changed`` ("Sun, 2026-03-01 10:29") is Canberra local time without a zone:
  it is read in Australia/Sydney (the same zone, daylight saving included).
  ``field_last_update`` is the text of the latest update, not a time.
* Entity debris as served: ``&#039;`` and ``&amp;#039;`` (apostrophes, once or
  twice escaped), ``&nbsp;``, and ``&amp;**`` where a quote or apostrophe stood
  ("Côte d&amp;**Ivoire", "(see &amp;**Safety&amp;**)"), read as ``'``.
* Names: "Côte d&#039;Ivoire (Ivory Coast)", "North Korea (Democratic People's
  Republic of Korea)", "Palestine", "Türkiye"; the URL slug
  (``.../africa/cote-divoire-ivory-coast``) is checked against the name when
  both resolve.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from advisories.countries import destination_from_name, destination_from_slug
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
    index_of_advisories,
)
from advisories.sources._json import load_json
from advisories.sources._synthetic import NEWEST
from advisories.text import collapse

SOURCE_ID: Final = "au_smartraveller"
BASE_URL: Final = "https://www.smartraveller.gov.au"
INDEX_PATH: Final = "/destinations-export"
#: Version of the mapping below; stored with every advisory.
MAPPING_VERSION: Final = "au-1"
#: The real, complete export the replay server and the synthetic catalogue serve.
EXPORT_CAPTURE: Final = "au_smartraveller/destinations-export_2026-04-10.json"

#: Smartraveller's four advice levels (its own numbering is the same order).
LEVELS: Final[Mapping[str, Level]] = {
    "Exercise normal safety precautions": Level.NORMAL_PRECAUTIONS,
    "Exercise a high degree of caution": Level.INCREASED_CAUTION,
    "Reconsider your need to travel": Level.RECONSIDER_TRAVEL,
    "Do not travel": Level.DO_NOT_TRAVEL,
}
#: The overall "level" of the export's entry that is no destination.
NO_TRAVEL_ADVICE: Final = "No travel advice"

#: Canberra publishes in its own time; ``changed`` carries no zone.
SYDNEY: Final = ZoneInfo("Australia/Sydney")

# Where an advice item starts: its level phrase, as written (misspellings included).
_ITEM_PHRASES: Final[tuple[tuple[str, Level], ...]] = (
    (r"Exercise (?:a )?normal safety (?:pre)?cautions?", Level.NORMAL_PRECAUTIONS),
    (r"Exercise a high degree of caution", Level.INCREASED_CAUTION),
    (r"Reconsider your need to travel", Level.RECONSIDER_TRAVEL),
    (r"Do not travel", Level.DO_NOT_TRAVEL),
)
_ITEM_START: Final = re.compile("|".join(f"({p})" for p, _ in _ITEM_PHRASES))
_ITEM_SPLIT: Final = re.compile(r",\s+(?=(?:" + "|".join(p for p, _ in _ITEM_PHRASES) + r")\b)")
_CHANGED: Final = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{4})-(\d{2})-(\d{2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
)
# "&amp;**" is what the export has where a quote or apostrophe stood.
_QUOTE_DEBRIS: Final = "&amp;**"

_Fail = Callable[[str], ParseError]


def parse_index(body: bytes, *, url: str, fetched_at: datetime) -> list[IndexEntry]:
    """The export as index entries; each carries its complete advisory.

    The export holds every destination's advice, so no per-country document
    is fetched for this source.
    """
    return index_of_advisories(parse_file(body, url=url, fetched_at=fetched_at))


def parse_document(body: bytes, *, url: str, fetched_at: datetime) -> Advisory:
    """Not used: the export is this source's only document (see :func:`parse_index`)."""
    raise ParseError(SOURCE_ID, url, f"{SOURCE_ID} has no per-country documents; parse the export")


def parse_file(body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]:
    """The destinations export → one advisory per destination, sorted by country code.

    Args:
        body: The export as fetched.
        url: Where it was fetched from (for error messages).
        fetched_at: When it was fetched. Unused: every entry carries its own
            ``changed`` time; kept for the signature all parsers share.

    Raises:
        ParseError: if the document is not the export, or an entry has an
            unknown level, a bad ``changed`` time or an unresolvable country
            (the message names the entry).
        ContractError: if the export lists no destinations, or two entries
            resolve to one country.
    """
    entries = _entries(body, url)
    advisories: dict[str, Advisory] = {}
    titles: dict[str, str] = {}
    for position, raw in enumerate(entries, 1):

        def fail(reason: str, position: int = position, raw: Any = raw) -> ParseError:
            title = raw.get("title") if isinstance(raw, dict) else None
            return ParseError(SOURCE_ID, url, f"entry {position} ({title!r}): {reason}")

        if not isinstance(raw, dict):
            raise fail("is not an object")
        advisory = _advisory(raw, fail)
        if advisory is None:
            continue
        if advisory.country in advisories:
            first = titles[advisory.country]
            raise ContractError(
                SOURCE_ID, url, f"{first!r} and {raw.get('title')!r} are both {advisory.country}"
            )
        advisories[advisory.country] = advisory
        titles[advisory.country] = str(raw.get("title"))
    if not advisories:
        raise ContractError(SOURCE_ID, url, "the export lists no destination with travel advice")
    return [advisories[code] for code in sorted(advisories)]


def _entries(body: bytes, url: str) -> list[Any]:
    document = load_json(SOURCE_ID, body, url)
    if not isinstance(document, list):
        raise ParseError(
            SOURCE_ID, url, f"expected the export's JSON array, got {type(document).__name__}"
        )
    if not document:
        raise ContractError(SOURCE_ID, url, "the export lists no destinations")
    return document


def _advisory(raw: Mapping[str, Any], fail: _Fail) -> Advisory | None:
    """One entry's advisory, or None for an entry without travel advice."""
    overall = clean(_text(raw, "field_overall_advice_level"))
    if overall == NO_TRAVEL_ADVICE:
        return None
    if overall not in LEVELS:
        raise fail(f"unknown field_overall_advice_level {overall!r}")
    level = LEVELS[overall]
    name = clean(_text(raw, "title"))
    if not name:
        raise fail("has no title")
    page = _text(raw, "field_url").strip()
    items = advice_items(_text(raw, "field_advice_levels"))
    regional = max((item_level for item_level, _ in items), default=None)
    notes = clean(_text(raw, "field_last_update_notes"))
    latest = clean(_text(raw, "field_last_update"))
    paragraphs = [notes] if notes else []
    paragraphs += [text for _, text in items[1:]]
    if latest:
        paragraphs.append(f"Latest update: {latest}")
    return Advisory(
        source=SOURCE_ID,
        country=_country(name, page, fail),
        country_name=name,
        level=level,
        regional_level=regional if regional is not None and regional > level else None,
        raw_level=overall,
        title=f"{name}: {overall}",
        summary="\n\n".join(paragraphs),
        url=page if page.startswith(BASE_URL + "/") else BASE_URL + "/destinations",
        source_updated_at=changed_at(_text(raw, "changed"), fail),
        mapping_version=MAPPING_VERSION,
    )


def _text(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    return value if isinstance(value, str) else ""


def clean(text: str) -> str:
    """Export text as a reader sees it: entities decoded, debris read, whitespace collapsed."""
    text = text.replace(_QUOTE_DEBRIS, "'")
    # Some entities are escaped twice ("&amp;#039;"); a third pass changes nothing.
    text = html.unescape(html.unescape(text))
    return collapse(text.replace("\xa0", " "))


def advice_items(field: str) -> list[tuple[Level, str]]:
    """``field_advice_levels`` as (level, text) items, in order.

    An item that does not start with a level phrase (none in the captures) is
    kept as text of the item before it.
    """
    items: list[tuple[Level, str]] = []
    for part in _ITEM_SPLIT.split(clean(field)):
        match = _ITEM_START.match(part)
        if match is not None:
            assert match.lastindex is not None  # one group per phrase
            items.append((_ITEM_PHRASES[match.lastindex - 1][1], part))
        elif items:
            level, text = items[-1]
            items[-1] = (level, f"{text}, {part}")
    return items


def changed_at(value: str, fail: _Fail) -> datetime:
    """``changed`` ("Sun, 2026-03-01 10:29", Canberra time) as aware UTC."""
    match = _CHANGED.fullmatch(collapse(value))
    if match is None:
        raise fail(f"bad changed time {value!r}")
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=SYDNEY)
    except ValueError as exc:
        raise fail(f"bad changed time {value!r}: {exc}") from exc
    return local.astimezone(UTC)


def _country(name: str, page: str, fail: _Fail) -> str:
    """ISO code from the name, checked against the page's slug when both resolve."""
    by_name = destination_from_name(name)
    slug = urlsplit(page).path.rstrip("/").rsplit("/", 1)[-1]
    by_slug = destination_from_slug(slug) if slug else None
    if by_name and by_slug and by_name.codes != by_slug.codes:
        raise fail(
            f"name {name!r} is {'/'.join(by_name.codes)} but slug {slug!r} is "
            f"{'/'.join(by_slug.codes)}"
        )
    destination = by_name or by_slug
    code = None if destination is None or destination.partial else destination.code
    if code is None:
        raise fail(f"cannot resolve the country of {name!r} ({page!r})")
    return code


def synthetic_build(inp: SyntheticInput) -> SyntheticOutput:
    """The real export, copied byte for byte (complete: it lists every destination)."""
    export = inp.read_capture(EXPORT_CAPTURE)
    countries = len(parse_file(export, url=EXPORT_CAPTURE, fetched_at=NEWEST))
    return SyntheticOutput(countries=countries, files={INDEX_PATH.lstrip("/") + ".json": export})


SOURCE: Final = SourceSpec(
    id=SOURCE_ID,
    name="Australian Government, Department of Foreign Affairs and Trade (Smartraveller)",
    publisher="Australia DFAT (Smartraveller)",
    # One document carries every advisory: a cycle is one conditional request.
    priority=Priority.HIGH,
    default_base_url=BASE_URL,
    index_path=INDEX_PATH,
    document_path=None,
    allowed_hosts=("www.smartraveller.gov.au",),
    rate_limit=RateLimitPolicy(60, 10, 1.5, "Australia/Sydney"),
    mapping_version=MAPPING_VERSION,
    levels=LEVELS,
    parser=Parser(parse_index, parse_document, parse_file),
    fixtures="au_smartraveller",
    replay_routes=(ReplayRoute(INDEX_PATH, EXPORT_CAPTURE),),
    synthetic=SyntheticImitation(build=synthetic_build, real=True),
    index_note="destinations export `/destinations-export` (carries every advisory)",
)

"""Parser for the US Department of State travel-advisory RSS feed (``TAsTWs.xml``).

The feed is RSS 2.0 with one ``<item>`` per destination. What this parser has
to cope with, all seen in the real feed:

* Two link styles: new AEM pages ``.../destination.<iso3>.html`` (once with an
  alpha-2 code, ``destination.kn.html``; ``xks`` for Kosovo; ``xqx``, not ISO,
  for Saba and Sint Eustatius) and legacy pages
  ``.../traveladvisories/traveladvisories/<slug>-travel-advisory.html``
  (slugs misspelt at times, or without the suffix: ``west-bank.html``).
* ``Country-Tag`` categories are FIPS 10-4 codes (Zambia ``ZA``, Zimbabwe
  ``ZI``, North Korea ``KN``, which is ISO for Saint Kitts and Nevis): they are
  never used.
* Titles with stray spaces, curly apostrophes, ``Mexico Travel Advisory - ...``
  and a doubled level (``Israel - Level 3: ... - Level 3: ...``).
* The same country twice: a stale legacy item beside a newer AEM item.
* Destinations that are part of a country (``West Bank``, ``Gaza``; ``Bonaire``,
  ``Saba and Sint Eustatius``) and an umbrella of several (``French West
  Indies``), see `advisories.countries`.
* Date-only ``pubDate`` values (``Tue, 15 Sep 2026``).
* Descriptions whose first words sit outside the first ``<p>``
  (``Reconsider travel<p>to <b>Saudi Arabia</b> ...``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import urlsplit

from lxml import etree

from advisories.countries import (
    Destination,
    destination_from_name,
    destination_from_slug,
    from_alpha2,
    from_alpha3,
    from_name,
    normalise_name,
)
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
    index_of_advisories,
)
from advisories.sources._html import html_tree, plain_text
from advisories.text import collapse

SOURCE_ID: Final = "us_state_dept"
BASE_URL: Final = "https://travel.state.gov"

# Separator between the parts of a destination that the feed splits in two
# (West Bank / Gaza) in one-line fields; summaries get a blank line.
PART_SEPARATOR: Final = " / "

# "Level 3: Reconsider Travel"; the phrase stops before a repeated " - Level ...".
_LEVEL_TEXT: Final = re.compile(r"Level\s*([1-4])\s*[:\-–—]\s*([A-Za-z](?:[A-Za-z ]*[A-Za-z])?)")
_TITLE_SEPARATOR: Final = re.compile(r"[\s\-–—:|]+$")
_TRAVEL_ADVISORY_SUFFIX: Final = re.compile(r"\s*travel advisory\s*$", re.IGNORECASE)
_AEM_LINK: Final = re.compile(r"/destination\.([A-Za-z]{2,3})\.html?$")
_LEGACY_LINK: Final = re.compile(r"/traveladvisories/traveladvisories/([^/]+?)\.html?$")
_DATE_ONLY: Final = re.compile(r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})")
_MONTHS: Final = "jan feb mar apr may jun jul aug sep oct nov dec".split()

# An area statement starts a block: "Do Not Travel to the Yemen border due to
# terrorism.", a heading "Do not travel to:" over a list, "Reconsider travel to
# Ceuta due to unrest.", "Exercise increased caution in Yala ... due to ...".
# "Do not travel outside the Freetown peninsula after nightfall" (a time, not
# an area) and "Reconsider travel due to ..." have no place and do not match.
_AREA_STATEMENT: Final = re.compile(
    r"^\W*(do not travel|reconsider travel|exercise increased caution)"
    r"\s+(?:to|in|within|near|on)\b\s*(.*)$",
    re.IGNORECASE | re.DOTALL,
)
# A heading that gives an area its level: "Colo I Suva Forest Park - Level 2:
# Exercise Increased Caution" (Fiji), "The Highlands Region ... – Level 4: Do
# Not Travel" (Papua New Guinea).
_AREA_HEADING: Final = re.compile(r"^(.+?)\s*[-–—|]\s*Level\s*([1-4])\s*:\s*[A-Za-z][A-Za-z ]*$")
_STATEMENT_LEVELS: Final = {
    "do not travel": Level.DO_NOT_TRAVEL,
    "reconsider travel": Level.RECONSIDER_TRAVEL,
    "exercise increased caution": Level.INCREASED_CAUTION,
}
# Designated areas always come with a reason or head a list; advice such as
# Kuwait's "Do not travel to areas that are off the beaten path." (landmines)
# does not, and is not an area with its own level.
_REASON: Final = re.compile(r"\bdue to\b|\bfor any reason\b", re.IGNORECASE)
# Where the place ends: its reason, or punctuation (not the dot in "11.3 km").
_PLACE_END: Final = re.compile(r"\s+due to\b|\s+for any reason\b|[:;,]|\.(?:\s|$)", re.IGNORECASE)

# Builds the ParseError for one item, naming it.
_Fail = Callable[[str], ParseError]

_XML_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


@dataclass(frozen=True, slots=True)
class _Item:
    """One feed item, parsed but not yet de-duplicated."""

    position: int
    title: str
    name: str
    url: str
    is_aem: bool
    destination: Destination
    level: Level
    raw_level: str
    regional_level: Level | None
    summary: str
    published: datetime

    @property
    def label(self) -> str:
        """How error messages name the item."""
        return _label(self.position, self.title)


def parse_index(body: bytes, *, url: str, fetched_at: datetime) -> list[IndexEntry]:
    """The feed as index entries; each carries its complete advisory.

    The feed holds every country's full advisory text, so no per-country
    document is fetched for this source.
    """
    return index_of_advisories(parse_file(body, url=url, fetched_at=fetched_at))


def parse_document(body: bytes, *, url: str, fetched_at: datetime) -> Advisory:
    """Not used: the feed is this source's only document (see :func:`parse_index`)."""
    raise ParseError(SOURCE_ID, url, "us_state_dept has no per-country documents; parse the feed")


def parse_file(body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]:
    """Parse the whole feed into one advisory per country.

    Args:
        body: The RSS document as fetched.
        url: Where it was fetched from (for error messages).
        fetched_at: When it was fetched. Unused: every item carries its own
            ``pubDate``; kept for the signature all parsers share.

    Returns:
        Advisories sorted by country code, one per code: of items for the
        same country the newest wins (a tie goes to the AEM link, then to
        the earlier item), and parts of one country are combined.

    Raises:
        ParseError: if the document is not an RSS feed, or an item has no
            readable level, date, link or country (the message names it).
        ContractError: if the feed has no items, or its items for one country
            cannot be reconciled.
    """
    channel = _channel(body, url)
    elements = channel.findall("item")
    if not elements:
        raise ContractError(SOURCE_ID, url, "the feed has no <item> elements")
    items = [_parse_item(element, position, url) for position, element in enumerate(elements, 1)]
    return _one_per_country(items, url)


def _channel(body: bytes, url: str) -> etree._Element:
    """The ``<channel>`` of an RSS 2.0 document, or ParseError."""
    if not body.strip():
        raise ParseError(SOURCE_ID, url, "the document is empty")
    try:
        root = etree.fromstring(body, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ParseError(SOURCE_ID, url, f"not well-formed XML: {exc}") from exc
    if root.tag != "rss":
        raise ParseError(SOURCE_ID, url, f"expected an <rss> document, got <{root.tag}>")
    channel = root.find("channel")
    if channel is None:
        raise ParseError(SOURCE_ID, url, "the <rss> document has no <channel>")
    return channel


def _label(position: int, title: str) -> str:
    """How error messages name an item: its position (from 1) and title."""
    return f"item {position} ({title!r})"


def _parse_item(element: etree._Element, position: int, url: str) -> _Item:
    raw_title = element.findtext("title")
    title = collapse(raw_title or "")

    def fail(reason: str) -> ParseError:
        return ParseError(SOURCE_ID, url, f"{_label(position, title)}: {reason}")

    if not title:
        raise fail("no <title>")
    link = (element.findtext("link") or "").strip()
    if not link:
        raise fail("no <link>")

    level, raw_level, name = _level_and_name(element, title, fail)
    published = _published(element.findtext("pubDate"), fail)
    destination, is_aem = _destination(name, link, fail)
    blocks: list[str] = []
    with html_tree(element.findtext("description") or "") as soup:
        summary = collapse(plain_text(soup, blocks))
    return _Item(
        position=position,
        title=title,
        name=name,
        url=link,
        is_aem=is_aem,
        destination=destination,
        level=level,
        raw_level=raw_level,
        regional_level=_regional_level(blocks, level),
        summary=summary,
        published=published,
    )


def _level_and_name(element: etree._Element, title: str, fail: _Fail) -> tuple[Level, str, str]:
    """Level, its text as published and the destination name, from the title.

    The ``Threat-Level`` category carries the same text; it is the fallback
    when the title has none, and a cross-check when it has.
    """
    category = next(
        (
            collapse(c.text or "")
            for c in element.iterfind("category")
            if c.get("domain") == "Threat-Level"
        ),
        "",
    )
    category_match = _LEVEL_TEXT.search(category)
    title_match = _LEVEL_TEXT.search(title)
    if title_match and category_match and title_match[1] != category_match[1]:
        raise fail(f"title says level {title_match[1]}, Threat-Level says {category!r}")
    match = title_match or category_match
    if match is None:
        raise fail("no advisory level in the title or the Threat-Level category")
    name = title[: title_match.start()] if title_match else title
    name = _TRAVEL_ADVISORY_SUFFIX.sub("", _TITLE_SEPARATOR.sub("", name))
    return Level(int(match[1])), collapse(match[0]), name.strip()


def _published(text: str | None, fail: _Fail) -> datetime:
    """``pubDate`` as an aware UTC datetime; a date alone means midnight UTC."""
    value = collapse(text or "")
    if not value:
        raise fail("no <pubDate>")
    date_only = _DATE_ONLY.fullmatch(value)
    if date_only:
        day, month, year = date_only.groups()
        if month.lower() in _MONTHS:
            try:
                return datetime(int(year), _MONTHS.index(month.lower()) + 1, int(day), tzinfo=UTC)
            except ValueError as exc:
                raise fail(f"bad <pubDate> {value!r}: {exc}") from exc
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise fail(f"bad <pubDate> {value!r}") from exc
    # RFC 5322 "-0000" means "UTC, origin unknown" and parses as naive.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _destination(name: str, link: str, fail: _Fail) -> tuple[Destination, bool]:
    """Where the item applies, from its title name checked against its link.

    The name decides (it tells a part or a group from a country); the code or
    slug in the link must agree with it, which catches a wrong name match. An
    item whose name is unknown falls back to the link.

    Returns:
        The destination and whether the link is a new AEM one.
    """
    path = urlsplit(link).path
    aem = _AEM_LINK.search(path)
    legacy = None if aem else _LEGACY_LINK.search(path)
    from_link: Destination | None = None
    if aem:
        code = aem[1]
        alpha2 = from_alpha2(code) if len(code) == 2 else from_alpha3(code)
        from_link = None if alpha2 is None else Destination((alpha2,))
    elif legacy:
        from_link = destination_from_slug(legacy[1])
    from_title = destination_from_name(name)
    if from_title and from_link and not set(from_title.codes) <= set(from_link.codes):
        raise fail(
            f"title name {name!r} is {'/'.join(from_title.codes)} but the link "
            f"{link!r} is {'/'.join(from_link.codes)}"
        )
    destination = from_title or from_link
    if destination is None:
        raise fail(f"cannot resolve the country of {name!r} (link {link!r})")
    return destination, aem is not None


def _regional_level(blocks: list[str], level: Level) -> Level | None:
    """The strictest level the description gives to part of the country.

    Only blocks that open with an area statement (see `_AREA_STATEMENT`) or
    are an area heading (see `_AREA_HEADING`) count. A statement about a place
    that is itself a destination is not about a part: the headline
    ("Reconsider travel to Israel ..."), or China's "Reconsider travel to Macau
    SAR", which has an advisory of its own.

    Args:
        blocks: Collapsed texts of the description's blocks.
        level: The country's level.

    Returns:
        That level if it is stricter than ``level``, else None.
    """
    found: list[Level] = []
    for text in blocks:
        area = _area_level(text)
        if area is not None and (not area[0] or from_name(area[0]) is None):
            found.append(area[1])
    strictest = max(found, default=None)
    return strictest if strictest is not None and strictest > level else None


def _area_level(text: str) -> tuple[str, Level] | None:
    """The place and level a block of text states, if it states one."""
    heading = _AREA_HEADING.match(text)
    if heading:
        return heading[1], Level(int(heading[2]))
    statement = _AREA_STATEMENT.match(text)
    if statement is None:
        return None
    rest = statement[2]
    # A heading over a list ("Do not travel to:") names its places below.
    if rest.rstrip().endswith(":"):
        return "", _STATEMENT_LEVELS[collapse(statement[1]).lower()]
    if not _REASON.search(rest):
        return None
    place = _PLACE_END.split(rest, maxsplit=1)[0].strip()
    return place, _STATEMENT_LEVELS[collapse(statement[1]).lower()]


def _one_per_country(items: list[_Item], url: str) -> list[Advisory]:
    """Reduce the items to one advisory per country code."""
    by_code: dict[str, list[_Item]] = {}
    for item in items:
        for code in item.destination.codes:
            by_code.setdefault(code, []).append(item)

    advisories = []
    for code in sorted(by_code):
        candidates = by_code[code]
        wholes = [i for i in candidates if not i.destination.partial]
        parts = [i for i in candidates if i.destination.partial]
        if wholes:
            # Older parts are superseded by the newer whole, like any stale item.
            newest = max(wholes, key=_recency)
            newer_parts = [p for p in parts if p.published > newest.published]
            if newer_parts:
                raise ContractError(
                    SOURCE_ID,
                    url,
                    f"{code}: {newest.label} covers the whole country but "
                    f"{', '.join(p.label for p in newer_parts)} is newer and covers part of it",
                )
            advisories.append(_advisory(code, newest))
        else:
            advisories.append(_combine_parts(code, parts))
    return advisories


def _recency(item: _Item) -> tuple[datetime, bool, bool, int]:
    """Sort key: newest, then one country over a group, then AEM, then first."""
    return (item.published, len(item.destination.codes) == 1, item.is_aem, -item.position)


def _advisory(code: str, item: _Item) -> Advisory:
    return Advisory(
        source=SOURCE_ID,
        country=code,
        country_name=item.name,
        level=item.level,
        regional_level=item.regional_level,
        raw_level=item.raw_level,
        title=item.title,
        summary=item.summary,
        url=item.url,
        source_updated_at=item.published,
    )


def _combine_parts(code: str, parts: list[_Item]) -> Advisory:
    """One advisory for a country the feed advises on in parts (West Bank, Gaza).

    The least strict part gives the country's level (as for any country with
    stricter areas), the strictest level of any part or area the regional one.
    """
    newest_by_name: dict[str, _Item] = {}
    for part in parts:
        key = normalise_name(part.name)
        seen = newest_by_name.get(key)
        if seen is None or _recency(part) > _recency(seen):
            newest_by_name[key] = part
    ordered = sorted(newest_by_name.values(), key=lambda p: (p.level, p.name))
    base = ordered[0]
    strictest = max(max(p.level, p.regional_level or p.level) for p in ordered)
    return Advisory(
        source=SOURCE_ID,
        country=code,
        country_name=PART_SEPARATOR.join(p.name for p in ordered),
        level=base.level,
        regional_level=strictest if strictest > base.level else None,
        raw_level=base.raw_level,
        title=PART_SEPARATOR.join(p.title for p in ordered),
        summary="\n\n".join(p.summary for p in ordered),
        url=base.url,
        source_updated_at=max(p.published for p in ordered),
    )


#: The real feed, complete: the synthetic catalogue serves it unmodified.
FEED_CAPTURE: Final = "us_state_dept/TAsTWs_2026-10-07.xml"
INDEX_PATH: Final = "/_res/rss/TAsTWs.xml"


def synthetic_build(inp: SyntheticInput) -> SyntheticOutput:
    """The real feed, copied byte for byte (it already lists every country)."""
    feed = inp.read_capture(FEED_CAPTURE)
    return SyntheticOutput(countries=feed.count(b"<item>"), files={INDEX_PATH.lstrip("/"): feed})


SOURCE: Final = SourceSpec(
    id=SOURCE_ID,
    name="US Department of State",
    publisher="US Department of State",
    priority=Priority.HIGH,
    default_base_url=BASE_URL,
    index_path=INDEX_PATH,
    document_path=None,
    allowed_hosts=("travel.state.gov",),
    rate_limit=RateLimitPolicy(60, 10, 1.5, "America/New_York"),
    mapping_version=MAPPING_VERSION,
    levels={f"Level {int(level)}": level for level in Level},
    parser=Parser(parse_index, parse_document, parse_file),
    fixtures="us_state_dept",
    replay_routes=(ReplayRoute(INDEX_PATH, FEED_CAPTURE),),
    synthetic=SyntheticImitation(build=synthetic_build, real=True),
    index_note="RSS feed (carries every advisory)",
)

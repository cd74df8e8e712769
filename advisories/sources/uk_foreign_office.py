"""Parser for GOV.UK foreign travel advice (the Content API, JSON).

Two documents, told apart by ``schema_name``:

* ``travel_advice_index`` (``/api/content/foreign-travel-advice``): one entry
  per country in ``links.children``, each with its ``public_updated_at``,
  ``details.country`` and ``details.change_description``, but no alert status;
* ``travel_advice`` (``/api/content/foreign-travel-advice/<slug>``): one
  country, its FCDO warnings in ``details.alert_status``.

What this parser has to cope with, all seen in the captures:

* Two summary layouts: ``details.summary`` (before 2025), or a part with the
  slug ``summary``; documents of the current FCDO layout have neither and open
  with a ``warnings-and-insurance`` part that states the warnings; some
  documents have no summary at all, and some no parts.
* ``alert_status`` is what FCDO declares and may say less than the text:
  Côte d'Ivoire is ``[avoid_all_travel_to_parts]`` although its text also has
  an all-but-essential area; the 2017 Turkey example is ``[]`` although its
  text advises against travel near the Syrian border. The mapping follows
  ``alert_status``.
* ``withdrawn_notice`` is ``{}`` on live documents and only says "withdrawn"
  when it has content.
* Three time formats: ``...Z``, ``...+01:00`` and ``....000+00:00``.
* ``details.updated_at`` moves on every republish (even with no change a
  reader can see); ``public_updated_at`` is the "latest update" GOV.UK shows,
  so that is the advisory's time.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pycountry

from advisories.countries import (
    Destination,
    destination_from_name,
    destination_from_slug,
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
)
from advisories.sources._html import html_tree, plain_text
from advisories.sources._json import load_json_object
from advisories.sources._synthetic import checked, draw_time, iso, json_text, labelled, spread
from advisories.text import collapse

SOURCE_ID: Final = "uk_foreign_office"
BASE_URL: Final = "https://www.gov.uk"
#: Where GOV.UK publishes the pages the API documents describe.
WEB_BASE: Final = BASE_URL
#: The Content API serves ``<base_path>`` under this prefix.
API_PREFIX: Final = "/api/content"

INDEX_SCHEMA: Final = "travel_advice_index"
COUNTRY_SCHEMA: Final = "travel_advice"

# FCDO's alert codes (the four values GOV.UK's schema allows), split by reach.
WHOLE_COUNTRY_LEVELS: Final[Mapping[str, Level]] = {
    "avoid_all_travel_to_whole_country": Level.DO_NOT_TRAVEL,
    "avoid_all_but_essential_travel_to_whole_country": Level.RECONSIDER_TRAVEL,
}
PARTS_LEVELS: Final[Mapping[str, Level]] = {
    "avoid_all_travel_to_parts": Level.DO_NOT_TRAVEL,
    "avoid_all_but_essential_travel_to_parts": Level.RECONSIDER_TRAVEL,
}

# Parts that hold the summary, in order of preference: the 2025 layout's own
# "summary" part, then the current layout's first page, which states the
# areas FCDO advises against and replaced the summary on the live site.
_SUMMARY_PARTS: Final = ("summary", "warnings-and-insurance")
_LATEST_UPDATE: Final = "Latest update:"

_Fail = Callable[[str], ParseError]


def parse_index(body: bytes, *, url: str, fetched_at: datetime) -> list[IndexEntry]:
    """The ``travel_advice_index`` document → one entry per country.

    The index states no alert status (GOV.UK expands only ``country`` and
    ``change_description`` into its children), so ``level`` and
    ``has_regional`` stay None unless a child carries ``details.alert_status``.

    Args:
        body: The index document as fetched.
        url: Where it was fetched from (for error messages).
        fetched_at: When it was fetched. Unused; kept for the shared signature.

    Returns:
        Entries in the order the index lists them.

    Raises:
        ParseError: if the document is not the index, or a child has no
            ``base_path``, no readable ``public_updated_at`` or no resolvable
            country (the message names the child).
        ContractError: if the index lists no children, or two for one country.
    """
    document = load_json_object(SOURCE_ID, body, url)
    _expect_schema(document, INDEX_SCHEMA, url)
    children = _children(document, url)
    entries: list[IndexEntry] = []
    seen: dict[str, str] = {}
    for position, child in enumerate(children, 1):
        entry = _index_entry(child, position, url)
        if entry.country in seen:
            raise ContractError(
                SOURCE_ID,
                url,
                f"{entry.country} is listed twice: {seen[entry.country]!r} and "
                f"{entry.document_path!r}",
            )
        seen[entry.country] = entry.document_path or ""
        entries.append(entry)
    return entries


def parse_document(body: bytes, *, url: str, fetched_at: datetime) -> Advisory:
    """A ``travel_advice`` document → the country's advisory.

    Levels come from ``details.alert_status``: a whole-country code gives the
    country's level (avoid all travel 4, all but essential travel 3), no
    whole-country code gives 1; the strictest ``..._to_parts`` code gives the
    regional level when it is stricter than that.

    Args:
        body: The document as fetched.
        url: Where it was fetched from (for error messages).
        fetched_at: When it was fetched. Unused; kept for the shared signature.

    Raises:
        ParseError: if the document is not a country's travel advice, or lacks
            a field the advisory needs, or has an unknown alert code.
    """
    return _advisory(load_json_object(SOURCE_ID, body, url), url)


def parse_file(body: bytes, *, url: str, fetched_at: datetime) -> list[Advisory]:
    """Any GOV.UK travel advice document → the advisories it carries.

    Raises:
        ParseError: for the index, which carries no levels (the message says
            how many countries it lists), and for anything that is not a
            travel advice document.
    """
    document = load_json_object(SOURCE_ID, body, url)
    if _schema(document) == INDEX_SCHEMA:
        children = _children(document, url)
        raise ParseError(
            SOURCE_ID,
            url,
            f"this is the travel_advice_index document: it lists {len(children)} countries "
            "but carries no advisory levels; parse a country document",
        )
    return [_advisory(document, url)]


def document_path(base_path: str) -> str:
    """Content API path of a GOV.UK page (``/foreign-travel-advice/albania`` → API path)."""
    return API_PREFIX + base_path


def _advisory(document: dict[str, Any], url: str) -> Advisory:
    """A ``travel_advice`` document → its advisory (see :func:`parse_document`)."""
    _expect_schema(document, COUNTRY_SCHEMA, url)

    def fail(reason: str) -> ParseError:
        return ParseError(SOURCE_ID, url, reason)

    details = _object(document.get("details"), "details", fail)
    country, country_name = _country(details, document.get("base_path"), fail)
    alert_status = details.get("alert_status") or []
    if not isinstance(alert_status, list) or not all(isinstance(a, str) for a in alert_status):
        raise fail(f"details.alert_status is not a list of codes: {alert_status!r}")
    level, regional_level = _levels(alert_status, fail)
    title = _string(document.get("title"), "title", fail)
    base_path = _string(document.get("base_path"), "base_path", fail)
    withdrawn_notice = document.get("withdrawn_notice")
    # Live documents carry an empty withdrawn_notice; only content means withdrawn.
    withdrawn = isinstance(withdrawn_notice, dict) and bool(withdrawn_notice)
    return Advisory(
        source=SOURCE_ID,
        country=country,
        country_name=country_name,
        level=level,
        regional_level=regional_level,
        raw_level=",".join(alert_status),
        title=collapse(title),
        summary=_summary(details, withdrawn_notice if withdrawn else None),
        url=WEB_BASE + base_path,
        source_updated_at=_timestamp(document.get("public_updated_at"), "public_updated_at", fail),
        withdrawn=withdrawn,
    )


def _schema(document: dict[str, Any]) -> str | None:
    """The document's schema: ``schema_name``, else ``document_type``."""
    value = document.get("schema_name") or document.get("document_type")
    return value if isinstance(value, str) else None


def _expect_schema(document: dict[str, Any], expected: str, url: str) -> None:
    schema = _schema(document)
    if schema != expected:
        raise ParseError(SOURCE_ID, url, f"expected a {expected} document, got schema {schema!r}")


def _children(document: dict[str, Any], url: str) -> list[dict[str, Any]]:
    """``links.children`` of the index; ContractError when there are none."""
    links = document.get("links")
    children = links.get("children") if isinstance(links, dict) else None
    if children is None:
        raise ContractError(SOURCE_ID, url, "the index has no links.children")
    if not isinstance(children, list) or not all(isinstance(c, dict) for c in children):
        raise ParseError(SOURCE_ID, url, "links.children is not a list of objects")
    if not children:
        raise ContractError(
            SOURCE_ID, url, "the index lists no countries (links.children is empty)"
        )
    return children


def _index_entry(child: dict[str, Any], position: int, url: str) -> IndexEntry:
    label = f"child {position} ({child.get('base_path') or child.get('title')!r})"

    def fail(reason: str) -> ParseError:
        return ParseError(SOURCE_ID, url, f"{label}: {reason}")

    base_path = _string(child.get("base_path"), "base_path", fail)
    raw_details = child.get("details")
    details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    country, country_name = _country(details, base_path, fail)
    published_at = _timestamp(child.get("public_updated_at"), "public_updated_at", fail)
    level: Level | None = None
    has_regional: bool | None = None
    alert_status = details.get("alert_status")
    if isinstance(alert_status, list):
        level, regional = _levels(alert_status, fail)
        has_regional = regional is not None
    change_description = details.get("change_description")
    # Only what a change of the country's advice changes: never the whole
    # child, whose URLs name the serving host and whose links vary.
    meaningful: dict[str, Any] = {
        "slug": base_path.rsplit("/", 1)[-1],
        "public_updated_at": child.get("public_updated_at"),
        "title": child.get("title"),
        "withdrawn": bool(child.get("withdrawn")),
    }
    if change_description is not None:
        meaningful["change_description"] = change_description
    if alert_status is not None:
        meaningful["alert_status"] = alert_status
    return IndexEntry(
        country=country,
        country_name=country_name,
        published_at=published_at,
        entry_hash=_hash(meaningful),
        document_path=document_path(base_path),
        withdrawn=bool(child.get("withdrawn")),
        level=level,
        has_regional=has_regional,
    )


def _country(details: Mapping[str, Any], base_path: object, fail: _Fail) -> tuple[str, str]:
    """ISO code and name from ``details.country`` (name, slug, synonyms) or the base path.

    The name decides; the slug must agree with it when both resolve, which
    catches a wrong name match. Synonyms ("Ivory Coast") are the last resort.
    """
    country = details.get("country")
    country = country if isinstance(country, dict) else {}
    name = country.get("name") if isinstance(country.get("name"), str) else None
    slug = country.get("slug") if isinstance(country.get("slug"), str) else None
    if slug is None and isinstance(base_path, str) and base_path.strip("/"):
        slug = base_path.rstrip("/").rsplit("/", 1)[-1]
    by_name = destination_from_name(name) if name else None
    by_slug = destination_from_slug(slug) if slug else None
    if by_name and by_slug and by_name.codes != by_slug.codes:
        raise fail(
            f"country name {name!r} is {'/'.join(by_name.codes)} but slug {slug!r} is "
            f"{'/'.join(by_slug.codes)}"
        )
    destination = by_name or by_slug or _from_synonyms(country.get("synonyms"))
    code = None if destination is None else destination.code
    if code is None:
        raise fail(f"cannot resolve the country of name {name!r} / slug {slug!r}")
    return code, name or slug or code


def _from_synonyms(synonyms: object) -> Destination | None:
    """The one destination the synonyms resolve to, or None if none or several."""
    if not isinstance(synonyms, list):
        return None
    found = {d for s in synonyms if isinstance(s, str) and (d := destination_from_name(s))}
    return found.pop() if len(found) == 1 else None


def _levels(alert_status: list[Any], fail: _Fail) -> tuple[Level, Level | None]:
    """Country level and regional level (if stricter) from FCDO alert codes."""
    whole: list[Level] = []
    parts: list[Level] = []
    for code in alert_status:
        if code in WHOLE_COUNTRY_LEVELS:
            whole.append(WHOLE_COUNTRY_LEVELS[code])
        elif code in PARTS_LEVELS:
            parts.append(PARTS_LEVELS[code])
        else:
            raise fail(f"unknown alert_status code {code!r}")
    level = max(whole, default=Level.NORMAL_PRECAUTIONS)
    regional = max(parts, default=None)
    return level, regional if regional is not None and regional > level else None


def _summary(details: Mapping[str, Any], withdrawn_notice: dict[str, Any] | None) -> str:
    """Plain text a reader needs: withdrawal notice, latest update, summary.

    Paragraphs are separated by a blank line, each with collapsed whitespace.
    """
    paragraphs: list[str] = []
    if withdrawn_notice is not None:
        explanation = _html_text(withdrawn_notice.get("explanation"))
        paragraphs.append(f"Withdrawn: {explanation}" if explanation else "Withdrawn.")
    change = collapse(str(details.get("change_description") or ""))
    if change:
        # Older notes start "Latest update: ..."; newer ones need the label.
        starts_labelled = change.lower().startswith(_LATEST_UPDATE.lower())
        paragraphs.append(change if starts_labelled else f"{_LATEST_UPDATE} {change}")
    summary = _html_text(details.get("summary")) or _summary_part(details.get("parts"))
    if summary:
        paragraphs.append(summary)
    return "\n\n".join(paragraphs)


def _summary_part(parts: object) -> str:
    """Text of the part that serves as the summary, or ``""``."""
    if not isinstance(parts, list):
        return ""
    by_slug = {p.get("slug"): p for p in parts if isinstance(p, dict)}
    for slug in _SUMMARY_PARTS:
        part = by_slug.get(slug)
        if part is not None:
            return _html_text(part.get("body"))
    return ""


def _html_text(html: object) -> str:
    """Collapsed plain text of an HTML fragment (``""`` for anything else)."""
    if not isinstance(html, str) or not html.strip():
        return ""
    with html_tree(html) as soup:
        return collapse(plain_text(soup, []))


def _object(value: object, field: str, fail: _Fail) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(f"{field} is missing or not an object")
    return value


def _string(value: object, field: str, fail: _Fail) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{field} is missing or empty")
    return value


def _timestamp(value: object, field: str, fail: _Fail) -> datetime:
    """An ISO 8601 time with a zone, as aware UTC."""
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{field} is missing")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise fail(f"bad {field} {value!r}") from exc
    if parsed.tzinfo is None:
        # GOV.UK always states the offset; a bare time could be off by an hour.
        raise fail(f"{field} {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _hash(fields: Mapping[str, Any]) -> str:
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


# --- the synthetic catalogue's imitation ------------------------------------------------
#
# Countries from pycountry (not the UK itself), each a copy of the real 2026
# Turkey document with the country's name, slug, title, ``alert_status`` and
# ``public_updated_at`` replaced; the index is GOV.UK's schema example with one
# child per country, its ``public_updated_at`` and ``change_description``
# equal to the document's. Every document is labelled SYNTHETIC.

#: GOV.UK countries in a full catalogue (the live index lists about this many).
SYNTHETIC_FULL: Final = 225
SYNTHETIC_TEMPLATE: Final = "uk_fcdo/content_api_turkey_2026-10-07.json"
SYNTHETIC_INDEX_TEMPLATE: Final = "uk_fcdo/content_api_index_govuk-schema-example.json"
SYNTHETIC_INDEX_FILE: Final = "api/content/foreign-travel-advice.json"
SYNTHETIC_DOCUMENTS: Final = "api/content/foreign-travel-advice"

# FCDO alert combinations and how often each is drawn (most countries have none).
_SYNTHETIC_ALERTS: Final[Sequence[tuple[tuple[str, ...], int]]] = (
    ((), 70),
    (("avoid_all_but_essential_travel_to_parts",), 8),
    (("avoid_all_travel_to_parts",), 8),
    (("avoid_all_but_essential_travel_to_parts", "avoid_all_travel_to_parts"), 6),
    (("avoid_all_but_essential_travel_to_whole_country",), 2),
    (("avoid_all_but_essential_travel_to_whole_country", "avoid_all_travel_to_parts"), 2),
    (("avoid_all_travel_to_whole_country",), 4),
)
# What set_level writes for a GOV.UK country: FCDO has no level 2.
_SYNTHETIC_LEVEL_ALERTS: Final[Mapping[Level, tuple[str, ...]]] = {
    Level.NORMAL_PRECAUTIONS: (),
    Level.RECONSIDER_TRAVEL: ("avoid_all_but_essential_travel_to_whole_country",),
    Level.DO_NOT_TRAVEL: ("avoid_all_travel_to_whole_country",),
}
# Name and slug in the template, replaced by each country's own.
_TEMPLATE_NAME: Final = "Turkey"
_TEMPLATE_SLUG: Final = "turkey"


@dataclass(frozen=True, slots=True)
class _SyntheticCountry:
    code: str
    name: str
    slug: str
    alerts: tuple[str, ...]
    published: datetime
    content_id: str


def _synthetic_candidates(rng: random.Random) -> list[_SyntheticCountry]:
    """Every pycountry country but the UK, each with its drawn alerts and time."""
    combos = [combo for combo, _ in _SYNTHETIC_ALERTS]
    weights = [weight for _, weight in _SYNTHETIC_ALERTS]
    candidates = []
    for entry in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        if entry.alpha_2 == "GB":
            continue
        name = str(getattr(entry, "common_name", None) or entry.name)
        candidates.append(
            _SyntheticCountry(
                code=entry.alpha_2,
                name=name,
                slug=normalise_name(name).replace(" ", "-"),
                alerts=rng.choices(combos, weights)[0],
                published=draw_time(rng),
                content_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            )
        )
    return candidates


def synthetic_build(inp: SyntheticInput) -> SyntheticOutput:
    """The SYNTHETIC GOV.UK catalogue: index and one document per country."""
    count = checked(inp.count, default=SYNTHETIC_FULL, maximum=len(pycountry.countries) - 1)
    rng = random.Random(f"uk:{inp.seed}")
    chosen = spread(_synthetic_candidates(rng), count, lambda c: c.alerts, rng)
    chosen.sort(key=lambda c: c.slug)
    template_text = inp.read_capture(SYNTHETIC_TEMPLATE).decode("utf-8")
    files: dict[str, Mapping[str, Any] | bytes] = {}
    children = []
    for country in chosen:
        document = _synthetic_document(template_text, country)
        files[f"{SYNTHETIC_DOCUMENTS}/{country.slug}.json"] = document
        children.append(_synthetic_child(document))
    index: dict[str, Any] = json.loads(inp.read_capture(SYNTHETIC_INDEX_TEMPLATE))
    index["links"]["children"] = children
    files[SYNTHETIC_INDEX_FILE] = labelled(index, SYNTHETIC_INDEX_TEMPLATE)
    return SyntheticOutput(countries=len(chosen), files=files)


def _synthetic_document(template_text: str, country: _SyntheticCountry) -> dict[str, Any]:
    """The template with the country's names, alerts and time."""
    # The name also lands in HTML part bodies, hence escaped for HTML first.
    name = json_text(html.escape(country.name, quote=False))
    text = template_text.replace(_TEMPLATE_NAME, name).replace(
        _TEMPLATE_SLUG, json_text(country.slug)
    )
    document: dict[str, Any] = json.loads(text)
    published = iso(country.published)
    document.update(
        base_path=f"/foreign-travel-advice/{country.slug}",
        content_id=country.content_id,
        title=f"{country.name} travel advice",
        public_updated_at=published,
        updated_at=published,
    )
    details = document["details"]
    details["country"] = {"name": country.name, "slug": country.slug, "synonyms": []}
    details["alert_status"] = list(country.alerts)
    details["change_description"] = f"SYNTHETIC update of {published}."
    details["updated_at"] = details["reviewed_at"] = published
    return labelled(document, SYNTHETIC_TEMPLATE)


def _synthetic_child(document: Mapping[str, Any]) -> dict[str, Any]:
    """The index's child for a country, as GOV.UK expands it."""
    base_path = document["base_path"]
    return {
        "analytics_identifier": None,
        "api_path": document_path(base_path),
        "base_path": base_path,
        "content_id": document["content_id"],
        "description": document["description"],
        "document_type": "travel_advice",
        "locale": "en",
        "public_updated_at": document["public_updated_at"],
        "schema_name": "travel_advice",
        "title": document["title"],
        "withdrawn": False,
        "details": {
            "country": document["details"]["country"],
            "change_description": document["details"]["change_description"],
        },
        "links": {},
        "api_url": BASE_URL + document_path(base_path),
        "web_url": BASE_URL + base_path,
    }


def synthetic_set_level(
    read: Callable[[str], bytes], country: str, level: Level, at: datetime
) -> tuple[datetime, list[tuple[str, Mapping[str, Any] | bytes]]]:
    """One country's new alerts for ``level`` (1, 3 or 4; regional alerts dropped)."""
    if level not in _SYNTHETIC_LEVEL_ALERTS:
        raise ValueError(f"{SOURCE_ID} has no level {int(level)} (FCDO states 1, 3 or 4)")
    alerts = _SYNTHETIC_LEVEL_ALERTS[level]
    index_body = read(SYNTHETIC_INDEX_FILE)
    index: dict[str, Any] = json.loads(index_body)
    entries = parse_index(index_body, url=SYNTHETIC_INDEX_FILE, fetched_at=at)
    position = next((i for i, e in enumerate(entries) if e.country == country), None)
    if position is None:
        raise KeyError(f"{SOURCE_ID} catalogue has no country {country!r}")
    child = index["links"]["children"][position]
    document_file = f"{SYNTHETIC_DOCUMENTS}/{child['base_path'].rsplit('/', 1)[-1]}.json"
    document: dict[str, Any] = json.loads(read(document_file))
    old = datetime.fromisoformat(document["public_updated_at"])
    published = iso(max(at, old + timedelta(minutes=1)))
    note = f"SYNTHETIC level change of {published}: alert_status {list(alerts)}."
    document["public_updated_at"] = document["updated_at"] = published
    document["details"].update(alert_status=list(alerts), change_description=note)
    document["details"]["updated_at"] = document["details"]["reviewed_at"] = published
    child["public_updated_at"] = published
    child["details"]["change_description"] = note
    return datetime.fromisoformat(published), [
        (document_file, document),
        (SYNTHETIC_INDEX_FILE, index),
    ]


SOURCE: Final = SourceSpec(
    id=SOURCE_ID,
    name="UK Foreign, Commonwealth & Development Office",
    publisher="UK FCDO (GOV.UK Content API)",
    priority=Priority.HIGH,
    default_base_url=BASE_URL,
    index_path=API_PREFIX + "/foreign-travel-advice",
    document_path=API_PREFIX + "/foreign-travel-advice/<slug>",
    allowed_hosts=("www.gov.uk",),
    rate_limit=RateLimitPolicy(120, 15, 1.0, "Europe/London"),
    mapping_version=MAPPING_VERSION,
    levels={**WHOLE_COUNTRY_LEVELS, **PARTS_LEVELS, "": Level.NORMAL_PRECAUTIONS},
    parser=Parser(parse_index, parse_document, parse_file),
    fixtures="uk_fcdo",
    replay_routes=(
        # GOV.UK's schema example of the index (7 children, none of which has a
        # per-country capture below; the live index lists ~225).
        ReplayRoute(
            API_PREFIX + "/foreign-travel-advice",
            "uk_fcdo/content_api_index_govuk-schema-example.json",
        ),
        ReplayRoute(
            API_PREFIX + "/foreign-travel-advice/cote-d-ivoire",
            "uk_fcdo/content_api_cote-d-ivoire_2026-10-07.json",
        ),
        ReplayRoute(
            API_PREFIX + "/foreign-travel-advice/haiti", "uk_fcdo/content_api_haiti_2026-10-07.json"
        ),
        ReplayRoute(
            API_PREFIX + "/foreign-travel-advice/hong-kong",
            "uk_fcdo/content_api_hong-kong_2026-10-07.json",
        ),
        # The 2026 capture is the current Turkey; the 2017 schema example an older version.
        ReplayRoute(
            API_PREFIX + "/foreign-travel-advice/turkey",
            "uk_fcdo/content_api_turkey_2026-10-07.json",
        ),
        ReplayRoute(
            API_PREFIX + "/foreign-travel-advice/albania",
            "uk_fcdo/content_api_albania_govuk-schema-example.json",
        ),
        ReplayRoute(
            API_PREFIX + "/foreign-travel-advice/antarctica",
            "uk_fcdo/content_api_antarctica_no-parts_govuk-schema-example.json",
        ),
    ),
    synthetic=SyntheticImitation(
        build=synthetic_build, set_level=synthetic_set_level, levels=tuple(_SYNTHETIC_LEVEL_ALERTS)
    ),
)

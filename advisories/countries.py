"""Resolve the names and codes that advisory sources use to ISO 3166 codes.

Pure functions over ``pycountry`` plus a small explicit table of exceptions.
Every source (US, UK, Canada) spells destinations its own way; this module is
the one place that turns those spellings into codes, so that the same country
gets the same code whichever source published it.

Resolution never guesses: there is no fuzzy matching, because a fuzzy match
that picks a wrong country is worse than no match (the caller can raise and
name the item; a wrong code is silently stored).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Final

import pycountry

#: Kosovo has no ISO 3166-1 code; ``XK`` is the user-assigned code that the EU,
#: the IMF and most data sets (and travel.state.gov's ``xks``) use.
KOSOVO: Final = "XK"


@dataclass(frozen=True, slots=True)
class Destination:
    """What a source's destination name stands for in ISO 3166 terms.

    Attributes:
        codes: ISO codes the destination covers: one for a country or for a part
            of one, several for a group of countries (``French West Indies``).
        partial: True if the destination is only a part of the single country in
            ``codes`` (``West Bank`` of ``PS``): its advisory is not the advisory
            for the whole country, and parts have to be combined.
    """

    codes: tuple[str, ...]
    partial: bool = False

    def __post_init__(self) -> None:
        if not self.codes:
            raise ValueError("a destination covers at least one code")
        if self.partial and len(self.codes) != 1:
            raise ValueError("a partial destination is part of exactly one country")

    @property
    def code(self) -> str | None:
        """The single code this destination lies in, or None for a group."""
        return self.codes[0] if len(self.codes) == 1 else None


# Names that pycountry does not know, as the sources spell them. Keys are in
# normalised form (see `normalise_name`). Each entry is here because a real
# source document uses it; do not add guesses.
_NAME_EXCEPTIONS: Final[dict[str, str]] = {
    "burma": "MM",
    "brunei": "BN",  # pycountry: "Brunei Darussalam"
    "french saint martin": "MF",  # pycountry: "Saint Martin (French part)"
    "kosovo": KOSOVO,
    "macau": "MO",  # pycountry: "Macao"
    "palestine": "PS",  # pycountry: "Palestine, State of" (Smartraveller)
    "micronesia": "FM",
    "russia": "RU",  # pycountry: "Russian Federation"
    "turkey": "TR",  # pycountry: "Türkiye" only
}

# Destinations that are part of one country but are advised on separately.
# ISO 3166-2 has no code for them (the West Bank and Gaza are not single
# governorates; Saba and Sint Eustatius are two special municipalities), so
# they resolve to the country they are part of, marked partial.
_PARTS: Final[dict[str, str]] = {
    "west bank": "PS",
    "gaza": "PS",
    "bonaire": "BQ",
    "saba and sint eustatius": "BQ",
}

# Destinations that span several countries.
_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    # travel.state.gov's older umbrella advisory; the four now have their own.
    "french west indies": ("GP", "MQ", "MF", "BL"),
    # travel.state.gov's older name for its Israel advisory (still its legacy slug).
    "israel west bank and gaza": ("IL", "PS"),
}

# Legacy URL slugs that are misspelt at the source, mapped to the intended slug.
_SLUG_TYPOS: Final[dict[str, str]] = {
    "bosinia-and-herzegovina": "bosnia-and-herzegovina",
    "solomon-island": "solomon-islands",
}

# ISO 3166-1 alpha-3 codes that pycountry does not have.
_ALPHA3_EXCEPTIONS: Final[dict[str, str]] = {"XKS": KOSOVO}

_APOSTROPHES: Final = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})
_PARENTHESISED: Final = re.compile(r"\([^)]*\)")
_NOT_ALNUM: Final = re.compile(r"[^a-z0-9]+")
# Sources append these to Hong Kong and Macau ("Macau SAR").
_SAR_SUFFIX: Final = re.compile(r"(?: special administrative region)?(?: sar)?$")
_SLUG_SUFFIX: Final = re.compile(r"(?:-travel-advisory)?(?:\.html?)?$", re.IGNORECASE)


def normalise_name(name: str) -> str:
    """Reduce a destination name to a form that compares equal across spellings.

    Folds case and accents, curly apostrophes, ``&``/``and``, hyphens,
    punctuation and repeated spaces; drops every ``the``, anything in
    parentheses and a trailing ``SAR``; reads ``St`` as ``Saint``.

    >>> normalise_name("  Côte d’Ivoire ")
    'cote d ivoire'
    >>> normalise_name("The Kyrgyz Republic")
    'kyrgyz republic'
    """
    text = unicodedata.normalize("NFKD", name.translate(_APOSTROPHES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _PARENTHESISED.sub(" ", text.replace("&", " and "))
    words = _NOT_ALNUM.sub(" ", text).split()
    # "The" is dropped everywhere, not only in front: sources disagree on
    # "Republic of (the) Congo" and "Saint Vincent and (the) Grenadines".
    words = ["saint" if w == "st" else w for w in words if w != "the"]
    return _SAR_SUFFIX.sub("", " ".join(words))


@cache
def _name_index() -> dict[str, str]:
    """Normalised pycountry names → alpha-2, built once.

    Besides the short, official and common names, adds the natural order of
    inverted names ("Virgin Islands, British" → "British Virgin Islands") and
    the name without its parenthesis ("Sint Maarten (Dutch part)"). A derived
    form that two countries would share is left out rather than guessed.
    """
    primary: dict[str, str] = {}
    derived: dict[str, set[str]] = {}
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            value: str | None = getattr(country, attr, None)
            if not value:
                continue
            primary.setdefault(normalise_name(value), country.alpha_2)
            if "," in value:
                head, _, tail = value.partition(",")
                key = normalise_name(f"{tail} {head}")
                derived.setdefault(key, set()).add(country.alpha_2)
    index = {key: next(iter(codes)) for key, codes in derived.items() if len(codes) == 1}
    index.update(primary)
    return index


def from_alpha2(code: str) -> str | None:
    """Validate an ISO 3166-1 alpha-2 code (any case).

    Returns:
        The upper-case code, ``XK`` for Kosovo, or None if it is not assigned.
    """
    upper = code.strip().upper()
    if upper == KOSOVO:
        return KOSOVO
    if len(upper) != 2 or not upper.isalpha():
        return None
    country = pycountry.countries.get(alpha_2=upper)
    return None if country is None else str(country.alpha_2)


def from_alpha3(code: str) -> str | None:
    """Map an ISO 3166-1 alpha-3 code (any case) to alpha-2.

    Returns:
        The alpha-2 code, ``XK`` for ``XKS`` (Kosovo), or None if unknown.
    """
    upper = code.strip().upper()
    if upper in _ALPHA3_EXCEPTIONS:
        return _ALPHA3_EXCEPTIONS[upper]
    if len(upper) != 3 or not upper.isalpha():
        return None
    country = pycountry.countries.get(alpha_3=upper)
    return None if country is None else str(country.alpha_2)


def destination_from_name(name: str) -> Destination | None:
    """Resolve a destination name, keeping what it covers (a part, a group).

    Args:
        name: The name as a source writes it ("Burma", "Côte d’Ivoire",
            "The Bahamas", "West Bank", "French West Indies").

    Returns:
        The destination, or None if the name is not known.
    """
    key = normalise_name(name)
    if not key:
        return None
    if key in _GROUPS:
        return Destination(_GROUPS[key])
    if key in _PARTS:
        return Destination((_PARTS[key],), partial=True)
    code = _NAME_EXCEPTIONS.get(key) or _name_index().get(key)
    return None if code is None else Destination((code,))


def destination_from_slug(slug: str) -> Destination | None:
    """Resolve a URL slug such as ``bosnia-and-herzegovina-travel-advisory.html``.

    A trailing ``-travel-advisory`` and ``.html`` are ignored, as are known
    misspellings at the source.

    Returns:
        The destination, or None if the slug is not known.
    """
    bare = _SLUG_SUFFIX.sub("", slug.strip().strip("/").lower())
    return destination_from_name(_SLUG_TYPOS.get(bare, bare))


def from_name(name: str) -> str | None:
    """Resolve a destination name to the code of the one country it lies in.

    A part of a country ("West Bank") gives that country's code; a group of
    countries ("French West Indies") gives None. Use `destination_from_name`
    to tell a part from the whole.

    Returns:
        ISO 3166-1 alpha-2 (``XK`` for Kosovo), or None.
    """
    destination = destination_from_name(name)
    return None if destination is None else destination.code


def from_slug(slug: str) -> str | None:
    """Resolve a URL slug to the code of the one country it lies in.

    Returns:
        ISO 3166-1 alpha-2 (``XK`` for Kosovo), or None.
    """
    destination = destination_from_slug(slug)
    return None if destination is None else destination.code

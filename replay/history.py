"""The change histories in the captures, counted per source and kind (pure: no server).

``python -m replay.history [--json]`` takes every source that has several
versions of the same document in the captures (``replay/captures/SOURCES.md``
and ``../shared/fixtures/real/SOURCES.md``), parses each version with the
source's own parser, and counts, between consecutive versions, the changes of
each kind the project's classification (:mod:`advisories.changes`) gives:

* ``canada_travel`` — six REAL complete country indexes, 2014-03-02 to
  2026-07-02, read as captured (the 2014 ones key each entry by its code
  without repeating it as ``country-iso``, which the parser reads too);
* ``de_auswaertiges_amt`` — the REAL complete index of 2026-07-11, then a
  TRIMMED 17-entry excerpt of 2026-09 (the 183 countries it leaves out are
  counted as unlisted, never as withdrawn: an index that shrinks is the health
  canary's business, not a withdrawal);
* ``nl_nederland_wereldwijd`` — three REAL versions of one destination's
  document (Burkina Faso, 2026-09-23, 09-24 and 10-07): a republication with
  new text, then only the daily "still valid on" date re-stamped;
* ``au_smartraveller`` — 17 DERIVED level maps (kevle1/smartraveller-api,
  2024-10-05 to 2024-11-01), each turned into a SYNTHETIC destinations export
  built from the real export's structure (:func:`smartraveller_exports`).

Countries are compared as the store compares them: each against the last
version of it seen, so a country an index stops listing keeps its advisory (and
is counted as *unlisted*), and one that is listed again is compared with what it
was. Besides the change kinds, *republished* counts entries whose content is the
same but whose own time moved (a new ``date-published`` or ``lastModified``):
the store writes no version for those.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from advisories.changes import ChangeKind, LevelState, classify_change
from advisories.errors import ContractError
from advisories.models import Advisory, Level
from advisories.sources import (
    SOURCES,
    au_smartraveller,
    canada_travel,
    de_auswaertiges_amt,
    nl_nederland_wereldwijd,
)
from advisories.sources._synthetic import SYNTHETIC_KEY
from replay._catalogue import capture_file, default_fixtures_root

__all__ = [
    "HISTORIES",
    "Change",
    "History",
    "SourceHistory",
    "Step",
    "Version",
    "count",
    "count_all",
    "main",
    "replay_versions",
    "smartraveller_exports",
    "table",
]

#: The order of the kinds in the table and in ``--json``.
KINDS: Final = tuple(ChangeKind)
# Time every parse is given; no parser here reads it.
_FETCHED_AT: Final = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a source's document in the captures.

    Attributes:
        label: The version's date, as the captures name it.
        file: The capture, as source modules name captures (under the real
            captures root, or ``replay/captures/...`` in the repository).
        provenance: ``real``, ``trimmed`` or ``derived`` (see SOURCES.md).
    """

    label: str
    file: str
    provenance: str


@dataclass(frozen=True, slots=True)
class History:
    """A source's versions and how to turn them into the documents it serves.

    Attributes:
        source: Source id.
        versions: Oldest first.
        documents: The captures' bytes, oldest first → the documents the
            source's parser reads, one per version (the captures themselves
            where they are the source's own documents).
        note: One line on what the versions are.
    """

    source: str
    versions: tuple[Version, ...]
    documents: Callable[[Sequence[bytes]], list[bytes]]
    note: str


@dataclass(frozen=True, slots=True)
class Change:
    """One change a version brings, as the store would classify it."""

    country: str
    kind: ChangeKind
    level_before: int | None
    level_after: int


@dataclass(frozen=True, slots=True)
class Step:
    """What one version brings against everything seen before it.

    Attributes:
        label: The version's label.
        listed: Countries this version lists.
        changes: One per country whose content differs from its last version
            (``new`` for a country never seen), in country order.
        republished: Countries with the same content but a newer own time.
        unlisted: Countries seen before that this version does not list.
    """

    label: str
    listed: int
    changes: tuple[Change, ...]
    republished: int
    unlisted: int

    def counts(self) -> dict[str, int]:
        """Changes per kind (every kind present, zero included)."""
        return {kind.value: sum(1 for c in self.changes if c.kind is kind) for kind in KINDS}


@dataclass(frozen=True, slots=True)
class SourceHistory:
    """A source's history, counted."""

    source: str
    note: str
    versions: tuple[Version, ...]
    steps: tuple[Step, ...] = field(default=())

    def totals(self) -> dict[str, int]:
        """Changes per kind over the whole history, the first version's ``new`` left out."""
        later = self.steps[1:]
        return {k: sum(s.counts()[k] for s in later) for k in (kind.value for kind in KINDS)}


def replay_versions(versions: Sequence[Sequence[Advisory]], labels: Sequence[str]) -> list[Step]:
    """Classify each version's advisories against the last version seen of each country.

    Args:
        versions: Each version's advisories (one per country), oldest first.
        labels: A label per version.

    Raises:
        ValueError: if the counts differ, or a version lists a country twice.
    """
    if len(versions) != len(labels):
        raise ValueError(f"{len(versions)} versions but {len(labels)} labels")
    state: dict[str, Advisory] = {}
    steps = []
    for label, advisories in zip(labels, versions, strict=True):
        by_country: dict[str, Advisory] = {}
        for advisory in advisories:
            if advisory.country in by_country:
                raise ValueError(f"version {label} lists {advisory.country} twice")
            by_country[advisory.country] = advisory
        changes = []
        republished = 0
        for country in sorted(by_country):
            after, before = by_country[country], state.get(country)
            if before is None or before.content_hash != after.content_hash:
                kind = classify_change(None if before is None else _state(before), _state(after))
                changes.append(
                    Change(
                        country, kind, None if before is None else int(before.level), after.level
                    )
                )
            elif after.source_updated_at != before.source_updated_at:
                republished += 1
            state[country] = after
        unlisted = sum(1 for country in state if country not in by_country)
        steps.append(Step(label, len(by_country), tuple(changes), republished, unlisted))
    return steps


def _state(advisory: Advisory) -> LevelState:
    regional = None if advisory.regional_level is None else int(advisory.regional_level)
    return LevelState(int(advisory.level), regional, advisory.withdrawn)


# --- Australia: SYNTHETIC exports carrying the DERIVED level maps --------------------------

#: Our level → Smartraveller's phrase.
AU_PHRASES: Final[Mapping[Level, str]] = {
    level: phrase for phrase, level in au_smartraveller.LEVELS.items()
}
AU_EXPORT: Final = au_smartraveller.EXPORT_CAPTURE
AU_NOTE: Final = (
    "SYNTHETIC: a Smartraveller destinations-export entry written by replay.history from the real"
    " export of 2026-04-10 (structure, names, URLs, regions) and a DERIVED level map of"
    " kevle1/smartraveller-api (the level); none of its text is Smartraveller's"
)
# What the synthetic entries say instead of Smartraveller's text; the same in every
# version, so that only a level change changes an entry's content.
_AU_TEXT: Final = "SYNTHETIC entry: its level comes from a derived level map, not this text."


def smartraveller_exports(maps: Sequence[bytes], export: bytes) -> list[bytes]:
    """SYNTHETIC destinations exports, one per DERIVED level map, labelled in every entry.

    Each map (``{"last_updated", "advisories": [{"country": {"alpha_2"}, "level"}]}``)
    becomes the real export's entries of the countries it lists, in the export's
    order, with ``field_overall_advice_level`` the map's level and the texts
    replaced by one constant SYNTHETIC sentence (no regional items: the maps have
    none). ``changed`` is the map's ``last_updated`` (in Canberra time, as the
    export writes it) for a country whose level differs from the last map that
    listed it, and stays as it was otherwise. Every entry starts with a
    ``"_synthetic"`` key saying what it is.

    Raises:
        ValueError: if a map lists a country the real export does not have.
    """
    templates = _au_templates(export)
    changed: dict[str, tuple[int, str]] = {}
    out = []
    for body in maps:
        level_map = json.loads(body)
        at = datetime.fromisoformat(level_map["last_updated"]).astimezone(au_smartraveller.SYDNEY)
        stamp = f"{at:%a, %Y-%m-%d %H:%M}"
        levels = {a["country"]["alpha_2"]: int(a["level"]) for a in level_map["advisories"]}
        unknown = sorted(set(levels) - set(templates))
        if unknown:
            raise ValueError(f"the real export has no entry for {', '.join(unknown)}")
        for country, level in levels.items():
            if changed.get(country, (None, ""))[0] != level:
                changed[country] = (level, stamp)
        entries = [
            _au_entry(raw, Level(levels[country]), changed[country][1])
            for country, raw in templates.items()
            if country in levels
        ]
        out.append(orjson.dumps(entries, option=orjson.OPT_INDENT_2))
    return out


def _au_templates(export: bytes) -> dict[str, dict[str, Any]]:
    """The real export's entries by the parser's country code, in the export's order."""
    templates: dict[str, dict[str, Any]] = {}
    for raw in json.loads(export):
        try:
            (advisory,) = au_smartraveller.parse_file(
                json.dumps([raw]).encode(), url=AU_EXPORT, fetched_at=_FETCHED_AT
            )
        except ContractError:  # the "No travel advice" page: no destination
            continue
        templates[advisory.country] = raw
    return templates


def _au_entry(raw: Mapping[str, Any], level: Level, changed: str) -> dict[str, Any]:
    phrase = AU_PHRASES[level]
    return {
        SYNTHETIC_KEY: AU_NOTE,
        **raw,
        "field_overall_advice_level": phrase,
        "field_advice_levels": f"{phrase}. {_AU_TEXT}",
        "field_last_update": _AU_TEXT,
        "field_last_update_notes": _AU_TEXT,
        "field_seo_description": _AU_TEXT,
        "changed": changed,
    }


def _same(captures: Sequence[bytes]) -> list[bytes]:
    return list(captures)


_CA: Final = "replay/captures/canada_travel/"
_DE: Final = "replay/captures/de_auswaertiges_amt/"
_NL: Final = "replay/captures/nl_nederland_wereldwijd/history/traveladvice_BFA_"
_AU: Final = "replay/captures/au_smartraveller/history/derived_kevle1/"
_AU_MAPS: Final = (
    "2024-10-05T130605", "2024-10-10T061655", "2024-10-10T121957", "2024-10-11T061712",
    "2024-10-11T121953", "2024-10-12T121842", "2024-10-12T181410", "2024-10-14T122036",
    "2024-10-16T061611", "2024-10-16T122023", "2024-10-18T000736", "2024-10-23T180610",
    "2024-10-24T000806", "2024-10-24T060603", "2024-10-30T180750", "2024-10-31T000729",
    "2024-11-01T060540",
)  # fmt: skip

#: Every history in the captures, by source id.
HISTORIES: Final[Mapping[str, History]] = {
    canada_travel.SOURCE_ID: History(
        source=canada_travel.SOURCE_ID,
        versions=(
            Version("2014-03-02", _CA + "history/index-alpha-eng_2014-03-02.json", "real"),
            Version("2014-10-02", _CA + "history/index-alpha-eng_2014-10-02.json", "real"),
            Version("2015-11-19", "canada/index_cta-cap_2015-11-19.json", "real"),
            Version("2015-11-24", "canada/index_cta-cap_2015-11-24.json", "real"),
            Version("2015-11-30", "canada/index_cta-cap_2015-11-30.json", "real"),
            Version("2026-07-02", _CA + "index-alpha-eng_2026-07-02.json", "real"),
        ),
        documents=_same,
        note="complete country indexes, as captured (2014 layout: entries keyed by code only)",
    ),
    de_auswaertiges_amt.SOURCE_ID: History(
        source=de_auswaertiges_amt.SOURCE_ID,
        versions=(
            Version("2026-07-11", _DE + "travelwarning_index_2026-07-11.json", "real"),
            Version(
                "2026-09", _DE + "travelwarning_index_17-entry-excerpt_2026-09.json", "trimmed"
            ),
        ),
        documents=_same,
        note="complete index, then a 17-entry excerpt (the others unlisted, not withdrawn)",
    ),
    nl_nederland_wereldwijd.SOURCE_ID: History(
        source=nl_nederland_wereldwijd.SOURCE_ID,
        versions=tuple(
            Version(day, f"{_NL}{day}.xml", "real")
            for day in ("2026-09-23", "2026-09-24", "2026-10-07")
        ),
        documents=_same,
        note="one destination's document (Burkina Faso), three versions",
    ),
    au_smartraveller.SOURCE_ID: History(
        source=au_smartraveller.SOURCE_ID,
        versions=tuple(
            Version(name[:10] + " " + name[11:13] + "h", f"{_AU}advisories_{name}.json", "derived")
            for name in _AU_MAPS
        ),
        documents=lambda maps: smartraveller_exports(
            maps, capture_file(AU_EXPORT, default_fixtures_root()).read_bytes()
        ),
        note="DERIVED level maps as SYNTHETIC destinations exports",
    ),
}


def read_versions(history: History) -> list[bytes]:
    """The documents of a history as its source's parser reads them, oldest first."""
    root = default_fixtures_root()
    return history.documents([capture_file(v.file, root).read_bytes() for v in history.versions])


def count(history: History) -> SourceHistory:
    """A history counted with its source's parser (``parse_file``: what each version carries)."""
    parser = SOURCES[history.source].parser
    versions = [
        parser.parse_file(body, url=v.file, fetched_at=_FETCHED_AT)
        for v, body in zip(history.versions, read_versions(history), strict=True)
    ]
    steps = replay_versions(versions, [v.label for v in history.versions])
    return SourceHistory(history.source, history.note, history.versions, tuple(steps))


def count_all() -> list[SourceHistory]:
    """Every registered source: its history counted, or no steps when the captures have none."""
    return [
        count(HISTORIES[source])
        if source in HISTORIES
        else SourceHistory(source, "no history in the captures", ())
        for source in SOURCES
    ]


_COLUMNS: Final = ("listed", *(k.value for k in KINDS), "republished", "unlisted")


def table(histories: Sequence[SourceHistory]) -> str:
    """A Markdown table: one row per version against those before it, and a total per source."""
    head = ["source", "version", "provenance", *_COLUMNS]
    rows = [_row(*head), "|" + "---|" * len(head)]
    for history in histories:
        if not history.steps:
            rows.append(_row(f"`{history.source}`", "—", history.note, *[""] * len(_COLUMNS)))
            continue
        for version, step in zip(history.versions, history.steps, strict=True):
            rows.append(
                _row(
                    f"`{history.source}`",
                    version.label,
                    version.provenance,
                    step.listed,
                    *step.counts().values(),
                    step.republished,
                    step.unlisted,
                )
            )
        later = history.steps[1:]
        rows.append(
            _row(
                f"`{history.source}`",
                f"**total, {len(later)} later versions**",
                "",
                "",
                *history.totals().values(),
                sum(s.republished for s in later),
                "",
            )
        )
    return "\n".join(rows)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def as_json(histories: Sequence[SourceHistory]) -> list[dict[str, Any]]:
    """The counts as plain data (what ``--json`` prints)."""
    return [
        {
            "source": h.source,
            "note": h.note,
            "versions": [
                {"label": v.label, "file": v.file, "provenance": v.provenance} for v in h.versions
            ],
            "steps": [
                {
                    "version": s.label,
                    "listed": s.listed,
                    "changes": s.counts(),
                    "republished": s.republished,
                    "unlisted": s.unlisted,
                    "level_changes": [
                        [c.country, c.kind.value, c.level_before, c.level_after]
                        for c in s.changes
                        if c.kind in (ChangeKind.RAISED, ChangeKind.LOWERED)
                    ],
                }
                for s in h.steps
            ],
            "totals": h.totals() if h.steps else None,
        }
        for h in histories
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m replay.history [--json]``."""
    parser = argparse.ArgumentParser(
        prog="python -m replay.history",
        description="Changes of each kind between consecutive versions in the captures' histories.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    histories = count_all()
    if args.json:
        sys.stdout.write(json.dumps(as_json(histories), indent=1, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(table(histories) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

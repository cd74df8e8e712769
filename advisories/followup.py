"""Cross-source follow-up: when one government raises a country, the others are asked again.

Pure decision logic (no Temporal, asyncpg or httpx). A cycle of one source stores changes;
:func:`raised_countries` says which of them put a country at ``min_level`` or above, and
:func:`plan_followups` turns those into one follow-up run per *other* source that lists any
of the countries, each with a deterministic workflow id.

The rule (:func:`is_trigger`), for a change with the levels before and after:

* the country level rose and is now ``>= min_level`` (kind ``raised``), or
* the strictest level anywhere in the country (``max(level, regional_level)``) rose and is
  now ``>= min_level`` — a region newly at "do not travel" matters on the side-by-side view
  as much as the whole country does (kind ``regional``, or ``raised`` with a regional level), or
* the country is ``new`` to the source at ``>= min_level`` *and* newly listed: its index
  entry appeared after the source's first index was recorded. A first crawl of a source
  stores every country as ``new`` and triggers nothing.

Withdrawn advisories, lowered levels and text edits never trigger. A follow-up run itself
never plans follow-ups (no ping-pong between sources).

No ``from __future__ import annotations``: :class:`RaisedCountry` travels in activity
results, and the payload converter would resolve string annotations for every value.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DEFAULT_MIN_LEVEL",
    "FOLLOWUP_PREFIX",
    "MAX_COUNTRIES_IN_ID",
    "ChangeFacts",
    "FollowUp",
    "RaisedCountry",
    "followup_workflow_id",
    "is_trigger",
    "plan_followups",
    "raised_countries",
]

#: Default of ``FOLLOWUP_MIN_LEVEL``: 3 reconsider / avoid non-essential travel, 4 do not travel.
DEFAULT_MIN_LEVEL = 3
#: Every follow-up workflow id starts with this.
FOLLOWUP_PREFIX = "followup"
#: Up to this many countries are named in a follow-up's workflow id; more are counted.
MAX_COUNTRIES_IN_ID = 12


class ChangeFacts(Protocol):
    """What the rule reads of one stored change (``store.advisories.StoredChange``)."""

    @property
    def country(self) -> str: ...

    @property
    def change_id(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def level_before(self) -> int | None: ...

    @property
    def level_after(self) -> int: ...

    @property
    def regional_before(self) -> int | None: ...

    @property
    def regional_after(self) -> int | None: ...


@dataclass(frozen=True)
class RaisedCountry:
    """A country a source has just put at the follow-up level or above.

    Attributes:
        country: ISO code as stored (``FR``, ``PT-20``).
        change_id: Id of the ``changes`` row that did it.
        level: The strictest level now stated for the country (country or regional).
        kind: The change's kind (``raised``, ``regional``, ``new``).
    """

    country: str
    change_id: int
    level: int
    kind: str


@dataclass(frozen=True)
class FollowUp:
    """One follow-up run: ``source`` re-polls ``countries`` because ``trigger`` raised them.

    Attributes:
        source: The source to re-poll.
        trigger: The source whose changes caused it.
        countries: Countries to fetch (sorted).
        change_ids: The trigger's change ids, in ``countries`` order.
        workflow_id: Deterministic id: the same changes always name the same run.
    """

    source: str
    trigger: str
    countries: tuple[str, ...]
    change_ids: tuple[int, ...]
    workflow_id: str


def _strictest(level: int | None, regional: int | None) -> int:
    return max(level or 0, regional or 0)


def is_trigger(change: ChangeFacts, *, min_level: int, newly_listed: bool = False) -> bool:
    """Whether ``change`` puts its country at ``min_level`` or above (see the module rule).

    Args:
        change: A stored change.
        min_level: The follow-up level (1-4).
        newly_listed: For a ``new`` change: the source started listing the country after
            its first index was recorded (not a first crawl).
    """
    if change.kind == "withdrawn":
        return False
    after = _strictest(change.level_after, change.regional_after)
    if change.level_before is None:
        return newly_listed and after >= min_level
    before = _strictest(change.level_before, change.regional_before)
    country_raised = change.level_after > change.level_before and change.level_after >= min_level
    return country_raised or (after > before and after >= min_level)


def raised_countries(
    changes: Iterable[ChangeFacts], *, min_level: int, newly_listed: Collection[str] = ()
) -> list[RaisedCountry]:
    """The changes that trigger follow-ups, as small results (one per country, the latest).

    Args:
        changes: Changes a store just wrote.
        min_level: The follow-up level.
        newly_listed: Countries whose ``new`` changes count (see :func:`is_trigger`).

    Raises:
        ValueError: for a ``min_level`` outside 1-4.
    """
    if not 1 <= min_level <= 4:
        raise ValueError(f"follow-up level must be 1-4, got {min_level}")
    latest: dict[str, RaisedCountry] = {}
    for change in changes:
        if not is_trigger(change, min_level=min_level, newly_listed=change.country in newly_listed):
            continue
        seen = latest.get(change.country)
        if seen is None or change.change_id > seen.change_id:
            latest[change.country] = RaisedCountry(
                country=change.country,
                change_id=change.change_id,
                level=_strictest(change.level_after, change.regional_after),
                kind=change.kind,
            )
    return [latest[c] for c in sorted(latest)]


def followup_workflow_id(
    source: str, trigger: str, countries: Sequence[str], change_ids: Sequence[int]
) -> str:
    """``followup-<source>-<trigger>-<country>-<change id>[+<country>-<change id>...]``.

    Change ids are unique, so the id names exactly the changes that caused the run: a
    replay, or the same changes reported again, names the same workflow (already started:
    nothing more to do), and a later raise of the same country names a new one. Past
    :data:`MAX_COUNTRIES_IN_ID` countries the id says how many and the change id range.

    Raises:
        ValueError: if ``countries`` is empty or does not match ``change_ids``.
    """
    if not countries or len(countries) != len(change_ids):
        raise ValueError("a follow-up needs one change id per country, and at least one")
    head = f"{FOLLOWUP_PREFIX}-{source}-{trigger}"
    if len(countries) > MAX_COUNTRIES_IN_ID:
        return f"{head}-{len(countries)}countries-{min(change_ids)}-{max(change_ids)}"
    return head + "-" + "+".join(f"{c}-{i}" for c, i in zip(countries, change_ids, strict=True))


def plan_followups(
    trigger: str,
    raised: Iterable[RaisedCountry],
    listed_by: Mapping[str, Collection[str]],
    *,
    is_followup: bool = False,
) -> list[FollowUp]:
    """One follow-up per other source that lists any raised country, all of them in it.

    Args:
        trigger: The source whose cycle stored the changes.
        raised: What :func:`raised_countries` reported (from every activity of the cycle).
        listed_by: Source id → countries its index lists (the trigger's own entry is ignored).
        is_followup: The cycle is itself a follow-up run: it plans nothing.

    Returns:
        Follow-ups sorted by source; empty when nothing was raised.
    """
    if is_followup:
        return []
    latest: dict[str, int] = {}
    for item in raised:
        latest[item.country] = max(item.change_id, latest.get(item.country, item.change_id))
    if not latest:
        return []
    plans = []
    for source in sorted(listed_by):
        if source == trigger:
            continue
        countries = tuple(sorted(set(listed_by[source]) & latest.keys()))
        if not countries:
            continue
        ids = tuple(latest[c] for c in countries)
        plans.append(
            FollowUp(
                source=source,
                trigger=trigger,
                countries=countries,
                change_ids=ids,
                workflow_id=followup_workflow_id(source, trigger, countries, ids),
            )
        )
    return plans

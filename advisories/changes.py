"""Classifying a new version of an advisory against the one it replaces (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ChangeKind(StrEnum):
    """What kind of change a new version is."""

    NEW = "new"
    RAISED = "raised"
    LOWERED = "lowered"
    REGIONAL = "regional"
    TEXT = "text"
    WITHDRAWN = "withdrawn"

    @property
    def notable(self) -> bool:
        """Changes that people are alerted to (everything but text edits and first sightings)."""
        return self in {
            ChangeKind.RAISED,
            ChangeKind.LOWERED,
            ChangeKind.REGIONAL,
            ChangeKind.WITHDRAWN,
        }


@dataclass(frozen=True, slots=True)
class LevelState:
    """The parts of a version that classification looks at."""

    level: int
    regional_level: int | None
    withdrawn: bool = False


def classify_change(before: LevelState | None, after: LevelState) -> ChangeKind:
    """Classify ``after`` against ``before`` (None: the country is new).

    Precedence: new, withdrawn, raised / lowered (country level), regional
    (regional level changed), text (content changed, levels the same).
    """
    if before is None:
        return ChangeKind.NEW
    if after.withdrawn and not before.withdrawn:
        return ChangeKind.WITHDRAWN
    if after.level > before.level:
        return ChangeKind.RAISED
    if after.level < before.level:
        return ChangeKind.LOWERED
    if after.regional_level != before.regional_level:
        return ChangeKind.REGIONAL
    return ChangeKind.TEXT

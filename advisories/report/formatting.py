"""Formatting: the report's numbers, times and levels as short text (HTML and Markdown).

Numbers, percentages and durations are the template filters of ``advisories.render``, so the
report's Markdown and every HTML page write them alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from advisories.render import num, pct, secs
from advisories.report.model import LevelCell
from advisories.report.rows import ChangeRow

__all__ = ["cell_text", "level_change", "num", "pct", "secs", "span", "when"]

_DASH: Final = "–"


def when(at: datetime) -> str:
    """An instant as ``YYYY-MM-DD HH:MM UTC``."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def span(seconds: float) -> str:
    """A length of time in days, hours or minutes, whichever divides it."""
    if seconds % 86400 == 0:
        return f"{seconds / 86400:g} d"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


def cell_text(cell: LevelCell | None) -> str:
    """One cell of the level matrix: the level, its regional level, or withdrawn."""
    if cell is None:
        return _DASH
    if cell.withdrawn:
        return "withdrawn"
    if cell.regional_level is not None and cell.regional_level != cell.level:
        return f"{cell.level} (parts {cell.regional_level})"
    return str(cell.level)


def level_change(change: ChangeRow) -> str:
    """A change's levels, before → after (regional levels too when they moved)."""
    before = _DASH if change.level_before is None else str(change.level_before)
    text = f"{before} → {change.level_after}"
    if change.regional_before != change.regional_after:
        rb = _DASH if change.regional_before is None else str(change.regional_before)
        ra = _DASH if change.regional_after is None else str(change.regional_after)
        text += f" (parts {rb} → {ra})"
    return text

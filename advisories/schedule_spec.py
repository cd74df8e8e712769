"""Schedule timing from configuration: an interval ("15m", "2h") or a cron string (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Timing:
    """Exactly one of ``every`` and ``cron`` is set."""

    every: timedelta | None = None
    cron: str | None = None

    def describe(self) -> str:
        """Human form: ``every 2:00:00`` or ``cron 0 * * * *``."""
        return f"every {self.every}" if self.every is not None else f"cron {self.cron}"


def parse_timing(text: str) -> Timing:
    """Parse ``"30m"``-style durations or 5-field cron strings.

    Raises:
        ValueError: with a one-line reason.
    """
    match = _DURATION.match(text)
    if match:
        seconds = float(match[1]) * _UNITS[match[2]]
        if seconds < 60:
            raise ValueError(f"schedule interval {text!r} is shorter than one minute")
        return Timing(every=timedelta(seconds=seconds))
    fields = text.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[\d*/,\-A-Za-z]+", f) for f in fields):
        raise ValueError(
            f"schedule timing {text!r} is neither a duration like '30m'/'2h' nor a 5-field cron"
        )
    return Timing(cron=" ".join(fields))

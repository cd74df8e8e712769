"""Plain-text normalisation shared by the parsers, errors and health checks (pure)."""

from __future__ import annotations

__all__ = ["collapse", "one_line"]


def collapse(text: str) -> str:
    """Collapse runs of whitespace (including no-break spaces and newlines) to one space.

    Leading and trailing whitespace is removed. "Whitespace" is what
    :meth:`str.isspace` says, the same set as ``\\s`` in a ``str`` pattern.
    """
    return " ".join(text.split())


def one_line(text: str, *, limit: int) -> str:
    """``text`` collapsed to one line of at most ``limit`` characters.

    A longer line is cut and ends in "…" (counted in ``limit``).
    """
    line = collapse(text)
    return line if len(line) <= limit else line[: limit - 1] + "…"

"""Domain errors: a small hierarchy that carries data.

Activities turn these into ``ApplicationError(type=..., non_retryable=...)``.
"""

from __future__ import annotations


class AdvisoryError(Exception):
    """Base class of every error this project raises on purpose."""


class UnknownSourceError(AdvisoryError, ValueError):
    """A source id that is not in the registry."""

    def __init__(self, source: str, valid: list[str]) -> None:
        self.source = source
        self.valid = valid
        super().__init__(f"unknown source {source!r}; valid sources: {', '.join(valid)}")


class ParseError(AdvisoryError):
    """A document that cannot be parsed: a malformed document, not a transient failure."""

    def __init__(self, source: str, url: str, reason: str) -> None:
        self.source = source
        self.url = url
        self.reason = reason
        super().__init__(f"{source}: cannot parse {url}: {reason}")


class ContractError(ParseError):
    """A document that parses but breaks what we rely on (e.g. an empty index)."""

"""Reading a source's JSON document (pure): the checks every JSON parser starts with."""

from __future__ import annotations

import json
from typing import Any

from advisories.errors import ParseError

__all__ = ["load_json", "load_json_object"]


def load_json(source: str, body: bytes, url: str) -> Any:
    """The JSON value in ``body``.

    Args:
        source: The source id the error names.
        body: The document as fetched.
        url: Where it was fetched from (for error messages).

    Raises:
        ParseError: if ``body`` is empty (or only white space) or not JSON.
    """
    if not body.strip():
        raise ParseError(source, url, "the document is empty")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(source, url, f"not JSON: {exc}") from exc


def load_json_object(source: str, body: bytes, url: str) -> dict[str, Any]:
    """The JSON object in ``body``.

    Raises:
        ParseError: as :func:`load_json` does, and if the value is not an object.
    """
    document = load_json(source, body, url)
    if not isinstance(document, dict):
        raise ParseError(source, url, f"expected a JSON object, got {type(document).__name__}")
    return document

"""The shared text helpers (``advisories.text``)."""

from __future__ import annotations

import re
import sys

import pytest

from advisories.text import collapse, one_line


def test_collapse_treats_exactly_the_regex_whitespace_as_whitespace() -> None:
    # The parsers collapsed with re.sub(r"\s+", " ", text).strip() before; every
    # code point must count as whitespace for collapse() exactly when it did there.
    pattern = re.compile(r"\s")
    differing = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if (collapse(f"a{chr(code)}b") == "a b") != bool(pattern.fullmatch(chr(code)))
    ]
    assert differing == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   ", ""),
        (" Level 3:\u00a0Reconsider\n\tTravel ", "Level 3: Reconsider Travel"),
        ("a\u2003\u2009b\u3000c", "a b c"),
        ("one", "one"),
    ],
)
def test_collapse(text: str, expected: str) -> None:
    assert collapse(text) == expected


def test_one_line_collapses_and_keeps_a_short_line_whole() -> None:
    assert one_line("line one\n  line two\n", limit=17) == "line one line two"


def test_one_line_cuts_a_long_line_to_the_limit_with_an_ellipsis() -> None:
    line = one_line("x" * 10 + "\n" + "y" * 10, limit=12)
    assert line == "x" * 10 + " …"
    assert len(line) == 12

"""Bad documents, table-driven, against every parser and the ``parse`` command.

The documents are SYNTHETIC: written here to look like what a broken or hostile
server might send (nothing, binary garbage, an error page, truncated JSON, a
huge body). Each must give a ``ParseError`` naming its source in one line, and
the CLI must report it in one line; no server is needed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from advisories.errors import ParseError
from advisories.parsers import PARSERS
from tests.integration.helpers import run_cli

#: SYNTHETIC bad documents: (name, body).
BAD_DOCUMENTS: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b" \n\t "),
    ("not utf-8", b"\xff\xfe\x00<\x00r\x00s\x00s\x00" + bytes(range(128, 256))),
    ("binary garbage", bytes(range(256)) * 64),
    ("html page", b"<!doctype html><html><body><h1>Service unavailable</h1></body></html>"),
    ("json array", b"[1, 2, 3]"),
    ("truncated json", b'{"data": {"AF": {"advisory-state": 2'),
    ("huge", b"<" + b"a" * 12_000_000),
    ("script", b"<script>alert(1)</script>"),
]


@pytest.mark.parametrize("source", sorted(PARSERS))
@pytest.mark.parametrize(("name", "body"), BAD_DOCUMENTS, ids=[n for n, _ in BAD_DOCUMENTS])
@pytest.mark.parametrize("function", ["parse_index", "parse_document", "parse_file"])
def test_parsers_reject_bad_documents_with_parse_error(
    source: str, name: str, body: bytes, function: str
) -> None:
    parser: Any = PARSERS[source]
    with pytest.raises(ParseError) as caught:
        getattr(parser, function)(body, url="http://127.0.0.1/doc", fetched_at=datetime.now(UTC))
    assert source in str(caught.value)
    assert "\n" not in str(caught.value)


def test_parse_command_reports_a_malformed_file_in_one_line(tmp_path: Path) -> None:
    for name, body in BAD_DOCUMENTS[:6]:
        path = tmp_path / f"{name.replace(' ', '_')}.doc"
        path.write_bytes(body)
        for source in sorted(PARSERS):
            run = run_cli("parse", "--source", source, str(path), env={})
            assert run.returncode == 1, (source, name, run.stderr)
            assert len(run.stderr.strip().splitlines()) == 1, (source, name, run.stderr)

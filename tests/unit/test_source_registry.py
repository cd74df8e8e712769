"""The source registry: discovery, the names it keeps working, and README's source table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

import advisories.sources as registry
from advisories.errors import UnknownSourceError
from advisories.parsers import PARSERS, parser_for
from advisories.sources import SOURCES, SourceSpec, get_source, markdown_table, source_ids
from advisories.sources.__main__ import main

README: Final = Path(__file__).resolve().parents[2] / "README.md"
TABLE: Final = re.compile(
    r"<!-- sources-table:start[^>]*-->\n(.*?)\n<!-- sources-table:end -->", re.DOTALL
)
SOURCES_DIR: Final = Path(registry.__file__).parent


def test_every_public_module_is_a_registered_source() -> None:
    modules = {p.stem for p in SOURCES_DIR.glob("*.py") if not p.name.startswith("_")}
    assert modules == set(SOURCES) == set(PARSERS)
    assert source_ids() == sorted(modules)
    for source, spec in SOURCES.items():
        assert spec.id == source
        assert parser_for(source) is spec.parser


def test_upper_case_names_are_the_registered_specs() -> None:
    assert registry.US_STATE_DEPT is get_source("us_state_dept")
    from advisories.sources import CANADA_TRAVEL, UK_FOREIGN_OFFICE

    assert isinstance(CANADA_TRAVEL, SourceSpec) and CANADA_TRAVEL.id == "canada_travel"
    assert UK_FOREIGN_OFFICE.schedule_id == "scrape-uk_foreign_office"
    with pytest.raises(AttributeError, match="ATLANTIS"):
        registry.ATLANTIS  # noqa: B018


def test_unknown_source_names_the_valid_ones() -> None:
    with pytest.raises(UnknownSourceError, match=r"unknown source 'atlantis'; valid sources: "):
        get_source("atlantis")


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_each_source_declares_what_differs(source: str) -> None:
    spec = SOURCES[source]
    assert spec.index_path.startswith("/")
    assert spec.default_base_url.startswith("https://")
    assert spec.default_base_url.removeprefix("https://") in spec.allowed_hosts
    assert spec.mapping_version
    assert spec.levels and set(spec.levels.values()) <= {1, 2, 3, 4}
    assert spec.rate_limit.requests_per_hour > 0 and spec.rate_limit.timezone
    for route in spec.replay_routes:
        assert route.path.startswith("/")
        assert route.file.startswith((spec.fixtures + "/", f"replay/captures/{source}/"))


def test_readme_source_table_is_the_registry() -> None:
    found = TABLE.search(README.read_text(encoding="utf-8"))
    assert found is not None, "README.md has no sources-table markers"
    assert found[1] == markdown_table()
    rows = [line for line in found[1].splitlines()[2:]]
    assert [re.match(r"\| `([a-z_]+)`", row)[1] for row in rows] == source_ids()  # type: ignore[index]


def test_cli_prints_ids_and_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out.split() == source_ids()
    assert main(["--markdown"]) == 0
    assert capsys.readouterr().out == markdown_table() + "\n"

"""Nederland Wereldwijd's list is read page by page: the pager on the real list excerpt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisories.errors import ParseError
from advisories.settings import Settings
from advisories.sources import page_url, query_file
from advisories.sources.nl_nederland_wereldwijd import (
    INDEX_PATH,
    PAGE_ROWS,
    SOURCE,
    SOURCE_ID,
    next_page,
)

CAPTURES = Path(__file__).resolve().parents[2] / "replay" / "captures" / SOURCE_ID
LIST = CAPTURES / "traveladvice_list_12-item-excerpt_2026-09.json"
BASE = "https://opendata.nederlandwereldwijd.nl" + INDEX_PATH


def test_the_source_declares_its_pager() -> None:
    assert SOURCE.index_pager is next_page
    assert PAGE_ROWS == 200


def test_a_short_page_is_the_last() -> None:
    index_url = Settings(_env_file=None).index_url(SOURCE_ID)  # type: ignore[call-arg]
    page = next_page(LIST.read_bytes(), url=index_url)
    assert (page.records, page.next_query) == (12, None)


def test_a_full_page_asks_for_the_next_offset() -> None:
    # The real excerpt's 12 records read as a full page of 12: the next page starts at 12.
    body = LIST.read_bytes()
    page = next_page(body, url=f"{BASE}?output=json&rows=12")
    assert (page.records, page.next_query) == (12, "output=json&rows=12&offset=12")
    second = next_page(body, url=f"{BASE}?output=json&rows=12&offset=12")
    assert second.next_query == "output=json&rows=12&offset=24"
    assert page_url(f"{BASE}?output=json&rows=12", "output=json&rows=12&offset=12") == (
        f"{BASE}?output=json&rows=12&offset=12"
    )


def test_a_page_larger_than_the_api_gives_is_read_as_200() -> None:
    records = json.loads(LIST.read_bytes())
    full = json.dumps((records * 17)[:PAGE_ROWS]).encode()
    page = next_page(full, url=f"{BASE}?output=json&rows=500&offset=200")
    assert page.next_query == "output=json&rows=500&offset=400"


def test_a_list_longer_than_a_page_was_not_paged_and_is_the_last() -> None:
    # A server that ignores rows= gives the whole list at once: asking for offset= would
    # get it again.
    page = next_page(LIST.read_bytes(), url=f"{BASE}?output=json&rows=5")
    assert (page.records, page.next_query) == (12, None)


def test_an_empty_page_past_the_last_ends_the_list() -> None:
    page = next_page(b"[]", url=f"{BASE}?output=json&rows=200&offset=400")
    assert (page.records, page.next_query) == (0, None)


@pytest.mark.parametrize(
    ("body", "url", "reason"),
    [
        (LIST.read_bytes(), f"{BASE}?output=json", "page size"),
        (LIST.read_bytes(), f"{BASE}?output=json&rows=200&offset=x", "numeric offset"),
        (b"<document/>", f"{BASE}?output=json&rows=200", "not the list"),
        (b"{}", f"{BASE}?output=json&rows=200", "JSON array"),
    ],
)
def test_bad_pages_are_one_clear_error(body: bytes, url: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        next_page(body, url=url)


def test_catalogue_file_of_a_page_sorts_the_query() -> None:
    assert query_file("a/list", "rows=200&output=json&offset=200") == (
        "a/list@offset=200&output=json&rows=200"
    )
    assert query_file("a/list", "") == "a/list"

"""The dashboard in a real headless browser (Debian's Chromium driven by Playwright).

Against the real service (``api_server``) over a database a real crawl filled
(``crawled_database_url``). Expectations come from the service's own JSON API and
the installed map shapes, never typed in. Screenshots of every page are written to
``.state/screenshots/`` for people to look at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from advisories.render.worldmap import country_shapes
from advisories.report import render_html
from advisories.sources import source_ids
from tests.integration.api.conftest import start_api
from tests.integration.api.helpers import store_new_version
from tests.integration.helpers import REPO

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / ".state" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not found: apt-get install chromium (CI installs it)", allow_module_level=True
    )

from playwright.async_api import BrowserContext, Page, async_playwright  # noqa: E402


class Recorder:
    """Every request the pages make and every console message they log."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.console: list[tuple[str, str]] = []

    def attach(self, page: Page) -> None:
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda message: self.console.append((message.type, message.text)))


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A fresh Chromium profile, 1280×720, torn down after the test."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 720},
        )
        try:
            yield context
        finally:
            await context.close()


async def api_json(api_server: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=api_server, timeout=10) as client:
        response = await client.get(path)
    response.raise_for_status()
    return response.json()


async def levels_on_map(page: Page) -> dict[str, str]:
    """``data-iso`` → ``data-level`` of every country path on the page."""
    pairs = await page.eval_on_selector_all(
        "svg.worldmap path.country",
        "paths => paths.map(p => [p.dataset.iso, p.dataset.level])",
    )
    return dict(pairs)


async def click_a_country(page: Page, candidates: list[str]) -> str:
    """Click the first candidate with a point that really is on its shape (a bounding
    box's centre may be sea, or another country); return which one was clicked."""
    found = await page.evaluate(
        """isos => {
            for (const iso of isos) {
                const path = document.querySelector(`svg.worldmap path[data-iso="${iso}"]`);
                path.scrollIntoView({block: "center"});
                const box = path.getBoundingClientRect();
                for (let i = 1; i < 20; i++) for (let j = 1; j < 20; j++) {
                    const x = box.left + box.width * i / 20, y = box.top + box.height * j / 20;
                    if (document.elementFromPoint(x, y) === path) return [iso, x, y];
                }
            }
            return null;
        }""",
        candidates,
    )
    assert found is not None, f"none of {candidates[:5]}… has a visible point on the map"
    iso, x, y = found
    await page.mouse.click(x, y)
    return str(iso)


async def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def expected_levels(items: list[dict[str, Any]], mode: str) -> dict[str, str]:
    """What the map must show per stored country, from the API's advisories."""
    by_country: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_country.setdefault(item["country"], []).append(item)
    out = {}
    for country, rows in by_country.items():
        if mode == "strictest":
            live = [r["level"] for r in rows if not r["withdrawn"]]
            out[country] = str(max(live)) if live else "withdrawn"
        else:
            mine = [r for r in rows if r["source"] == mode]
            if mine:
                out[country] = "withdrawn" if mine[0]["withdrawn"] else str(mine[0]["level"])
    return out


async def test_dashboard_in_a_real_browser(api_server: str, browser: BrowserContext) -> None:
    items: list[dict[str, Any]] = (await api_json(api_server, "/v1/advisories"))["advisories"]
    stored = {item["country"] for item in items}
    shaped = {shape.iso for shape in country_shapes()}
    assert stored & shaped, "the crawl stored no country the map can draw"
    recorder = Recorder()
    page = await browser.new_page()
    recorder.attach(page)

    # The map, strictest level: one coloured shape per stored country with a shape.
    response = await page.goto(f"{api_server}/")
    assert response is not None and response.status == 200
    headers = await response.all_headers()
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"]
    strictest = await levels_on_map(page)
    assert set(strictest) == shaped  # one path per country shape
    coloured = {iso for iso, level in strictest.items() if level != "none"}
    assert coloured == stored & shaped
    want = expected_levels(items, "strictest")
    assert {iso: strictest[iso] for iso in coloured} == {iso: want[iso] for iso in coloured}
    # The colour really is the level's (the stylesheet loaded under the CSP).
    fills = await page.eval_on_selector_all(
        "svg.worldmap path.country",
        "ps => Object.fromEntries(ps.map(p => [p.dataset.level, getComputedStyle(p).fill]))",
    )
    assert len({fills[level] for level in fills}) == len(fills) >= 2, fills
    # Stored countries the map has no shape for are listed under it.
    listed = await page.eval_on_selector_all(
        ".unmapped a", "links => links.map(a => a.getAttribute('href'))"
    )
    assert sorted(listed) == sorted(f"/countries/{iso}" for iso in stored - shaped)
    # Hover text names the country and every government's level.
    title = await page.text_content(f'svg.worldmap path[data-iso="{sorted(coloured)[0]}"] > title')
    assert title is not None and "level" in title
    await shoot(page, "map")
    # The README's picture (docs/map.png is a copy): heading, tabs and the whole map.
    # (Not scrolled yet: viewport and page coordinates are the same.)
    top = await page.evaluate("document.querySelector('main h1').getBoundingClientRect().top")
    await page.screenshot(
        path=str(SCREENSHOTS / "map-readme.png"),
        full_page=True,
        clip={"x": 40, "y": top - 16, "width": 1200, "height": 720},
    )

    # Switching the source changes the colours, to that source's levels.
    changed = False
    for source in source_ids():
        await page.click(f'nav.modes a[href="/?source={source}"]')
        await page.wait_for_url(f"**/?source={source}")
        shown = await levels_on_map(page)
        mine = expected_levels(items, source)
        assert {iso: level for iso, level in shown.items() if level != "none"} == {
            iso: level for iso, level in mine.items() if iso in shaped
        }
        changed |= shown != strictest
        await shoot(page, f"map-{source}")
    assert changed, "no source's map differs from the strictest map"

    # Clicking a country opens its page: the largest coloured shape, clicked on itself.
    await page.goto(f"{api_server}/")
    sizes = await page.eval_on_selector_all(
        "svg.worldmap path.country:not(.level-none)",
        "ps => ps.map(p => { const b = p.getBBox(); return [p.dataset.iso, b.width * b.height]; })",
    )
    biggest_first = [iso for iso, _ in sorted(sizes, key=lambda pair: -pair[1])]
    target = await click_a_country(page, biggest_first)
    await page.wait_for_url(f"**/countries/{target}")
    country = await api_json(api_server, f"/v1/countries/{target}")
    assert country["name"] in (await page.text_content("h1") or "")
    cards = await page.eval_on_selector_all(
        "article.source-card", "cards => cards.map(c => c.dataset.source)"
    )
    missing = await page.eval_on_selector_all(
        ".missing-sources .missing", "names => names.map(n => n.dataset.source)"
    )
    # Every source: a card for each that covers the country, named if it does not.
    assert sorted(cards) == sorted(s["source"] for s in country["sources"])
    assert sorted(cards + missing) == sorted(source_ids())
    assert await page.locator("svg#chart-timeline").count() == 1
    await shoot(page, "country", full_page=True)

    # The other pages.
    for path, name in (("/changes", "changes"), ("/sources", "sources")):
        response = await page.goto(f"{api_server}{path}")
        assert response is not None and response.status == 200
        assert "default-src 'none'" in (await response.all_headers())["content-security-policy"]
        await shoot(page, name, full_page=True)
    rows = await page.locator("table.sources tbody tr").count()
    assert rows == len(source_ids())

    # An unknown country is a clear 404 page.
    response = await page.goto(f"{api_server}/countries/QQ")
    assert response is not None and response.status == 404
    assert "unknown country code" in (await page.text_content("main") or "")

    # Every request went to the service itself; nothing was refused or failed.
    for url in recorder.requests:
        parts = urlsplit(url)
        assert parts.scheme == "data" or parts.hostname == "127.0.0.1", url
    errors = [text for kind, text in recorder.console if kind == "error"]
    # The 404 page's own status is logged by Chromium as a failed load; nothing else may be.
    assert [e for e in errors if "404" not in e] == [], errors
    assert not [text for _, text in recorder.console if "Content Security Policy" in text]


async def test_a_change_shows_before_and_after_with_scraped_text_escaped(
    fresh_crawled_database_url: str, browser: BrowserContext, tmp_path: Path
) -> None:
    # A real change stored the way a scrape stores it, with hostile text in the title.
    items = [
        item
        for item in await stored_advisories(fresh_crawled_database_url)
        if item["level"] < 4 and not item["withdrawn"]
    ]
    chosen = sorted(items, key=lambda i: (i["country"], i["source"]))[0]
    hostile = (
        f"{chosen['title']} <img src=x onerror=\"document.title='pwned'\"> <script>x()</script>"
    )
    await store_new_version(
        fresh_crawled_database_url,
        source=chosen["source"],
        country=chosen["country"],
        title=hostile,
        level=chosen["level"] + 1,
    )
    recorder = Recorder()
    with start_api(fresh_crawled_database_url, log_dir=tmp_path) as base_url:
        page = await browser.new_page()
        recorder.attach(page)
        response = await page.goto(f"{base_url}/countries/{chosen['country']}")
        assert response is not None and response.status == 200
        added = await page.eval_on_selector_all(".diff ins", "els => els.map(e => e.textContent)")
        assert any("<script>x()</script>" in text for text in added), added
        assert await page.locator("main script, main img").count() == 0
        assert await page.title() != "pwned"
        assert "raised" in (await page.text_content("main") or "")
        await shoot(page, "country-change", full_page=True)

        # The changes page lists it first; filtering by kind keeps it.
        await page.goto(f"{base_url}/changes?kind=raised")
        first = page.locator("table.changes tbody tr").first
        assert chosen["country"] in (await first.text_content() or "")
        assert await page.locator("table.changes tbody tr.kind-raised").count() >= 1
        # A bad filter is a clear 400 page, not a traceback.
        response = await page.goto(f"{base_url}/changes?kind=bogus")
        assert response is not None and response.status == 400
        assert "unknown kind 'bogus'" in (await page.text_content("main") or "")
    for url in recorder.requests:
        parts = urlsplit(url)
        assert parts.scheme == "data" or parts.hostname == "127.0.0.1", url
    refused = [text for _, text in recorder.console if "Content Security Policy" in text]
    assert refused == []


async def stored_advisories(database_url: str) -> list[dict[str, Any]]:
    """The current advisories as the crawl stored them."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT source, country, level, withdrawn, title FROM advisories")
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def test_the_file_report_is_styled_under_its_own_policy(
    browser: BrowserContext, tmp_path: Path
) -> None:
    # The report's CSP allows its inlined stylesheet by hash only: a wrong hash would
    # leave it unstyled without any error in the file itself.
    from tests.unit.test_report import sample

    report = tmp_path / "report.html"
    report.write_text(render_html(sample()), encoding="utf-8")
    recorder = Recorder()
    page = await browser.new_page()
    recorder.attach(page)
    await page.goto(report.as_uri())
    size = await page.evaluate("getComputedStyle(document.body).fontSize")
    header = await page.evaluate("getComputedStyle(document.querySelector('th')).backgroundColor")
    assert size == "15px" and header != "rgba(0, 0, 0, 0)"
    assert await page.locator("svg.chart").count() == 5  # no backlog samples in the sample
    assert [text for _, text in recorder.console] == []
    assert [url for url in recorder.requests if not url.startswith("file:")] == []
    await shoot(page, "report", full_page=True)

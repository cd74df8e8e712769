"""The shared template set and chart approach, and the dashboard's pure page logic (no server)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import jinja2
import pytest
from markupsafe import Markup

from advisories.render import environment, http_url, render, stylesheet, stylesheet_hash
from advisories.render.charts import ChartError, bar_chart, chart_svg, level_timeline, line_chart
from advisories.render.charts import Line as ChartLine
from advisories.render.worldmap import CountryShape
from api.dashboard import STRICTEST, build_map, latest_change, word_diff
from api.views import country_view
from store.read import AdvisoryRow, DataVersion, Snapshot, VersionRow

EVIL = '<script>alert(1)</script> "quoted" & <img src=x onerror=alert(2)>'
T0 = datetime(2026, 10, 1, tzinfo=UTC)
PUBLISHERS = {"ca": "Global Affairs Canada", "uk": "UK FCDO", "us": "US Department of State"}


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def tags(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser


def row(source: str, country: str, level: int, **kw: object) -> AdvisoryRow:
    values: dict[str, object] = {
        "source": source,
        "country": country,
        "country_name": country,
        "level": level,
        "regional_level": None,
        "raw_level": f"Level {level}",
        "title": f"{country} advisory",
        "summary": "summary",
        "url": f"https://example.test/{country}",
        "source_updated_at": T0,
        "mapping_version": "1",
        "withdrawn": False,
        "version_id": 1,
        "content_hash": "0" * 64,
        "changed_at": T0,
        "last_checked_at": T0,
    }
    values.update(kw)
    return AdvisoryRow(**values)  # type: ignore[arg-type]


def snapshot(*rows: AdvisoryRow) -> Snapshot:
    return Snapshot(DataVersion(1, 1, len(rows), T0), tuple(rows))


# --------------------------------------------------------------------------- templates


def test_every_template_escapes_and_undefined_names_fail() -> None:
    env = environment()
    for name in ("a.html", "a.svg", "a.xml", "a.txt"):
        assert env.autoescape(name) if callable(env.autoescape) else env.autoescape
    page = env.from_string("<p>{{ text }}</p>").render(text=EVIL)
    assert "<script>" not in page and "&lt;script&gt;" in page
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()


def test_only_http_urls_are_links() -> None:
    assert http_url("https://example.test/a?b=1") == "https://example.test/a?b=1"
    assert http_url("javascript:alert(1)") is None
    assert http_url("//evil.test/x") is None
    assert http_url("data:text/html,hi") is None
    assert http_url(None) is None


def test_the_inlined_stylesheet_is_allowed_by_its_hash_only() -> None:
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(str(stylesheet()).encode()).digest()).decode()
    assert stylesheet_hash() == f"'sha256-{digest}'"
    assert "url(" not in stylesheet() and "@import" not in stylesheet()


def test_dashboard_error_page_escapes_the_message() -> None:
    page = render(
        "dashboard/error.html",
        standalone=False,
        active="",
        sources=PUBLISHERS,
        short=PUBLISHERS,
        heading="Unknown country",
        message=f"unknown country code {EVIL!r}",
    )
    parsed = tags(page)
    assert not [t for t, _ in parsed.tags if t in ("script", "img")]
    assert any(EVIL in chunk for chunk in parsed.text)
    # The page loads only the service's own stylesheets.
    links = [a["href"] for t, a in parsed.tags if t == "link" and a.get("rel") == "stylesheet"]
    assert links == ["/assets/base.css", "/static/dashboard.css"]


def test_country_page_escapes_scraped_text_everywhere() -> None:
    rows = [
        row("uk", "FR", 2, title=EVIL, summary=EVIL, raw_level=EVIL, url="javascript:alert(3)"),
        row("us", "FR", 3, title="France", url=f"https://example.test/fr?q={EVIL}"),
    ]
    view = country_view("FR", rows, publishers=PUBLISHERS)
    page = render(
        "dashboard/country.html",
        standalone=False,
        active="",
        sources=PUBLISHERS,
        short=PUBLISHERS,
        view=view,
        timeline=Markup("<svg id='chart-timeline'></svg>"),
        change=None,
        publishers=PUBLISHERS,
        versions=2,
    )
    parsed = tags(page)
    assert not [t for t, _ in parsed.tags if t in ("script", "img", "iframe")]
    assert not [a for _, a in parsed.tags if any(k.startswith("on") for k in a)]
    assert sum(EVIL in chunk for chunk in parsed.text) == 3  # title, summary, wording
    hrefs = [a.get("href") or "" for t, a in parsed.tags if t == "a"]
    assert not [h for h in hrefs if h.startswith("javascript:")]
    assert f"https://example.test/fr?q={EVIL}" in hrefs  # an http link, attribute-escaped
    cards = [a.get("data-source") for t, a in parsed.tags if t == "article"]
    assert cards == ["uk", "us"]
    missing = [a.get("data-source") for t, a in parsed.tags if a.get("class") == "missing"]
    assert missing == ["ca"]  # named as having no advisory
    assert "governments disagree" in page


# --------------------------------------------------------------------------- charts


def svg_texts(svg: str) -> list[str]:
    return [el.text or "" for el in ET.fromstring(svg).iter() if el.tag.endswith("text")]


def test_line_chart_is_an_svg_with_an_id_a_title_and_escaped_labels() -> None:
    times = [T0 + timedelta(hours=h) for h in range(4)]
    svg = line_chart(
        "chart-x", f"Title {EVIL}", times, [ChartLine(EVIL, "#000", [1, None, 3, 4])], y_title="n"
    )
    assert isinstance(svg, Markup)
    assert svg.startswith('<svg id="chart-x" class="chart"')
    root = ET.fromstring(str(svg))  # well-formed XML
    assert root.find("{http://www.w3.org/2000/svg}title") is None  # no namespace: inline HTML
    assert root.find("title") is not None and root.find("title").text == f"Title {EVIL}"  # type: ignore[union-attr]
    # The legend shows the label as text (shortened to fit, but never as markup).
    assert any(t.startswith("<script>alert(1)</script>") for t in svg_texts(str(svg)))
    assert "<script" not in svg and "<img" not in svg and "style=" not in svg


def test_empty_charts_say_so() -> None:
    times = [T0, T0 + timedelta(hours=1)]
    svg = line_chart("c", "t", times, [ChartLine("a", "#000", [None, None])], y_title="n")
    assert "no data in this period" in svg_texts(str(svg))
    bars = bar_chart("b", "t", [("a", [0.0])], [("x", "#000")], empty_text="nothing here")
    assert "nothing here" in svg_texts(str(bars))


def test_timeline_draws_one_bar_per_version() -> None:
    svg = level_timeline(
        "chart-timeline",
        "t",
        {"UK FCDO": [(T0, 2), (T0 + timedelta(days=3), 3)], EVIL: [(T0, None)]},
        until=T0 + timedelta(days=10),
    )
    root = ET.fromstring(str(svg))
    bars = [
        p
        for g in root.iter("g")
        if {"mark-rect", "role-mark"} <= set(g.get("class", "").split())
        for p in g.iter("path")
    ]
    assert len(bars) == 3
    assert any(t.startswith("<script>alert(1)</script>") for t in svg_texts(str(svg)))
    assert "<script" not in svg


def test_charts_are_cached_by_input() -> None:
    spec = {"data": {"values": [{"a": 1}]}, "mark": "point", "encoding": {"x": {"field": "a"}}}
    first = chart_svg(spec, chart_id="a", title="t")
    assert chart_svg(spec, chart_id="a", title="t") == first
    from advisories.render import charts

    hits = charts._convert.cache_info().hits
    chart_svg(spec, chart_id="b", title="other title")  # same spec: no new conversion
    assert charts._convert.cache_info().hits == hits + 1


@pytest.mark.parametrize(
    "evil",
    [
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g onclick="alert(1)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><path fill="url(https://x.test/a)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><path style="fill:red"/></svg>',
        "<svg><unclosed></svg>",
    ],
)
def test_renderer_output_outside_the_allow_list_is_refused(evil: str) -> None:
    from advisories.render import charts

    with pytest.raises(ChartError):
        charts._clean(evil)


# --------------------------------------------------------------------------- the map


SHAPES = (
    CountryShape("DE", "Germany", "M1,1l1,0 0,1z"),
    CountryShape("FR", "France", "M0,0l1,0 0,1z"),
    CountryShape("XK", "Kosovo", "M3,3l1,0 0,1z"),
)


def map_paths(mode: str, snap: Snapshot) -> tuple[ET.Element, dict[str, ET.Element]]:
    view = build_map(snap, mode, SHAPES, PUBLISHERS)
    svg = render(
        "dashboard/worldmap.svg",
        view=view,
        mode_title=f"mode {EVIL}",
        width=1000,
        height=444,
        outline="M0,0l1,0 0,1z",
    )
    root = ET.fromstring(svg)
    paths = {p.get("data-iso", ""): p for p in root.iter("path") if "country" in p.get("class", "")}
    return root, paths


def test_map_has_one_path_per_country_with_its_level_class_title_and_link() -> None:
    snap = snapshot(
        row("uk", "FR", 2, country_name=EVIL),
        row("us", "FR", 3),
        row("us", "DE", 1),
        row("us", "PT-20", 2),
    )
    root, paths = map_paths(STRICTEST, snap)
    assert sorted(paths) == ["DE", "FR", "XK"]
    assert paths["FR"].get("class") == "country level-3 disagree"
    assert paths["FR"].get("data-level") == "3"
    assert paths["DE"].get("class") == "country level-1"
    assert paths["XK"].get("class") == "country level-none"
    title = paths["FR"].find("title")
    assert title is not None and title.text is not None
    assert title.text.splitlines() == [
        "France",
        "Global Affairs Canada: no advisory",
        "UK FCDO: level 2",
        "US Department of State: level 3",
    ]
    links = {a.get("href") for a in root.iter("a")}
    assert links == {"/countries/FR", "/countries/DE"}  # no page for a country nobody covers
    hatches = [p for p in root.iter("path") if p.get("class") == "hatch"]
    assert [h.get("d") for h in hatches] == [SHAPES[1].d]
    # A stored place without a shape is listed, not lost.
    assert build_map(snap, STRICTEST, SHAPES, PUBLISHERS).unmapped == (
        ("PT-20", country_view("PT-20", [], publishers=PUBLISHERS).name, "2"),
    )


def test_map_per_source_shows_that_source_only() -> None:
    snap = snapshot(row("uk", "FR", 2), row("us", "FR", 3), row("us", "DE", 1, withdrawn=True))
    _, uk = map_paths("uk", snap)
    assert {iso: p.get("data-level") for iso, p in uk.items()} == {
        "DE": "none",
        "FR": "2",
        "XK": "none",
    }
    _, us = map_paths("us", snap)
    assert us["DE"].get("data-level") == "withdrawn" and us["FR"].get("data-level") == "3"


# --------------------------------------------------------------------------- before / after


def version(source: str, vid: int, title: str, summary: str, *, days: int) -> VersionRow:
    at = T0 + timedelta(days=days)
    return VersionRow(
        source=source,
        version_id=vid,
        change_id=vid,
        kind="raised" if vid > 1 else "new",
        level_before=None,
        level=2 + (vid > 1),
        regional_level=None,
        raw_level="",
        title=title,
        summary=summary,
        url="",
        source_updated_at=at,
        mapping_version="1",
        withdrawn=False,
        content_hash=str(vid),
        fetched_at=at,
        stored_at=at,
    )


def test_word_diff_marks_removed_and_added_words() -> None:
    parts = word_diff("avoid travel to the north", "avoid all travel to the north and east")
    assert [(p.kind, p.text) for p in parts] == [
        ("same", "avoid"),
        ("added", "all"),
        ("same", "travel to the north"),
        ("added", "and east"),
    ]


def test_latest_change_is_the_newest_replaced_version_and_renders_escaped() -> None:
    history = [
        version("uk", 1, "Old", "calm", days=0),
        version("uk", 2, "New", f"calm {EVIL}", days=5),
        version("us", 3, "Only one version", "x", days=9),
    ]
    change = latest_change(history)
    assert change is not None and change.source == "uk" and change.after.version_id == 2
    assert [(p.kind, p.text) for p in change.summary] == [("same", "calm"), ("added", EVIL)]
    assert latest_change(history[2:]) is None


def test_per_source_map_marks_disputes_only_where_it_shows_a_level() -> None:
    snap = snapshot(row("uk", "FR", 2), row("us", "FR", 3), row("us", "DE", 1))
    ca = build_map(snap, "ca", SHAPES, PUBLISHERS)
    assert not [c.iso for c in ca.countries if c.disagree]  # Canada covers neither
    uk = build_map(snap, "uk", SHAPES, PUBLISHERS)
    assert [c.iso for c in uk.countries if c.disagree] == ["FR"]


def test_map_page_lists_every_country_with_every_source_as_text() -> None:
    snap = snapshot(row("uk", "FR", 2), row("us", "FR", 3), row("us", "DE", 1))
    view = build_map(snap, STRICTEST, SHAPES, PUBLISHERS)
    page = render(
        "dashboard/map.html",
        standalone=False,
        active="map",
        sources=PUBLISHERS,
        short=PUBLISHERS,
        view=view,
        mode_title="Strictest",
        modes=[(STRICTEST, "Strictest")],
        width=1000,
        height=444,
        outline="M0,0l1,0 0,1z",
        checked_at=T0,
    )
    table = page[page.index('<details class="country-table">') :]
    rows = re.findall(r"<tr(?: class=\"disagree\")?><td class=\"country\">(.*?)</tr>", table, re.S)
    assert [re.search(r'href="/countries/(\w+)"', r).group(1) for r in rows] == ["FR", "DE"]  # type: ignore[union-attr]
    # France: strictest 3, then Canada none, UK 2, US 3.
    assert re.findall(r'badge l(\d)"', rows[0]) == ["3", "2", "3"]
    assert 'class="disagree"' in table

"""The report model and its renderings, from rows made here (pure: no server)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from advisories.queues import REPORTING, SCRAPING
from advisories.report import (
    CHART_IDS,
    AdvisoryRow,
    BacklogPoint,
    ChangeRow,
    JobRow,
    Report,
    ReportRows,
    RequestRow,
    build_report,
    choose_bucket,
    md_escape,
    percentile,
    render_html,
    render_json,
    render_markdown,
)
from advisories.sources import RateLimitPolicy

US, UK, CA = "us_state_dept", "uk_foreign_office", "canada_travel"
SOURCES = (CA, UK, US)
START = datetime(2026, 10, 7, 12, 30, tzinfo=UTC)
END = datetime(2026, 10, 7, 18, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
# No business hours (start == end): the budget is the plain hourly rate.
FLAT_100 = RateLimitPolicy(
    requests_per_hour=100,
    burst_limit=10,
    min_delay_seconds=1.0,
    timezone="UTC",
    respectful_start_hour=0,
    respectful_end_hour=0,
)
EVIL = "<script>alert(1)</script> \"quoted\" 'single' | pipe & amp `tick` *star* [link](x)"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, 7, hour, minute, tzinfo=UTC)


def job(source: str, status: str, when: datetime, ms: int | None, kind: str = "country") -> JobRow:
    return JobRow(source, kind, status, when, ms)


def sample_rows(**overrides: object) -> ReportRows:
    values: dict[str, object] = {
        "jobs": [
            job(US, "success", at(12, 35), 100),
            job(US, "success", at(12, 40), 200),
            job(US, "success", at(12, 45), 300, kind="index"),
            job(US, "failure", at(12, 50), 400),
            job(US, "retry", at(12, 55), 999),  # not finished: not in the rate
            job(US, "started", at(12, 56), None),
            job(US, "success", at(12, 31), 5000, kind="cycle"),
            job(US, "dead_letter", at(13, 5), 1000),
            job(US, "success", at(12, 29), 7),  # before the period
            job(US, "success", at(18, 0), 7),  # the end is excluded
            job(UK, "success", at(15, 0), 50),
        ],
        "requests": [
            RequestRow(US, at(12, 40), 200),
            RequestRow(US, at(12, 41), 304, not_modified=True),
            RequestRow(US, at(12, 42), None),
            RequestRow(US, at(13, 5), 503),
            RequestRow(US, at(16, 0), 200, count=10),
            RequestRow(US, at(11, 0), 200, count=99),  # before the period
        ],
        "advisories": [
            AdvisoryRow(US, "FR", "France", 2),
            AdvisoryRow(UK, "FR", "France", 2),
            AdvisoryRow(CA, "FR", "France", 2),
            AdvisoryRow(US, "MX", "Mexico", 2, regional_level=4),
            AdvisoryRow(UK, "MX", "Mexico", 3),
            AdvisoryRow(US, "HT", "Haiti", 4),
            AdvisoryRow(UK, "HT", "Haiti", 4),
            AdvisoryRow(CA, "HT", "Haiti", 2),
            AdvisoryRow(US, "UA", "Ukraine", 4),
            AdvisoryRow(US, "XK", "Kosovo", 3),
            AdvisoryRow(UK, "XK", "Kosovo", 1, withdrawn=True),
            AdvisoryRow(UK, "ZZ", EVIL, 4, title=EVIL, url="javascript:alert(2)"),
            AdvisoryRow(US, "ZZ", EVIL, 1, title=EVIL, url="https://example.test/zz"),
        ],
        "changes": [
            ChangeRow(US, "MX", "Mexico", "raised", 2, at(13, 0), level_before=1),
            ChangeRow(
                UK,
                "ZZ",
                EVIL,
                "lowered",
                4,
                at(17, 0),
                level_before=3,
                title=EVIL,
                url="javascript:alert(3)",
            ),
            ChangeRow(
                US,
                "ZZ",
                EVIL,
                "regional",
                1,
                at(16, 0),
                level_before=1,
                regional_before=None,
                regional_after=3,
                title=EVIL,
                url='https://example.test/zz?a=1&b="2"',
            ),
            ChangeRow(CA, "FR", "France", "new", 2, at(14, 0)),
            ChangeRow(CA, "HT", "Haiti", "text", 2, at(15, 0), level_before=2),
            ChangeRow(CA, "UA", "Ukraine", "new", 4, at(10, 0)),  # before the period
        ],
        "policies": {US: FLAT_100, UK: FLAT_100},
        "sources": SOURCES,
    }
    values.update(overrides)
    return ReportRows(**values)  # type: ignore[arg-type]


def sample(**overrides: object) -> Report:
    return build_report(sample_rows(**overrides), start=START, end=END, bucket=HOUR)


# --------------------------------------------------------------------------- the model


def test_bucket_sizes_keep_charts_readable() -> None:
    assert choose_bucket(timedelta(hours=6)) == timedelta(minutes=15)
    assert choose_bucket(timedelta(hours=24)) == timedelta(hours=1)
    assert choose_bucket(timedelta(days=7)) == timedelta(hours=12)
    assert choose_bucket(timedelta(days=30)) == timedelta(days=2)
    assert choose_bucket(timedelta(minutes=10)) == timedelta(minutes=1)


def test_percentile_interpolates_linearly() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0


def test_buckets_are_aligned_and_cover_the_period() -> None:
    report = sample()
    assert report.buckets == tuple(at(h) for h in range(12, 18))
    assert report.bucket_seconds == 3600
    assert report.hours == 5.5
    default = build_report(sample_rows(), start=START, end=END)
    assert default.bucket_seconds == 15 * 60
    assert default.buckets[0] == START and default.buckets[-1] == at(17, 45)


def test_success_rate_and_durations_per_source_and_bucket() -> None:
    us = {s.source: s for s in sample().sources}[US]
    assert us.jobs_by_status == {
        "dead_letter": 1,
        "failure": 1,
        "retry": 1,
        "started": 1,
        "success": 3,
    }
    assert (us.finished, us.succeeded, us.success_rate) == (5, 3, 60.0)
    # Finished fetch jobs only: 100, 200, 300, 400, 1000 ms.
    assert us.duration_p50_ms == 300.0
    assert us.duration_p95_ms == pytest.approx(880.0)
    assert us.duration_max_ms == 1000.0
    assert (us.cycles, us.cycle_p50_ms, us.cycle_p95_ms) == (1, 5000.0, 5000.0)

    noon, one, two = us.series[0], us.series[1], us.series[2]
    assert (noon.finished, noon.succeeded, noon.success_rate) == (4, 3, 75.0)
    assert noon.duration_p50_ms == 250.0
    assert noon.duration_p95_ms == pytest.approx(385.0)
    assert (one.finished, one.success_rate, one.duration_p50_ms) == (1, 0.0, 1000.0)
    assert (two.finished, two.success_rate, two.duration_p50_ms) == (0, None, None)


def test_requests_against_the_budget() -> None:
    report = sample()
    by_source = {s.source: s for s in report.sources}
    us = by_source[US]
    assert [b.requests for b in us.series] == [3, 1, 0, 0, 10, 0]
    # The first bucket has half an hour inside the period.
    assert [b.budget for b in us.series] == [50, 100, 100, 100, 100, 100]
    assert (us.requests, us.not_modified, us.errors) == (14, 1, 2)
    assert us.budget == 550
    assert us.utilisation == pytest.approx(round(100 * 14 / 550, 1))
    # No policy known for Canada: no budget, no utilisation.
    ca = by_source[CA]
    assert (ca.budget, ca.utilisation) == (None, None)
    assert all(b.budget is None for b in ca.series)


def test_budget_follows_business_hours_in_the_sources_time_zone() -> None:
    # 09:00–17:00 in London at half the rate; 2026-10-07 is BST (UTC+1).
    london = RateLimitPolicy(
        requests_per_hour=120, burst_limit=10, min_delay_seconds=1.0, timezone="Europe/London"
    )
    report = build_report(
        ReportRows(policies={UK: london}, sources=(UK,)),
        start=at(6),
        end=at(10),
        bucket=HOUR,
    )
    assert [b.budget for b in report.sources[0].series] == [120, 120, 60, 60]


def test_levels_matrix_flags_disagreements() -> None:
    levels = sample().levels
    rows = {r.country: r for r in levels.rows}
    assert list(rows) == ["FR", "HT", "MX", "UA", "XK", "ZZ"]
    assert (rows["FR"].spread, rows["FR"].disagreement) == (0, False)
    assert (rows["MX"].spread, rows["MX"].disagreement) == (1, True)
    assert (rows["HT"].spread, rows["HT"].disagreement) == (2, True)
    assert rows["UA"].disagreement is False and rows["UA"].cells[UK] is None
    # A withdrawn advisory is not a level to disagree with.
    assert rows["XK"].disagreement is False
    xk_uk = rows["XK"].cells[UK]
    assert xk_uk is not None and xk_uk.withdrawn
    assert [r.country for r in levels.disagreements] == ["ZZ", "HT", "MX"]
    assert levels.distribution[US] == {"1": 1, "2": 2, "3": 1, "4": 2, "withdrawn": 0}
    assert levels.distribution[UK] == {"1": 0, "2": 1, "3": 1, "4": 2, "withdrawn": 1}
    assert levels.distribution[CA] == {"1": 0, "2": 2, "3": 0, "4": 0, "withdrawn": 0}


def test_changes_in_the_period_newest_first_notable_apart() -> None:
    changes = sample().changes
    assert changes.total == 5
    assert changes.by_source == {
        CA: {"new": 1, "text": 1},
        UK: {"lowered": 1},
        US: {"raised": 1, "regional": 1},
    }
    assert [(c.source, c.kind) for c in changes.notable] == [
        (UK, "lowered"),
        (US, "regional"),
        (US, "raised"),
    ]
    assert [c.kind for c in changes.other] == ["text", "new"]
    assert changes.notable_total == 3
    limited = build_report(sample_rows(), start=START, end=END, max_changes=1).changes
    assert len(limited.notable) == 1 and limited.notable_total == 3


def test_counts() -> None:
    assert sample().counts == {
        "fetch_jobs": 8,
        "fetch_jobs_failed": 2,
        "cycles": 1,
        "requests": 14,
        "advisories": 13,
        "countries": 6,
        "disagreements": 3,
        "changes": 5,
        "notable_changes": 3,
    }


def test_bad_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="not after"):
        build_report(ReportRows(), start=END, end=START)
    with pytest.raises(ValueError, match="naive"):
        build_report(ReportRows(), start=datetime(2026, 1, 1), end=END)


# --------------------------------------------------------------------------- HTML

_VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "wbr"}


class _Checker(HTMLParser):
    """Records tags, attributes and text; notes every mismatched end tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.svg_ids: list[str] = []
        self._in_svg_title = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs.append((tag, dict(attrs)))
        if tag == "svg":
            self.svg_ids.append(dict(attrs).get("id") or "")
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    return checker


def test_html_is_well_formed_with_one_svg_per_chart() -> None:
    page = render_html(sample())
    assert page.startswith("<!DOCTYPE html>")
    checker = parse(page)
    assert checker.errors == []
    assert checker.stack == []
    expected = [c for c in CHART_IDS if c != "chart-backlog"]
    assert sorted(checker.svg_ids) == sorted(expected)
    assert checker.tags["svg"] == len(expected)
    # Every chart has an accessible name.
    for chart in expected:
        svg = page[page.index(f'<svg id="{chart}"') :]
        assert svg.index("<title>") < svg.index("</svg>")


def test_backlog_chart_appears_when_samples_are_given() -> None:
    one = [BacklogPoint(SCRAPING, at(17, 30), 12, 2), BacklogPoint(REPORTING, at(17, 30), 0)]
    report = sample(backlog=one)
    assert [(q.queue, q.latest) for q in report.backlog] == [(REPORTING, 0), (SCRAPING, 12)]
    checker = parse(render_html(report))
    assert checker.errors == []
    assert sorted(checker.svg_ids) == sorted(CHART_IDS)
    # Samples over time: a line chart (polyline) instead of bars.
    many = [BacklogPoint(SCRAPING, at(h), n) for h, n in ((13, 5), (14, 50), (15, 7))]
    page = render_html(sample(backlog=many))
    chart = _chart(page, "chart-backlog")
    assert _drawn_lines(chart) == 1 and not _marks(chart, "rect")
    assert {q.maximum for q in sample(backlog=many).backlog} == {50}


def test_html_escapes_scraped_text_and_links_only_http() -> None:
    page = render_html(sample())
    checker = parse(page)
    assert checker.errors == []
    assert checker.tags["script"] == 0
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The text reads back exactly as scraped.
    assert any(EVIL in chunk for chunk in checker.text)
    hrefs = [a.get("href") for tag, a in checker.attrs if tag == "a"]
    assert hrefs == ['https://example.test/zz?a=1&b="2"']
    assert "javascript:" not in page
    titles = [a["title"] for tag, a in checker.attrs if tag == "span" and "title" in a]
    assert EVIL in titles


def test_html_is_self_contained() -> None:
    page = render_html(sample())
    checker = parse(page)
    loading = {"script", "link", "img", "iframe", "object", "embed", "image", "use"}
    assert not loading & set(checker.tags)
    assert not [a for _, a in checker.attrs if "src" in a]
    assert "url(" not in page and "@import" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # The only external addresses are links to the sources' own pages.
    found = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert found == {"https://example.test/zz?a=1&amp;b=&#34;2&#34;"}


def test_empty_period_renders_charts_that_say_so() -> None:
    report = build_report(ReportRows(sources=SOURCES), start=START, end=END)
    page = render_html(report)
    checker = parse(page)
    assert checker.errors == []
    # Success rate and duration have no point; zero requests are still a line.
    assert page.count("no data in this period") == 2
    assert report.counts["changes"] == 0


# --------------------------------------------------------------------------- Markdown


def test_md_escape_makes_text_literal() -> None:
    assert md_escape("a|b*c_<d>\n e") == r"a\|b\*c\_\<d\> e"
    assert md_escape("[x](javascript:y) `z` & ~w~ \\") == r"\[x\](javascript:y) \`z\` \& \~w\~ \\"


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line.replace("\\\\", "")))


def test_markdown_tables_hold_scraped_text_safely() -> None:
    text = render_markdown(sample())
    assert "<script>" not in text
    assert r"\<script\>alert(1)\</script\>" in text
    # Every table row has as many cells as its header: pipes in titles are escaped.
    table: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            widths = {_unescaped_pipes(row) for row in table}
            assert len(widths) == 1, table
            table = []
    for heading in (
        "## Sources",
        "## Over time",
        "## Queue backlog",
        "## Levels by country across sources",
        "### Disagreements (3)",
        "## Recent changes",
        "### Notable: raised, lowered, regional, withdrawn (3)",
    ):
        assert heading in text.splitlines()
    assert "| France | 2 | 2 | 2 | 0 |" in text
    assert "| 2026-10-07 12:00 UTC | 4 | 75.0 % | 0.25 s | 0.39 s | 3 | 50 |" in text


# --------------------------------------------------------------------------- JSON


def test_json_has_the_same_content() -> None:
    report = sample()
    data = json.loads(render_json(report))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["counts"] == report.counts
    assert data["period_start"] == "2026-10-07T12:30:00+00:00"
    assert data["hours"] == 5.5
    assert data["levels"]["disagreements"] == ["ZZ", "HT", "MX"]
    us = next(s for s in data["sources"] if s["source"] == US)
    assert us["success_rate"] == 60.0
    assert [b["requests"] for b in us["series"]] == [3, 1, 0, 0, 10, 0]
    assert data["changes"]["notable"][0]["title"] == EVIL
    assert {row["country"] for row in data["levels"]["rows"]} == {
        "FR",
        "HT",
        "MX",
        "UA",
        "XK",
        "ZZ",
    }


def _chart(page: str, chart_id: str) -> str:
    chart = page[page.index(f'<svg id="{chart_id}"') :]
    return chart[: chart.index("</svg>") + len("</svg>")]


def _marks(svg: str, mark: str) -> list[str]:
    """Path data of every data mark of type ``mark`` in a chart (``line``,
    ``symbol`` for points, ``rect`` for bars); legends and axes not counted."""
    root = ET.fromstring(svg)
    return [
        path.get("d", "")
        for group in root.iter("g")
        if {f"mark-{mark}", "role-mark"} <= set(group.get("class", "").split())
        for path in group.iter("path")
    ]


def _drawn_lines(svg: str) -> int:
    """Line segments that join at least two points (a lone point is ``Mx,yZ``)."""
    return sum("L" in sub for d in _marks(svg, "line") for sub in d.split("M"))


def test_sampled_backlog_is_joined_across_buckets_but_job_gaps_stay_gaps() -> None:
    # Health runs sample every 30 min; the report's buckets are 15 min long.
    samples = [BacklogPoint(SCRAPING, at(13), 5), BacklogPoint(SCRAPING, at(13, 30), 9)]
    report = build_report(sample_rows(backlog=samples), start=START, end=END)
    page = render_html(report)
    assert _drawn_lines(_chart(page, "chart-backlog")) == 1
    # Jobs at 12:35 and 14:05 with nothing in between: two points, no line
    # across the empty buckets.
    jobs = [job(US, "success", at(12, 35), 100), job(US, "failure", at(14, 5), 100)]
    page = render_html(build_report(sample_rows(jobs=jobs), start=START, end=END))
    success = _chart(page, "chart-success-rate")
    assert _drawn_lines(success) == 0 and len(_marks(success, "symbol")) == 2

"""Renderings of the report: HTML (one self-contained page), Markdown and JSON.

Everything that came from a source is untrusted text: the HTML is rendered by
the shared, autoescaping template set (``advisories.render``); Markdown output
backslash-escapes every character Markdown (or raw HTML inside Markdown) could
act on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Final

from advisories.changes import ChangeKind
from advisories.render import render, stylesheet, stylesheet_hash
from advisories.report.charts import report_charts
from advisories.report.formatting import cell_text, level_change, num, pct, secs, span, when
from advisories.report.model import LevelMatrix, MatrixRow, Report
from advisories.report.rows import ChangeRow

__all__ = ["md_escape", "render_html", "render_json", "render_markdown"]

# --------------------------------------------------------------------------- HTML

_COUNT_LABELS: Final = {
    "fetch_jobs": "fetch jobs",
    "fetch_jobs_failed": "failed",
    "cycles": "cycles",
    "requests": "requests",
    "advisories": "advisories",
    "countries": "countries",
    "disagreements": "disagreements",
    "changes": "changes",
    "notable_changes": "notable changes",
}

#: Columns of the per-source table (HTML and Markdown).
_SOURCE_HEADERS: Final = (
    "source",
    "fetch jobs",
    "success rate",
    "failed",
    "p50",
    "p95",
    "max",
    "cycles",
    "cycle p50",
    "cycle p95",
    "requests",
    "304",
    "errors",
    "budget",
    "utilisation",
    "advisories",
)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no script).

    Rendered by the shared template set (``report.html`` on the common layout)
    with the shared charts. CPU-bound (the charts take ~0.1 s each the first
    time): call it in a thread from async code.
    """
    return render(
        "report.html",
        standalone=True,
        stylesheet=stylesheet(),
        style_hash=stylesheet_hash(),
        report=report,
        counts=[(_COUNT_LABELS[k], v) for k, v in report.counts.items()],
        source_headers=_SOURCE_HEADERS,
        charts=report_charts(report),
        cell_text=cell_text,
        level_change=level_change,
    )


# --------------------------------------------------------------------------- Markdown

# Characters Markdown (CommonMark, GitHub tables) or HTML inside Markdown could
# act on anywhere in a line. Line-start markers (#, -, +, 1.) cannot occur: every
# scraped value is written inside a table cell or after fixed text.
_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>|~&!])")


def md_escape(value: object) -> str:
    """``value`` as literal Markdown text: one line, special characters backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Cells are already escaped (or our own text)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    """The report as Markdown: the same numbers, as tables instead of charts."""
    lines = [
        "# Travel-advisory report",
        "",
        f"{when(report.period_start)} to {when(report.period_end)} "
        f"({span(report.hours * 3600)}), in buckets of {span(report.bucket_seconds)}; "
        f"generated {when(report.generated_at)}.",
        "",
    ]
    counts = report.counts
    lines += _md_table([_COUNT_LABELS[k] for k in counts], [[num(v) for v in counts.values()]])
    lines += ["## Sources", ""]
    lines += _md_table(
        _SOURCE_HEADERS,
        [
            [
                md_escape(s.source),
                num(sum(s.jobs_by_status.values())),
                pct(s.success_rate),
                num(s.finished - s.succeeded),
                secs(s.duration_p50_ms),
                secs(s.duration_p95_ms),
                secs(s.duration_max_ms),
                num(s.cycles),
                secs(s.cycle_p50_ms),
                secs(s.cycle_p95_ms),
                num(s.requests),
                num(s.not_modified),
                num(s.errors),
                num(s.budget) if s.budget is not None else "off",
                pct(s.utilisation),
                num(s.advisories),
            ]
            for s in report.sources
        ],
    )
    lines += ["## Over time", ""]
    for s in report.sources:
        lines += [f"### {md_escape(s.source)}", ""]
        lines += _md_table(
            ["bucket", "fetch jobs ended", "success rate", "p50", "p95", "requests", "budget"],
            [
                [
                    when(b.start),
                    num(b.finished),
                    pct(b.success_rate),
                    secs(b.duration_p50_ms),
                    secs(b.duration_p95_ms),
                    num(b.requests),
                    num(b.budget),
                ]
                for b in s.series
            ],
        )
    lines += ["## Queue backlog", ""]
    if report.backlog:
        lines += _md_table(
            ["queue", "latest", "max", "samples", "pollers"],
            [
                [
                    md_escape(q.queue),
                    num(q.latest),
                    num(q.maximum),
                    num(len(q.points)),
                    num(q.points[-1].pollers),
                ]
                for q in report.backlog
            ],
        )
    else:
        lines += ["No backlog samples were available for this report.", ""]
    levels = report.levels
    lines += ["## Levels by country across sources", ""]
    keys = ("1", "2", "3", "4", "withdrawn")
    lines += _md_table(
        ["source", "level 1", "level 2", "level 3", "level 4", "withdrawn"],
        [
            [md_escape(source)] + [num(levels.distribution[source][k]) for k in keys]
            for source in levels.sources
        ],
    )
    disagreements = levels.disagreements
    lines += [f"### Disagreements ({len(disagreements)})", ""]
    lines += _md_matrix(levels, disagreements) if disagreements else ["None.", ""]
    lines += [f"### All countries ({len(levels.rows)})", ""]
    lines += _md_matrix(levels, levels.rows)
    changes = report.changes
    lines += ["## Recent changes", ""]
    kinds = [k.value for k in ChangeKind]
    lines += _md_table(
        ["source", *kinds],
        [
            [md_escape(source)] + [num(by_kind.get(k, 0)) for k in kinds]
            for source, by_kind in changes.by_source.items()
        ],
    )
    lines += [f"### Notable: raised, lowered, regional, withdrawn ({changes.notable_total})", ""]
    lines += _md_changes(changes.notable, changes.notable_total)
    other_total = changes.total - changes.notable_total
    lines += [f"### New countries and text-only edits ({other_total})", ""]
    lines += _md_changes(changes.other, other_total)
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_matrix(levels: LevelMatrix, rows: Sequence[MatrixRow]) -> list[str]:
    return _md_table(
        ["country", "name", *(md_escape(s) for s in levels.sources), "spread"],
        [
            [md_escape(r.country), md_escape(r.country_name)]
            + [md_escape(cell_text(r.cells[s])) for s in levels.sources]
            + [str(r.spread) + (" (disagree)" if r.disagreement else "")]
            for r in rows
        ],
    )


def _md_changes(changes: Sequence[ChangeRow], total: int) -> list[str]:
    if not changes:
        return ["None in this period.", ""]
    lines = _md_table(
        ["detected", "source", "country", "name", "kind", "level", "title"],
        [
            [
                when(c.detected_at),
                md_escape(c.source),
                md_escape(c.country),
                md_escape(c.country_name),
                md_escape(c.kind),
                level_change(c),
                md_escape(c.title),
            ]
            for c in changes
        ],
    )
    if total > len(changes):
        lines += [f"{total - len(changes)} older ones not shown.", ""]
    return lines


# --------------------------------------------------------------------------- JSON


def render_json(report: Report) -> str:
    """The report as JSON text (``Report.to_dict``)."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"

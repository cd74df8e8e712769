"""The report's charts: the model drawn with the shared charts (``advisories.render.charts``).

Vega-Lite rendered to SVG on the server, inlined in the HTML page; one chart per
`CHART_IDS` id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from markupsafe import Markup

from advisories.changes import ChangeKind
from advisories.render.charts import (
    KIND_COLOURS,
    LEVEL_COLOURS,
    PALETTE,
    Line,
    bar_chart,
    line_chart,
)
from advisories.report.build import as_utc
from advisories.report.formatting import when
from advisories.report.model import BucketStats, Report
from advisories.report.rows import BacklogPoint

__all__ = ["CHART_IDS", "Chart", "report_charts"]

#: The charts of an HTML report, by the ``id`` of their ``<svg>``; the backlog
#: chart only appears when backlog samples were given.
CHART_IDS: Final = (
    "chart-success-rate",
    "chart-duration",
    "chart-requests",
    "chart-backlog",
    "chart-levels",
    "chart-changes",
)

_LEVEL_KEYS: Final = ("1", "2", "3", "4", "withdrawn")


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart as the template shows it: caption and inline SVG."""

    heading: str
    svg: Markup


def _colours(report: Report) -> dict[str, str]:
    return {s.source: PALETTE[i % len(PALETTE)] for i, s in enumerate(report.sources)}


#: A line's label suffix and its value in one bucket.
_Measure = tuple[str, Callable[[BucketStats], float | None]]


def _solid_and_dashed(
    report: Report, colour: Mapping[str, str], solid: _Measure, dashed: _Measure
) -> list[Line]:
    """Two lines per source in the source's colour: ``solid`` and ``dashed``."""
    return [
        Line(
            f"{s.source} {label}",
            colour[s.source],
            [value(b) for b in s.series],
            dashed=is_dashed,
        )
        for s in report.sources
        for (label, value), is_dashed in ((solid, False), (dashed, True))
    ]


def report_charts(report: Report) -> dict[str, Chart]:
    """Every chart of the report, by ``CHART_IDS`` id."""
    times = report.buckets
    colour = _colours(report)
    charts: dict[str, Chart] = {}

    def line(chart_id: str, heading: str, lines: Sequence[Line], **kw: Any) -> None:
        charts[chart_id] = Chart(heading, line_chart(chart_id, heading, times, lines, **kw))

    line(
        "chart-success-rate",
        "Success rate of fetch jobs per source",
        [
            Line(s.source, colour[s.source], [b.success_rate for b in s.series])
            for s in report.sources
        ],
        y_title="success %",
        y_max=100.0,
    )
    line(
        "chart-duration",
        "Fetch-job duration per source: p50 (solid) and p95 (dashed)",
        _solid_and_dashed(
            report,
            colour,
            ("p50", lambda b: _ms_to_s(b.duration_p50_ms)),
            ("p95", lambda b: _ms_to_s(b.duration_p95_ms)),
        ),
        y_title="seconds",
    )
    line(
        "chart-requests",
        "Requests per bucket (solid) against the rate-limit budget (dashed)",
        _solid_and_dashed(
            report,
            colour,
            ("requests", lambda b: float(b.requests)),
            ("budget", lambda b: b.budget),
        ),
        y_title="requests",
    )
    if report.backlog:
        heading = "Task-queue backlog"
        if any(len(q.points) > 1 for q in report.backlog):
            # Samples over time: one line per queue, on the report's buckets,
            # joined across buckets without a sample (a gauge, not a count).
            line(
                "chart-backlog",
                heading,
                [
                    Line(
                        q.queue,
                        PALETTE[i % len(PALETTE)],
                        _bucket_max(report, q.points),
                        join_gaps=True,
                    )
                    for i, q in enumerate(report.backlog)
                ],
                y_title="tasks waiting",
            )
        else:
            charts["chart-backlog"] = Chart(
                f"{heading} at {when(report.backlog[0].points[-1].at)}",
                bar_chart(
                    "chart-backlog",
                    heading,
                    [(q.queue, [float(q.latest)]) for q in report.backlog],
                    [("tasks waiting", "#4a90c2")],
                ),
            )
    heading = (
        "Current advisories per source by level, as shares of the source's countries"
        " (1 normal precautions … 4 do not travel)"
    )
    charts["chart-levels"] = Chart(
        heading,
        bar_chart(
            "chart-levels",
            heading,
            [
                (source, [float(report.levels.distribution[source][k]) for k in _LEVEL_KEYS])
                for source in report.levels.sources
            ],
            [(f"level {k}" if k != "withdrawn" else k, LEVEL_COLOURS[k]) for k in _LEVEL_KEYS],
            shares=True,
        ),
    )
    heading = "Changes detected in the period, by kind"
    kinds = [k.value for k in ChangeKind]
    charts["chart-changes"] = Chart(
        heading,
        bar_chart(
            "chart-changes",
            heading,
            [
                (
                    s.source,
                    [float(report.changes.by_source.get(s.source, {}).get(k, 0)) for k in kinds],
                )
                for s in report.sources
            ],
            [(k, KIND_COLOURS[k]) for k in kinds],
        ),
    )
    return charts


def _ms_to_s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _bucket_max(report: Report, points: Sequence[BacklogPoint]) -> list[float | None]:
    """The largest sample of each bucket (None where none was taken).

    A sample taken at or after the period's end (the one taken while the report
    was being made) counts in the last bucket.
    """
    size = timedelta(seconds=report.bucket_seconds)
    out: list[float | None] = [None] * len(report.buckets)
    for point in points:
        at = as_utc(point.at)
        if at < report.period_start:
            continue
        i = min(int((at - report.buckets[0]) // size), len(out) - 1)
        current = out[i]
        out[i] = float(point.backlog) if current is None else max(current, point.backlog)
    return out

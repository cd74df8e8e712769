"""The operations report: a model built from plain rows, rendered as HTML, Markdown and JSON.

Pure: no clock, no database, no network. The caller (``activities.reports``)
queries the rows and passes the period; this package turns them into numbers
(per source and time bucket: success rate, duration percentiles, requests
against the rate-limit budget; queue backlog when given; the level of every
country by every source, with disagreements flagged; recent changes) and
renders them.

Everything that came from a source (titles, country names, URLs) is untrusted
text: the HTML is rendered by the shared, autoescaping template set
(``advisories.render``) and only links ``http``/``https`` URLs; Markdown output
backslash-escapes every character Markdown (or raw HTML inside Markdown) could
act on. The HTML page is self-contained: the shared stylesheet inlined, the
shared charts (Vega-Lite rendered to SVG on the server) inline, no script and no
external resource (a Content-Security-Policy forbids both, should escaping ever
be bypassed).

Its modules: `rows` (the input rows), `model` (the report's numbers),
`build` (rows to model), `formatting` (numbers and levels as text), `charts`
(the model as charts) and `render` (HTML, Markdown, JSON). This module is the
public one: import from ``advisories.report``.
"""

from __future__ import annotations

from advisories.report.build import (
    FETCH_KINDS,
    MAX_BUCKETS,
    build_report,
    choose_bucket,
    percentile,
)
from advisories.report.charts import CHART_IDS
from advisories.report.model import (
    BucketStats,
    ChangeSummary,
    LevelCell,
    LevelMatrix,
    MatrixRow,
    QueueBacklog,
    Report,
    SourceStats,
)
from advisories.report.render import md_escape, render_html, render_json, render_markdown
from advisories.report.rows import (
    AdvisoryRow,
    BacklogPoint,
    ChangeRow,
    JobRow,
    ReportRows,
    RequestRow,
)

__all__ = [
    "CHART_IDS",
    "FETCH_KINDS",
    "MAX_BUCKETS",
    "AdvisoryRow",
    "BacklogPoint",
    "BucketStats",
    "ChangeRow",
    "ChangeSummary",
    "JobRow",
    "LevelCell",
    "LevelMatrix",
    "MatrixRow",
    "QueueBacklog",
    "Report",
    "ReportRows",
    "RequestRow",
    "SourceStats",
    "build_report",
    "choose_bucket",
    "md_escape",
    "percentile",
    "render_html",
    "render_json",
    "render_markdown",
]

"""Charts: Vega-Lite specifications as plain dicts, rendered server-side to SVG.

One chart approach for every page: a spec is built here from plain numbers,
``vl_convert.vegalite_to_svg`` draws it (no browser, no script on the page, no
network: the data is inline in the spec), and the SVG is checked and tagged so it
can be placed inline in HTML. Conversions are cached by their input, since the
same chart is asked for again and again (a country page, a report re-rendered).

Vega escapes the text it draws (labels, legends, ``aria-label``); ``_clean`` also
parses the result and refuses any element or attribute outside a small
allow-list, so a chart can never carry a script, a link or an external resource.
The SVG uses presentation attributes only (no ``style=``), which a strict
Content-Security-Policy without ``'unsafe-inline'`` allows.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from markupsafe import Markup, escape

__all__ = [
    "KIND_COLOURS",
    "LEVEL_COLOURS",
    "PALETTE",
    "VEGA_LITE_VERSION",
    "ChartError",
    "Line",
    "bar_chart",
    "chart_svg",
    "level_timeline",
    "line_chart",
]

#: Pinned, so the same input draws the same picture after an upgrade of the wheel.
VEGA_LITE_VERSION: Final = "6.4"

#: Okabe–Ito colours: told apart by colour-blind readers too.
PALETTE: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

#: The level scale used everywhere (map, badges, charts): 1 green … 4 dark red.
LEVEL_COLOURS: Final = {
    "1": "#2e8540",
    "2": "#f2c230",
    "3": "#e46c1b",
    "4": "#9d1c1c",
    "withdrawn": "#8a9099",
    "none": "#d3d7dc",
}

KIND_COLOURS: Final = {
    "new": "#74a9cf",
    "raised": "#c0392b",
    "lowered": "#2e8540",
    "regional": "#e46c1b",
    "text": "#b8bec6",
    "withdrawn": "#7b61c4",
}

_WIDTH: Final = 860
# The renderer lays text out with the first of these it has (DejaVu Sans here);
# a wide face first, so a browser drawing with a narrower one never overlaps.
_FONT: Final = "DejaVu Sans, Verdana, sans-serif"
_CONFIG: Final[dict[str, Any]] = {
    "font": _FONT,
    "background": None,
    "view": {"stroke": None},
    "axis": {
        "labelFontSize": 11,
        "titleFontSize": 12,
        "titleFontWeight": "normal",
        "labelColor": "#343a40",
        "titleColor": "#343a40",
        "gridColor": "#e9ecef",
        "domainColor": "#868e96",
        "tickColor": "#868e96",
    },
    "legend": {
        "orient": "bottom",
        "direction": "horizontal",
        "labelFontSize": 11,
        "titleFontSize": 11,
        "columns": 4,
        "labelLimit": 240,
    },
}

# What a Vega SVG is made of (tags without namespace). Anything else is refused.
_TAGS: Final = frozenset({"svg", "g", "path", "rect", "line", "text", "title", "tspan", "circle"})
_FORBIDDEN_ATTR: Final = re.compile(r"^(on|href$|xlink:href$|style$|src$)|\}href$", re.I)
_SVG_NS: Final = "{http://www.w3.org/2000/svg}"
_NO_DATA: Final = "no data in this period"


class ChartError(ValueError):
    """The renderer produced something that is not a plain, safe SVG."""


@lru_cache(maxsize=512)
def _convert(spec_json: str) -> str:
    # Imported on first use: the chart engine costs ~8.5 MB of RSS, and the worker imports this
    # module (for the scheduled report) long before it draws a chart, if ever.
    import vl_convert

    return str(vl_convert.vegalite_to_svg(spec_json, vl_version=VEGA_LITE_VERSION))


def _clean(svg: str) -> str:
    """Check ``svg`` against the allow-list.

    Raises:
        ChartError: for an unexpected element or attribute, or malformed XML.
    """
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as exc:
        raise ChartError(f"chart renderer returned malformed SVG: {exc}") from None
    for element in root.iter():
        tag = element.tag.removeprefix(_SVG_NS)
        if tag not in _TAGS:
            raise ChartError(f"chart renderer returned a <{tag}> element")
        for name, value in element.attrib.items():
            if _FORBIDDEN_ATTR.search(name) or "url(" in value:
                raise ChartError(f"chart renderer returned attribute {name}={value!r}")
    return svg


def chart_svg(spec: Mapping[str, Any], *, chart_id: str, title: str) -> Markup:
    """Render a Vega-Lite ``spec`` to inline SVG markup.

    Args:
        spec: A Vega-Lite spec with its data inline (``data.values``).
        chart_id: ``id`` of the ``<svg>`` element.
        title: Accessible name: the ``<title>`` child and ``aria-label``.

    Returns:
        The SVG, safe to place in an autoescaped template.

    Raises:
        ChartError: if the renderer's output is not a plain SVG.
    """
    full = {"config": _CONFIG, **spec}
    svg = _clean(_convert(json.dumps(full, sort_keys=True, default=_json_default)))
    # A new root tag: id first, class for the page's CSS, accessible name, and
    # the renderer's size (the viewBox lets CSS scale it).
    head, rest = svg.split(">", 1)
    size = dict(re.findall(r'\b(width|height|viewBox)="([^"]*)"', head))
    root = (
        f'<svg id="{escape(chart_id)}" class="chart" role="img" aria-label="{escape(title)}"'
        f' width="{size.get("width", "")}" height="{size.get("height", "")}"'
        f' viewBox="{size.get("viewBox", "")}">'
    )
    return Markup(f"{root}<title>{escape(title)}</title>{rest}")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"cannot put {type(value).__name__} into a chart")


def _no_data_layer(text: str, *, x: float, y: float) -> dict[str, Any]:
    """A note at ``(x, y)``, for a chart with nothing to draw."""
    return {
        "data": {"values": [{}]},
        "mark": {"type": "text", "fontSize": 13, "color": "#868e96"},
        "encoding": {"text": {"value": text}, "x": {"value": x}, "y": {"value": y}},
    }


def _time_axis(times: Sequence[datetime]) -> dict[str, Any]:
    span = (max(times) - min(times)).total_seconds() if times else 0
    fmt = "%H:%M" if span <= 86400 else "%m-%d %H:%M" if span <= 7 * 86400 else "%Y-%m-%d"
    # A UTC time unit makes the scale and the label format UTC, whatever the
    # renderer's local zone.
    return {
        "field": "at",
        "type": "temporal",
        "timeUnit": "utcyearmonthdatehoursminutes",
        "title": None,
        "axis": {"format": fmt, "labelOverlap": True, "tickCount": 8},
    }


class Line:
    """One line of a line chart.

    Attributes:
        label: Legend text (may be untrusted: Vega escapes it).
        colour: Stroke colour.
        values: One value per x position; None is a gap.
        dashed: Drawn dashed (the second measure of a pair).
        join_gaps: A gauge sampled now and then: the line runs across missing
            values instead of breaking there.
    """

    __slots__ = ("colour", "dashed", "join_gaps", "label", "values")

    def __init__(
        self,
        label: str,
        colour: str,
        values: Sequence[float | None],
        *,
        dashed: bool = False,
        join_gaps: bool = False,
    ) -> None:
        self.label = label
        self.colour = colour
        self.values = tuple(values)
        self.dashed = dashed
        self.join_gaps = join_gaps


def line_chart(
    chart_id: str,
    title: str,
    times: Sequence[datetime],
    lines: Sequence[Line],
    *,
    y_title: str,
    y_max: float | None = None,
    value_format: str = ",.4~g",
    unit: str = "",
) -> Markup:
    """Lines over time: one point per time and line, a gap where a value is None.

    Args:
        chart_id: ``id`` of the SVG.
        title: Accessible name.
        times: The x positions (bucket starts, UTC).
        lines: The lines, each with one value per time.
        y_title: Axis title.
        y_max: Fixed top of the y axis (e.g. 100 for percentages).
        value_format: d3 format of the values in labels.
        unit: Text after a value in the points' labels.
    """
    rows = [
        {
            "at": at,
            "value": value,
            "line": line.label,
            "dash": "dashed" if line.dashed else "solid",
        }
        for line in lines
        for at, value in zip(times, line.values, strict=True)
        if value is not None or not line.join_gaps
    ]
    labels = [line.label for line in lines]
    y: dict[str, Any] = {
        "field": "value",
        "type": "quantitative",
        "title": y_title,
        "axis": {"format": value_format, "tickCount": 5},
    }
    if y_max is not None:
        y["scale"] = {"domain": [0, y_max]}
    else:
        y["scale"] = {"zero": True}
    layer: list[dict[str, Any]] = [
        {
            "mark": {
                "type": "line",
                "strokeWidth": 2,
                "invalid": "break-paths-show-domains",
                "point": {"filled": True, "size": 28},
            },
            "encoding": {
                "x": _time_axis(times),
                "y": y,
                "color": {
                    "field": "line",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": labels, "range": [line.colour for line in lines]},
                    "sort": labels,
                },
                "strokeDash": {
                    "field": "dash",
                    "type": "nominal",
                    "legend": None,
                    "scale": {"domain": ["solid", "dashed"], "range": [[1, 0], [6, 4]]},
                },
                "detail": {"field": "line"},
            },
        }
    ]
    if not any(v is not None for line in lines for v in line.values):
        layer.append(_no_data_layer(_NO_DATA, x=_WIDTH / 2, y=100))
    spec = {
        "width": _WIDTH,
        "height": 200,
        "data": {"values": rows},
        "layer": layer,
        "description": f"{title} ({unit})" if unit else title,
    }
    return chart_svg(spec, chart_id=chart_id, title=title)


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, Sequence[float]]],
    segments: Sequence[tuple[str, str]],
    *,
    shares: bool = False,
    empty_text: str = "nothing in this period",
) -> Markup:
    """Horizontal stacked bars: one bar per ``(label, values)``, one value per segment.

    Args:
        chart_id: ``id`` of the SVG.
        title: Accessible name.
        bars: Bar label and its segment values.
        segments: ``(name, colour)`` of each segment, in stacking order.
        shares: Every bar is 100 % long, so groups of very different sizes can
            be compared.
        empty_text: Shown when every value is zero.
    """
    names = [name for name, _ in segments]
    rows = [
        {"bar": label, "segment": name, "order": i, "value": value}
        for label, values in bars
        for i, (name, value) in enumerate(zip(names, values, strict=True))
        if value > 0
    ]
    layer: list[dict[str, Any]] = [
        {
            "mark": {"type": "bar", "height": 20, "stroke": "#ffffff", "strokeWidth": 1},
            "encoding": {
                "y": {
                    "field": "bar",
                    "type": "nominal",
                    "title": None,
                    "sort": [label for label, _ in bars],
                    "scale": {"domain": [label for label, _ in bars]},
                },
                "x": {
                    "field": "value",
                    "type": "quantitative",
                    "stack": "normalize" if shares else "zero",
                    "title": "share of countries" if shares else None,
                    "axis": {"format": ".0%" if shares else ",d", "tickCount": 5},
                },
                "color": {
                    "field": "segment",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": names, "range": [colour for _, colour in segments]},
                },
                "order": {"field": "order"},
            },
        }
    ]
    if not rows:
        layer.append(_no_data_layer(empty_text, x=(_WIDTH - 120) / 2, y=14 * max(len(bars), 1)))
    spec = {
        "width": _WIDTH - 120,
        "height": {"step": 28},
        "data": {"values": rows or [{"bar": label, "value": 0} for label, _ in bars]},
        "layer": layer,
    }
    return chart_svg(spec, chart_id=chart_id, title=title)


def level_timeline(
    chart_id: str,
    title: str,
    series: Mapping[str, Sequence[tuple[datetime, int | None]]],
    *,
    until: datetime,
) -> Markup:
    """Level over time per source, as steps (a level holds until the next version).

    Args:
        chart_id: ``id`` of the SVG.
        title: Accessible name.
        series: Per source label, its versions' ``(valid from, level)``, oldest
            first; a None level is a withdrawn advisory.
        until: Where the last step ends (now).
    """
    labels = list(series)
    rows = []
    for label, points in series.items():
        ordered = sorted(points, key=lambda p: p[0])
        for i, (start, level) in enumerate(ordered):
            end = ordered[i + 1][0] if i + 1 < len(ordered) else until
            rows.append(
                {
                    "source": label,
                    "start": start,
                    "end": max(end, start),
                    "level": "withdrawn" if level is None else f"level {level}",
                }
            )
    level_names = ["level 1", "level 2", "level 3", "level 4", "withdrawn"]
    spec = {
        "width": _WIDTH,
        "height": {"step": 30},
        "data": {"values": rows},
        "mark": {"type": "bar", "height": 20, "cornerRadius": 2},
        "encoding": {
            "y": {
                "field": "source",
                "type": "nominal",
                "title": None,
                "sort": labels,
                "scale": {"domain": labels},
            },
            "x": {
                "field": "start",
                "type": "temporal",
                "timeUnit": "utcyearmonthdatehoursminutes",
                "title": None,
                "axis": {"format": "%Y-%m-%d", "labelOverlap": True},
            },
            "x2": {"field": "end", "timeUnit": "utcyearmonthdatehoursminutes"},
            "color": {
                "field": "level",
                "type": "nominal",
                "title": None,
                "scale": {
                    "domain": level_names,
                    "range": [LEVEL_COLOURS[k.removeprefix("level ")] for k in level_names],
                },
            },
        },
    }
    return chart_svg(spec, chart_id=chart_id, title=title)

"""Rendering: the one template set and the one chart approach of every page.

Pure (no Temporal, asyncpg or httpx). The HTML report (``advisories.report``)
and the web dashboard (``api.dashboard``) both render Jinja2 templates from
``advisories/render/templates`` through `render`, on the same base layout, with
charts from `advisories.render.charts` and the map from
`advisories.render.worldmap`.

Everything a source published is untrusted text: autoescaping is on for every
template (``.html``, ``.svg``, ``.xml`` and any other), the environment is
strict about undefined names, and the only markup that bypasses escaping is
markup built here (charts, the map), never text from a source.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from advisories.models import Level

__all__ = [
    "LEVEL_NAMES",
    "TEMPLATES",
    "environment",
    "http_url",
    "num",
    "pct",
    "render",
    "secs",
    "stylesheet",
    "stylesheet_hash",
]

TEMPLATES: Final = Path(__file__).parent / "templates"
_DASH: Final = "–"
#: "1" → "normal precautions" … "4" → "do not travel".
LEVEL_NAMES: Final = {str(level.value): level.name.replace("_", " ").lower() for level in Level}


def http_url(url: object) -> str | None:
    """``url`` when it is an absolute http(s) URL, else None (never link ``javascript:``)."""
    text = str(url or "")
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return text
    return None


def _when(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    if at is None:
        return _DASH
    return at.astimezone(UTC).strftime(fmt)


def num(value: float | None) -> str:
    """A count or amount with thousands separators (a dash for None)."""
    if value is None:
        return _DASH
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def pct(value: float | None) -> str:
    """A percentage with one decimal (a dash for None)."""
    return _DASH if value is None else f"{value:.1f} %"


def secs(ms: float | None) -> str:
    """Milliseconds as seconds with two decimals (a dash for None)."""
    return _DASH if ms is None else f"{ms / 1000:.2f} s"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return _DASH
    if seconds % 86400 == 0:
        return f"{seconds / 86400:g} d"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _ago(seconds: float | None) -> str:
    """An age in words: ``3 min``, ``2.5 h``, ``4 d``."""
    if seconds is None:
        return _DASH
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@cache
def environment() -> jinja2.Environment:
    """The template environment (built once): autoescape everywhere, strict undefined."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # Every template escapes; .html/.svg/.xml explicitly, and the default for
        # anything else too, so a new template cannot forget.
        autoescape=jinja2.select_autoescape(("html", "svg", "xml"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        when=_when,
        num=num,
        pct=pct,
        secs=secs,
        span=_span,
        ago=_ago,
        http_url=http_url,
    )
    env.globals.update(dash=_DASH, level_names=LEVEL_NAMES)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``template`` (a path under ``templates/``) with ``context``.

    Raises:
        jinja2.TemplateNotFound: for an unknown template.
        jinja2.UndefinedError: if the template uses a name not given.
    """
    return environment().get_template(template).render(**context)


@cache
def stylesheet() -> Markup:
    """The shared stylesheet: inlined in a file report, served to the dashboard."""
    return Markup((TEMPLATES / "base.css").read_text(encoding="utf-8"))


@cache
def stylesheet_hash() -> str:
    """CSP source for the inlined stylesheet (``'sha256-…'``), so no ``'unsafe-inline'``."""
    digest = hashlib.sha256(str(stylesheet()).encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"

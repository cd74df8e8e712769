"""The registry of advisory sources: one module per source, found by discovery.

Every module of this package whose name does not start with ``_`` is a
source: it is named by the source's id and exports ``SOURCE``, a
:class:`SourceSpec` (see :mod:`advisories.sources._base`). Adding a government
is adding such a module (and its captures and expected outputs); the CLI,
replay routes, synthetic catalogue, bench, chaos and the expected-output test
all read this registry.

A source id (``us_state_dept``, ``uk_foreign_office``, ...) is the same string
in configuration, database rows, task queues, CLI flags, metric labels and
span attributes. ``US_STATE_DEPT``-style names (the id in upper case) are the
registered specs, for code that names one source on purpose.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Final

from advisories.errors import UnknownSourceError
from advisories.sources._base import (
    IndexEntry,
    IndexPage,
    IndexPager,
    Parser,
    Priority,
    RateLimitPolicy,
    ReplayRoute,
    SourceParser,
    SourceSpec,
    SyntheticImitation,
    SyntheticInput,
    SyntheticOutput,
    page_url,
    query_file,
)

__all__ = [
    "SOURCES",
    "IndexEntry",
    "IndexPage",
    "IndexPager",
    "Parser",
    "Priority",
    "RateLimitPolicy",
    "RegistryError",
    "ReplayRoute",
    "SourceParser",
    "SourceSpec",
    "SyntheticImitation",
    "SyntheticInput",
    "SyntheticOutput",
    "get_source",
    "markdown_table",
    "page_url",
    "query_file",
    "source_ids",
]


class RegistryError(RuntimeError):
    """A source module that does not declare itself properly."""


def _discover() -> dict[str, SourceSpec]:
    """Import every source module of this package; their specs by id, sorted."""
    found: dict[str, SourceSpec] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SOURCE", None)
        if not isinstance(spec, SourceSpec):
            raise RegistryError(f"{module.__name__} exports no SOURCE (a SourceSpec)")
        if spec.id != info.name:
            raise RegistryError(f"{module.__name__} declares source id {spec.id!r}")
        found[spec.id] = spec
    return dict(sorted(found.items()))


#: Every registered source, by id (sorted by id).
SOURCES: Final[dict[str, SourceSpec]] = _discover()


def source_ids() -> list[str]:
    """All registered source ids, sorted."""
    return sorted(SOURCES)


def get_source(source: str) -> SourceSpec:
    """Look a source up by id.

    Raises:
        UnknownSourceError: if ``source`` is not registered.
    """
    try:
        return SOURCES[source]
    except KeyError:
        raise UnknownSourceError(source, source_ids()) from None


def __getattr__(name: str) -> SourceSpec:
    """``US_STATE_DEPT`` and the like: a registered spec by its id in upper case."""
    spec = SOURCES.get(name.lower()) if name.isupper() else None
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return spec


def _schedule(spec: SourceSpec) -> str:
    hours = int(spec.priority.interval.total_seconds() // 3600)
    return f"every {hours} h, `{spec.priority.task_queue}`"


def markdown_table() -> str:
    """README's source table, one row per registered source."""
    rows = [
        "| source id | publisher | index | per-country document | schedule |",
        "|---|---|---|---|---|",
    ]
    for spec in SOURCES.values():
        index = spec.index_note or f"`{spec.index_path}`"
        document = f"`{spec.document_path}`" if spec.document_path else "—"
        rows.append(
            f"| `{spec.id}` | {spec.publisher} | {index} | {document} | {_schedule(spec)} |"
        )
    return "\n".join(rows)

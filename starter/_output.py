"""What every command of the CLI shares: the consoles, one-line errors, the source option,
running a coroutine, the PostgreSQL pool and Temporal client (with an error that says the stack may
be down), and JSON or table output.

:mod:`starter.cli` and the command groups it registers (:mod:`starter.monitoring_cli`,
:mod:`starter.ratelimits_cli`, :mod:`starter.reports_cli`) all print through these.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client

from advisories.errors import UnknownSourceError
from advisories.settings import Settings, redact_url
from advisories.sources import SourceSpec, get_source, source_ids
from store.pool import create_pool
from worker.client import connect

T = TypeVar("T")

# A table piped to a file or another program keeps its full width instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)  # one error, one line


class CliError(Exception):
    """An error reported as one line and an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop with ``message`` on stderr and exit ``code``."""
    raise CliError(message, code)


def sources(source: str | None) -> list[SourceSpec]:
    """The named source (validated) or all of them."""
    if source is None:
        return [get_source(s) for s in source_ids()]
    try:
        return [get_source(source)]
    except UnknownSourceError as exc:
        fail(str(exc), 2)


def run(func: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``func()`` makes to completion in a fresh event loop."""
    return asyncio.run(func())  # type: ignore[arg-type]


async def connect_client(settings: Settings) -> Client:
    """A Temporal client, or :func:`fail` with a hint that the stack may be down."""
    try:
        return await connect(settings)
    except RuntimeError as exc:
        fail(f"{exc} — is the stack up? (make up)")


async def open_pool(settings: Settings) -> asyncpg.Pool:
    """A small pool (``store.pool.create_pool``), or :func:`fail` naming the (redacted) URL."""
    url = settings.database_url.get_secret_value()
    try:
        pool = await create_pool(url, max_size=2, seed_sources=False)
    except (OSError, asyncpg.PostgresError) as exc:
        fail(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {exc} — is the stack up? (make up)"
        )
    assert pool is not None
    return pool


async def with_pool(settings: Settings, func: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """``await func(pool)`` on a pool from :func:`open_pool`, closed afterwards."""
    pool = await open_pool(settings)
    try:
        return await func(pool)
    finally:
        await pool.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def print_json(rows: Sequence[dict[str, Any]]) -> None:
    """Print ``rows`` as an indented JSON array (datetimes as UTC ISO 8601)."""
    print(json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in rows], indent=2))


def print_table(title: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Print ``columns`` of ``rows`` as a table (UTC minutes, long strings shortened)."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row[c] is None else str(_short(row[c])) for c in columns))
    out.print(table)


def _short(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "..."
    return value


def print_listing(
    rows: Sequence[dict[str, Any]], *, as_json: bool, title: str, columns: Sequence[str]
) -> None:
    """A listing: JSON with ``--json``, else a table titled with its row count."""
    if as_json:
        print_json(rows)
    else:
        print_table(f"{title} ({len(rows)})", columns, rows)


JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON array.")]
SourceOption = Annotated[str | None, typer.Option(help="Only this source.")]

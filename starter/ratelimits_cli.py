"""The ``rate-limits`` command: show per-source limits and usage, or change a limit.

``rate-limits [--source S]`` shows each source's policy, whether its business
hours (slower pace) apply now, its usage in the last hour and in the current
burst window, and its utilisation. ``rate-limits --source S --set NAME=VALUE``
changes the policy in PostgreSQL; workers read it on their next request, so no
restart is needed.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
import typer

from advisories.ratelimit import SETTING_NAMES, parse_setting
from advisories.settings import get_settings
from starter._output import JsonOption, fail, print_json, print_table, run, sources, with_pool
from store.ratelimits import RateLimitStore, UsageRow

_COLUMNS = [
    "source",
    "enabled",
    "business_hours",
    "per_hour",
    "burst",
    "min_delay_s",
    "respectful_hours",
    "last_hour",
    "burst_window",
    "utilisation_%",
    "last_request_s_ago",
]


def register(app: typer.Typer) -> None:
    """Add the ``rate-limits`` command to ``app``."""
    app.command("rate-limits")(rate_limits)


def rate_limits(
    source: Annotated[
        str | None, typer.Option(help="Only this source (required with --set).")
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="NAME=VALUE",
            help=f"Change a limit at run time (repeatable). Names: {', '.join(SETTING_NAMES)}.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Per-source rate limits, usage in the last hour and utilisation; --set changes a limit."""
    specs = sources(source)
    try:
        changes = _parse_assignments(assignments or [])
    except ValueError as exc:
        fail(str(exc), 2)
    if changes and source is None:
        fail(f"--set needs --source (one of: {', '.join(s.id for s in specs)})", 2)
    settings = get_settings()

    async def go(pool: asyncpg.Pool) -> list[UsageRow]:
        store = RateLimitStore(pool)
        # The CLI may run before any worker has seeded the rows.
        await store.ensure_defaults()
        if changes:
            assert source is not None
            try:
                await store.update(source, **changes)
            except ValueError as exc:
                fail(f"{exc}; allowed names: {', '.join(SETTING_NAMES)}", 2)
        return await store.usage(source)

    rows = run(lambda: with_pool(settings, go))
    if as_json:
        print_json([_json_row(row) for row in rows])
        return
    title = "Rate limits (updated)" if changes else "Rate limits"
    if not settings.rate_limits_enabled:
        title += " (RATE_LIMITS_ENABLED=false here: workers with this setting ignore them)"
    print_table(title, _COLUMNS, [_table_row(row) for row in rows])


def _parse_assignments(assignments: list[str]) -> dict[str, object]:
    """``NAME=VALUE`` strings to typed policy changes; the last of a name wins.

    Raises:
        ValueError: one line naming the bad assignment and the allowed names.
    """
    changes: dict[str, object] = {}
    allowed = f"allowed names: {', '.join(SETTING_NAMES)}"
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep:
            raise ValueError(f"--set expects NAME=VALUE, got {assignment!r}; {allowed}")
        try:
            key, typed = parse_setting(name.strip(), value)
        except ValueError as exc:
            # An unknown name's message lists the allowed names already.
            known = name.strip() in SETTING_NAMES
            raise ValueError(
                f"bad --set {assignment!r}: {exc}" + (f"; {allowed}" if known else "")
            ) from None
        changes[key] = typed
    return changes


def _json_row(row: UsageRow) -> dict[str, Any]:
    policy, limits = row.policy, row.limits
    return {
        "source": row.source,
        "requests_per_hour": policy.requests_per_hour,
        "burst_limit": policy.burst_limit,
        "burst_window_seconds": policy.burst_window_seconds,
        "min_delay_seconds": policy.min_delay_seconds,
        "respectful_start_hour": policy.respectful_start_hour,
        "respectful_end_hour": policy.respectful_end_hour,
        "respectful_factor": policy.respectful_factor,
        "timezone": policy.timezone,
        "enabled": policy.enabled,
        "business_hours": row.business_hours,
        "effective_requests_per_hour": limits.requests_per_hour,
        "effective_burst_limit": limits.burst_limit,
        "effective_min_delay_seconds": round(limits.min_delay_seconds, 3),
        "requests_last_hour": row.requests_last_hour,
        "requests_in_burst_window": row.requests_in_burst_window,
        "seconds_since_last_request": None
        if row.seconds_since_last_request is None
        else round(row.seconds_since_last_request, 1),
        "utilisation_percent": row.utilisation_percent,
        "updated_at": row.updated_at,
    }


def _table_row(row: UsageRow) -> dict[str, Any]:
    policy, limits = row.policy, row.limits
    since = row.seconds_since_last_request
    return {
        "source": row.source,
        "enabled": "yes" if policy.enabled else "NO (unlimited)",
        "business_hours": "yes (slower)" if row.business_hours else "no",
        # What applies now, and the configured value when business hours change it.
        "per_hour": _now_of(limits.requests_per_hour, policy.requests_per_hour),
        "burst": f"{_now_of(limits.burst_limit, policy.burst_limit)}"
        f" per {policy.burst_window_seconds:g}s",
        "min_delay_s": _now_of(round(limits.min_delay_seconds, 3), policy.min_delay_seconds),
        "respectful_hours": f"{policy.respectful_start_hour:02d}-{policy.respectful_end_hour:02d}"
        f" {policy.timezone} x{policy.respectful_factor:g}",
        "last_hour": f"{row.requests_last_hour}/{limits.requests_per_hour}",
        "burst_window": f"{row.requests_in_burst_window}/{limits.burst_limit}",
        "utilisation_%": f"{row.utilisation_percent:.1f}",
        "last_request_s_ago": "never" if since is None else f"{since:.1f}",
    }


def _now_of(now: float, configured: float) -> str:
    return f"{now:g}" if now == configured else f"{now:g} (of {configured:g})"

"""The run's verdict: a rich table on the console and one JSON document."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from chaos.checks import Accounting


def _mark(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def print_report(
    console: Console, accounting: Accounting, run: dict[str, Any], api: dict[str, Any]
) -> None:
    """Per-source accounting, the checks, the phases with their timings, the service's answers."""
    table = Table(title="Chaos run: what the store holds after the faults", title_justify="left")
    columns = (
        "source",
        "expected",
        "stored",
        "quarantined",
        "lost",
        "stale",
        "duplicate versions",
        "quarantines open",
        "superseded",
        "recovered",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "source" else "right")
    for s in accounting.sources:
        table.add_row(
            s.source,
            str(s.expected),
            str(s.stored),
            str(s.quarantined),
            _red_if(s.lost),
            _red_if(s.stale),
            _red_if(s.duplicate_versions),
            str(s.quarantines_open),
            str(s.quarantines_superseded),
            str(s.recovered),
        )
    total = accounting.total
    table.add_section()
    table.add_row(
        "[bold]all[/]",
        str(total("expected")),
        str(total("stored")),
        str(total("quarantined")),
        _red_if(total("lost")),
        _red_if(total("stale")),
        _red_if(total("duplicate_versions")),
        str(total("quarantines_open")),
        str(total("quarantines_superseded")),
        str(total("recovered")),
    )
    console.print(table)

    checks = Table(title="Checks", title_justify="left")
    for column in ("check", "value", "ok"):
        checks.add_column(column)
    stuck, running = len(accounting.stuck), len(accounting.still_running)
    rows: list[tuple[str, int, bool | None]] = [
        ("lost (expected − stored − quarantined)", total("lost"), total("lost") == 0),
        ("stale (lost updates)", total("stale"), total("stale") == 0),
        ("duplicate versions", total("duplicate_versions"), total("duplicate_versions") == 0),
        ("jobs stuck in started/pending (workflow closed)", stuck, stuck == 0),
        ("workflows still running (not quarantines)", running, running == 0),
        ("jobs left 'retry' by a closed workflow", len(accounting.orphaned_retry), None),
        ("quarantine mirror mismatches", len(accounting.mirror_mismatches), None),
        ("quarantines recovered after healing", total("recovered"), None),
    ]
    for name, value, ok in rows:
        checks.add_row(name, str(value), "info" if ok is None else _mark(ok))
    console.print(checks)

    phases = Table(title="Phases (seconds since start)", title_justify="left")
    for column in ("phase", "start", "fault", "healed", "end", "took", "notes"):
        phases.add_column(column)
    for phase in run.get("phases", []):
        phases.add_row(
            phase["title"],
            _num(phase["started"]),
            _num(phase["fault_at"]),
            _num(phase["healed_at"]),
            _num(phase["ended"]),
            _num(phase["seconds"]),
            _notes(phase),
        )
    console.print(phases)
    _print_api(console, api)
    problems = run.get("problems") or []
    if problems:
        console.print("[bold red]Problems seen during the run:[/]")
        for problem in problems:
            console.print(f"  • {problem}", highlight=False, markup=False)
    failed = [c for c in run.get("cycles", []) if c.get("failure")]
    if failed:
        console.print(f"[bold]Cycles that failed ({len(failed)}):[/]")
        for cycle in failed:
            console.print(
                f"  • {cycle['workflow_id']}: {cycle['failure'][:300]}",
                highlight=False,
                markup=False,
            )


def _print_api(console: Console, api: dict[str, Any]) -> None:
    """What the advisory service answered in each phase, and its verdict."""
    table = Table(
        title=f"Advisory service ({', '.join(api.get('paths', []))})", title_justify="left"
    )
    for column in ("phase", "requests", "statuses", "no answer", "max latency ms"):
        table.add_column(column, justify="left" if column in {"phase", "statuses"} else "right")
    for name, counts in api.get("phases", {}).items():
        statuses = ", ".join(f"{k}×{v}" for k, v in counts["statuses"].items()) or "-"
        errors = sum(counts["errors"].values())
        table.add_row(
            name, str(counts["requests"]), statuses, _red_if(errors), _num(counts["max_latency_ms"])
        )
    console.print(table)
    outage = api.get("outage", {})
    recovered = api.get("recovered_after_seconds")
    console.print(
        f"PostgreSQL down: {outage.get('answers_503', 0)} answers 503 "
        f"({outage.get('answers_503_with_retry_after_and_json_error', 0)} with Retry-After and a "
        f"JSON error), other answers {outage.get('other_answers', {})}; serving again "
        + ("-" if recovered is None else f"{recovered:.1f} s")
        + " after the restart",
        highlight=False,
    )
    for failure in api.get("failures", []):
        console.print(f"  [red]✗[/] {failure}", highlight=False)


def _red_if(value: int) -> str:
    return f"[red]{value}[/]" if value else "0"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _notes(phase: dict[str, Any]) -> str:
    obs = phase.get("observations", {})
    name = phase.get("name")
    if name == "kill":
        return (
            f"{obs.get('batch_activities_on_killed_worker', 0)} batch attempts on the killed "
            f"worker; heartbeat timeout {obs.get('heartbeat_timeout_seconds')} s"
        )
    if name == "temporal":
        return (
            f"stop {obs.get('stop_seconds')} s, start {obs.get('start_seconds')} s, workers "
            f"polling again after {obs.get('workers_polling_again_after_seconds')} s"
        )
    if name == "postgres":
        return (
            f"down {obs.get('down_seconds')} s; API 503 ×{obs.get('api_503_while_down')}, "
            f"serving again after {obs.get('api_recovered_after_seconds')} s"
        )
    if name == "replay":
        return f"faults {obs.get('faults_injected')} of {obs.get('requests')} requests"
    if name == "recover":
        kill = obs.get("killed_attempts", {})
        return (
            f"{len(obs.get('rounds', []))} rounds, quiescent {obs.get('quiescent')}; killed "
            f"attempts retried after {kill.get('seconds_from_kill_to_retry')} s"
        )
    return ""

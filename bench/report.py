"""The bench's results: collected section by section, printed as tables, written as JSON.

Targets (DESIGN §8) are shown next to the figures, never asserted: a benchmark reports. What is
*broken* — a crawl that lost countries, an unchanged cycle that created versions, a rate-limit
violation, a change never detected, a capture that does not parse, a failed section — is listed
under ``problems`` and makes the exit status non-zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

#: DESIGN §8.
CRAWL_RATIO_TARGET = 1.25
WORKER_RSS_TARGET_MB = 120.0
FEWER_REQUESTS_TARGET = 50.0
BUDGET_USED_TARGET_PERCENT = 90.0


@dataclass
class Report:
    """Everything one bench run found."""

    meta: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            **self.sections,
            "targets": targets(self.sections),
            "problems": self.problems,
            "ok": not self.problems,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n", encoding="utf-8")


def find_problems(sections: dict[str, Any]) -> list[str]:
    """What in the results is broken (as opposed to slow)."""
    problems: list[str] = []
    for latency in sections.get("crawl", {}).values():
        for run in latency.get("runs", []):
            for problem in run.get("problems", []):
                problems.append(f"crawl {run['latency_ms']:g} ms {run['arm']}: {problem}")
    unchanged = sections.get("unchanged_cycle")
    if unchanged and unchanged["versions_created"] != 0:
        problems.append(f"unchanged cycle created {unchanged['versions_created']} versions")
    polite = sections.get("politeness")
    if polite and polite["violations"] != 0:
        problems.append(f"politeness: {polite['violations']} rate-limit violations")
    fresh = sections.get("freshness")
    if fresh:
        for change in fresh["changes"]:
            if change["lag_seconds"] is None:
                problems.append(f"freshness: {change['source']} {change['country']} not detected")
    for source, cost in sections.get("parse_cost", {}).items():
        for failure in cost["failures"]:
            problems.append(f"parse {source}: {failure}")
    return problems


def targets(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """Each §8 target with the measured value and whether it is met (None: not measured)."""
    rows: list[dict[str, Any]] = []
    for key, latency in sections.get("crawl", {}).items():
        ratio = latency.get("median_ratio")
        rows.append(
            {
                "target": f"crawl project/baseline at {key} ≤ {CRAWL_RATIO_TARGET} (wall, median)",
                "value": ratio,
                "met": None if ratio is None else ratio <= CRAWL_RATIO_TARGET,
            }
        )
        cpu = latency.get("median_cpu_ratio")
        rows.append(
            {
                "target": f"  same in CPU seconds of the whole stack at {key} (less noisy)",
                "value": cpu,
                "met": None if cpu is None else cpu <= CRAWL_RATIO_TARGET,
            }
        )
    peaks = [
        run["peak_rss_mb"].get("worker", 0.0)
        for latency in sections.get("crawl", {}).values()
        for run in latency.get("runs", [])
        if run["arm"] == "project"
    ]
    if peaks:
        rows.append(
            {
                "target": f"worker peak RSS ≤ {WORKER_RSS_TARGET_MB:g} MB",
                "value": max(peaks),
                "met": max(peaks) <= WORKER_RSS_TARGET_MB,
            }
        )
    unchanged = sections.get("unchanged_cycle")
    if unchanged:
        only_index = all(
            s["documents"] == 0 and s["index"] == s["not_modified_304"]
            for s in unchanged["sources"].values()
        )
        rows.append(
            {
                "target": "unchanged cycle: only 304 index requests, 0 versions",
                "value": (
                    f"{unchanged['requests']} requests, {unchanged['versions_created']} versions"
                ),
                "met": only_index and unchanged["versions_created"] == 0,
            }
        )
    per_day = sections.get("requests_per_day", {}).get("sources")
    if per_day:
        worst = min(s["fewer_times"] for s in per_day.values())
        rows.append(
            {
                "target": f"requests/day ≥ {FEWER_REQUESTS_TARGET:g}× fewer (every source)",
                "value": worst,
                "met": worst >= FEWER_REQUESTS_TARGET,
            }
        )
    fresh = sections.get("freshness")
    if fresh:
        lags = [c["lag_seconds"] for c in fresh["changes"]]
        interval = fresh["poll_interval_seconds"]
        rows.append(
            {
                "target": "change detected within one poll interval",
                "value": None if None in lags else max(lags),
                "met": None not in lags and max(lags) <= interval,
            }
        )
    polite = sections.get("politeness")
    if polite:
        rows.append(
            {
                "target": "politeness: 0 violations (two workers)",
                "value": polite["violations"],
                "met": polite["violations"] == 0,
            }
        )
        used = [s["used_percent"] for s in polite["sources"].values() if s.get("backlog")]
        if used:
            rows.append(
                {
                    "target": f"politeness: ≥ {BUDGET_USED_TARGET_PERCENT:g} % of budget used",
                    "value": min(used),
                    "met": min(used) >= BUDGET_USED_TARGET_PERCENT,
                }
            )
    parse = sections.get("parse_cost")
    if parse:
        failures = sum(len(s["failures"]) for s in parse.values())
        rows.append(
            {"target": "every real capture parses", "value": failures, "met": failures == 0}
        )
    return rows


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _crawl_table(crawl: dict[str, Any]) -> Table:
    table = Table(title="Full crawl: project (A) vs bare asyncio loop (B)", title_justify="left")
    for column in (
        "latency",
        "arm",
        "runs",
        "median s",
        "min–max s",
        "docs/s",
        "A/B wall, per pair",
        "A/B CPU, per pair",
        "CPU s: worker|bench",
        "temporal",
        "postgres",
        "replay",
        "all ours",
        "peak RSS MB: worker|bench",
        "dev server",
        "other load",
    ):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for key, latency in crawl.items():
        pairs = latency.get("ratios", [])
        wall = " ".join(f"{p['ratio']:.2f}" for p in pairs)
        cpu_pairs = " ".join(f"{p['cpu_ratio']:.2f}" for p in pairs)
        if "median_ratio" in latency:
            wall += f" (median {latency['median_ratio']:.2f})"
            cpu_pairs += f" (median {latency['median_cpu_ratio']:.2f})"
        for arm in ("project", "baseline"):
            summary = latency.get(arm)
            if not summary:
                continue
            cpu = summary["median_cpu_seconds"]
            rss = summary["max_peak_rss_mb"]
            own = "worker" if arm == "project" else "bench"
            table.add_row(
                key,
                arm,
                str(summary["runs"]),
                _f(summary["median_seconds"]),
                f"{summary['min_seconds']:.2f}–{summary['max_seconds']:.2f}",
                _f(summary["median_documents_per_second"], 0),
                wall if arm == "project" else "",
                cpu_pairs if arm == "project" else "",
                _f(cpu.get(own)),
                _f(cpu.get("temporal")),
                _f(cpu.get("postgres")),
                _f(cpu.get("replay")),
                _f(summary["median_own_cpu_seconds"]),
                _f(rss.get(own), 1),
                _f(rss.get("temporal"), 1),
                f"{summary['median_other_load_cores']:.2f} cores",
            )
    return table


def _unchanged_table(unchanged: dict[str, Any]) -> Table:
    table = Table(title="Unchanged cycle (second crawl, nothing changed)", title_justify="left")
    for column in ("source", "requests", "index", "304", "documents", "robots", "versions"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, row in unchanged["sources"].items():
        table.add_row(
            source,
            str(row["requests"]),
            str(row["index"]),
            str(row["not_modified_304"]),
            str(row["documents"]),
            str(row["robots"]),
            str(row["versions_created"]),
        )
    return table


def _per_day_table(per_day: dict[str, Any]) -> Table:
    rate = per_day["change_rate"]
    table = Table(
        title=(
            "Requests per day (change rate "
            f"{rate['per_country_per_day'] * 100:.2f} % of countries per day, measured on "
            f"{rate['source']})"
        ),
        title_justify="left",
    )
    for column in (
        "source",
        "interval",
        "cycles/day",
        "countries",
        "changed docs/day",
        "change-driven/day",
        "every country/day",
        "fewer ×",
        "within limit ×",
    ):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, row in per_day["sources"].items():
        table.add_row(
            source,
            f"{row['interval_seconds'] / 3600:g} h",
            _f(row["cycles_per_day"], 1),
            str(row["countries"]),
            _f(row["changed_documents_per_day"], 1),
            _f(row["change_driven_per_day"], 1),
            _f(row["every_country_per_day"], 0),
            _f(row["fewer_times"], 1),
            _f(row["fewer_times_within_limit"], 1),
        )
    return table


def _freshness_table(fresh: dict[str, Any]) -> Table:
    table = Table(title="Freshness (schedules running, one level change)", title_justify="left")
    for column in ("source", "country", "poll interval s", "lag s", "lag from source time s"):
        table.add_column(column, justify="left" if column in ("source", "country") else "right")
    for change in fresh["changes"]:
        table.add_row(
            change["source"],
            change["country"],
            _f(change["poll_interval_seconds"], 0),
            _f(change["lag_seconds"], 1),
            _f(change["lag_from_source_time_seconds"], 1),
        )
    return table


def _politeness_table(polite: dict[str, Any]) -> Table:
    policy = polite["policy"]
    table = Table(
        title=(
            f"Politeness: {polite['workers']} workers, {polite['seconds']:g} s; every source "
            f"{policy.get('requests_per_hour')}/h, burst {policy.get('burst_limit')} per "
            f"{policy.get('burst_window_seconds')} s, min delay {policy.get('min_delay_seconds')} s"
        ),
        title_justify="left",
    )
    for column in (
        "source",
        "requests",
        "window s",
        "violations delay|burst|hour",
        "allowed",
        "used %",
        "pace %",
    ):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, row in polite["sources"].items():
        v = row["violations"]
        backlog = row.get("backlog")
        table.add_row(
            source,
            str(row["requests"]),
            _f(row.get("window_seconds"), 1),
            f"{v['min_delay']}|{v['burst']}|{v['hourly']}",
            _f(row.get("allowed")),
            _f(row.get("used_percent"), 1) if backlog else "no backlog",
            _f(row.get("pace_percent"), 1) if backlog else "-",
        )
    return table


def _parse_table(parse: dict[str, Any]) -> Table:
    table = Table(title="Parse cost over the real captures (ms)", title_justify="left")
    for column in (
        "source",
        "captures",
        "per document median",
        "p95",
        "index median",
        "index p95",
        "index entries",
        "failures",
    ):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, row in parse.items():
        per_doc = row.get("per_document") or {}
        index = row.get("index") or {}
        table.add_row(
            source,
            str(row["captures"]),
            _f(per_doc.get("median_ms"), 3),
            _f(per_doc.get("p95_ms"), 3),
            _f(index.get("median_ms"), 1),
            _f(index.get("p95_ms"), 1),
            _f(index.get("entries")),
            str(len(row["failures"])),
        )
    return table


def _targets_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Targets (DESIGN §8) — reported, not asserted", title_justify="left")
    table.add_column("target")
    table.add_column("measured", justify="right")
    table.add_column("met")
    for row in rows:
        met = row["met"]
        table.add_row(
            row["target"],
            _f(row["value"]),
            "-" if met is None else ("[green]yes[/]" if met else "[red]no[/]"),
        )
    return table


def render(report: Report, console: Console) -> None:
    """Print every section that ran, the targets and the problems."""
    sections = report.sections
    meta = report.meta
    if meta:
        console.print(
            f"bench ({meta.get('mode')}): {meta.get('cpus')} CPUs, catalogue "
            + ", ".join(f"{s} {n}" for s, n in meta.get("countries", {}).items())
            + f" countries; PostgreSQL fsync {'off' if meta.get('pg_fast') else 'on'}"
        )
    if "crawl" in sections:
        console.print(_crawl_table(sections["crawl"]))
    if "unchanged_cycle" in sections:
        console.print(_unchanged_table(sections["unchanged_cycle"]))
    if "requests_per_day" in sections:
        console.print(_per_day_table(sections["requests_per_day"]))
    if "freshness" in sections:
        console.print(_freshness_table(sections["freshness"]))
    if "followup" in sections:
        from bench.followup import followup_table  # the section's own module (heavy imports)

        console.print(followup_table(sections["followup"]))
    if "politeness" in sections:
        console.print(_politeness_table(sections["politeness"]))
    if "parse_cost" in sections:
        console.print(_parse_table(sections["parse_cost"]))
    console.print(_targets_table(targets(sections)))
    if report.problems:
        console.print("[red]Problems:[/]")
        for problem in report.problems:
            console.print(f"  - {problem}")
    else:
        console.print("[green]No problems: every crawl complete, nothing broken.[/]")

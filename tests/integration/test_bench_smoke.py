"""``python -m bench --short`` runs end to end and reports every section with numbers.

The bench's CI mode (issue 6, item 4): a small catalogue, one round per arm and latency. It starts
its own PostgreSQL, Temporal dev server, replay server and workers, so it runs as a subprocess;
the figures are not judged here (a benchmark reports them), only that each section produced them
and that nothing is broken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from advisories.sources import SOURCES
from tests.integration.helpers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.smoke]


def _stray_bench_processes(root_prefix: str) -> list[str]:
    """Processes still running from (or working in) a bench's temporary directory."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if root_prefix in cmdline or (process.info["cwd"] or "").startswith(root_prefix):
            found.append(f"{process.info['pid']}: {cmdline[:120]}")
    return found


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_bench_short_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the bench's own files land under tmp_path
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--short", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert not _stray_bench_processes(str(tmp_path)), "the bench left processes behind"
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["ok"] is True and report["problems"] == []

    # Full crawl, both arms at both latencies, every country stored.
    assert set(report["crawl"]) == {"0ms", "20ms"}
    for latency in report["crawl"].values():
        assert {r["arm"] for r in latency["runs"]} == {"project", "baseline"}
        for run in latency["runs"]:
            assert _positive(run["seconds"]) and _positive(run["documents"])
            assert run["countries"] == report["meta"]["countries"]
            assert _positive(run["own_cpu_seconds"])
        assert _positive(latency["median_ratio"]) and _positive(latency["median_cpu_ratio"])
        project_runs = [r for r in latency["runs"] if r["arm"] == "project"]
        assert all(_positive(r["peak_rss_mb"]["worker"]) for r in project_runs)
        assert all(_positive(r["peak_rss_mb"]["temporal"]) for r in project_runs)

    # Unchanged cycle: index requests only, answered 304, no version.
    unchanged = report["unchanged_cycle"]
    assert unchanged["versions_created"] == 0
    for row in unchanged["sources"].values():
        assert row["index"] == row["not_modified_304"] == 1
        assert row["documents"] == 0 and row["versions_created"] == 0
        assert _positive(row["first_crawl_requests"])

    # Requests per day: every source counted both ways.
    for row in report["requests_per_day"]["sources"].values():
        assert _positive(row["change_driven_per_day"]) and _positive(row["every_country_per_day"])
        assert _positive(row["fewer_times"])
    assert _positive(report["requests_per_day"]["change_rate"]["per_country_per_day"])

    # Freshness: both changes detected, with a lag.
    freshness = report["freshness"]
    assert _positive(freshness["poll_interval_seconds"])
    changing = [s for s in SOURCES.values() if s.synthetic.set_level is not None]
    assert len(freshness["changes"]) == len(changing) >= 2
    assert all(isinstance(c["lag_seconds"], int | float) for c in freshness["changes"])

    # Follow-up: a UK raise re-polled at every other source listing the country, by runs
    # that started no follow-up of their own.
    followup = report["followup"]["sources"]
    assert followup and all(s["followups_started"] == 0 for s in followup.values())
    assert all(_positive(s["lag_seconds"]) for s in followup.values() if s["changed_at_source"])

    # Politeness: no violation, and a budget share for each source with a backlog.
    politeness = report["politeness"]
    assert politeness["violations"] == 0
    backlogged = [s for s in politeness["sources"].values() if s["backlog"]]
    assert len(backlogged) == sum(1 for s in SOURCES.values() if s.document_path) >= 2
    assert all(_positive(s["used_percent"]) and _positive(s["requests"]) for s in backlogged)

    # Parse cost: every source, every capture parsed.
    for row in report["parse_cost"].values():
        assert row["failures"] == []
        assert _positive(row["per_document"]["median_ms"])

    # Advisory service: every request measured on the service and on the raw baseline, under
    # the same load, on a database the crawl filled; the service failed no request.
    api = report["api"]
    assert _positive(api["advisories"])
    assert set(api["requests"]) >= {"country", "not_modified", "advisories"}
    for row in api["requests"].values():
        for arm in ("service", "baseline"):
            assert _positive(row[arm]["requests_per_second"]) and _positive(row[arm]["requests"])
        assert row["service"]["errors"] == 0
        assert _positive(row["ratio"])
    assert {t["target"] for t in api["targets"]} and all("met" in t for t in api["targets"])

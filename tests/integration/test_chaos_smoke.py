"""The chaos run in its short CI mode: it must lose nothing, duplicate nothing, leave nothing stuck.

``python -m chaos --short`` starts its own PostgreSQL, Temporal dev server, replay server and
workers (all on loopback, all its own processes), kills a worker, restarts the dev server, stops
the database, makes the replay server fail, heals, and accounts for every country. This test
runs it as a subprocess, exactly as CI and people do, and checks its verdict and its JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from advisories.sources import SOURCES
from tests.integration.helpers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.smoke]

TIMEOUT_SECONDS = 400


def test_short_chaos_run_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    try:
        run = subprocess.run(
            [sys.executable, "-m", "chaos", "--short", "--out", str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"python -m chaos --short took longer than {TIMEOUT_SECONDS} s: {exc}")
    report = f"stdout:\n{run.stdout[-6000:]}\nstderr:\n{run.stderr[-6000:]}"
    assert run.returncode == 0, report
    assert out.exists(), report
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["complete"] and result["ok"], report
    assert result["lost"] == 0, report
    assert result["duplicate_versions"] == 0, report
    assert result["stuck"] == 0, report
    assert result["stale"] == 0, report
    assert result["workflows_still_running"] == 0, report
    assert result["stored"] + result["quarantined"] == result["expected"], report
    # The real US feed (213) and Smartraveller export (179), 20 each of the synthetic sources.
    synthetic = sum(1 for s in SOURCES.values() if not s.synthetic.real)
    assert result["expected"] == 213 + 179 + 20 * synthetic, report
    assert result["processes_left"] == [], report
    assert [p["name"] for p in result["run"]["phases"]] == [
        "kill",
        "temporal",
        "postgres",
        "replay",
        "recover",
    ], report
    # The advisory service kept answering, said 503 while PostgreSQL was down, came back alone.
    api = result["api"]
    assert api["failures"] == [], report
    assert api["outage"]["answers_503"] > 0, report
    assert api["recovered_after_seconds"] is not None, report
    assert all(not counts["errors"] for counts in api["phases"].values()), report

"""``python -m starter rate-limits`` as a person runs it, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisories.ratelimit import SETTING_NAMES
from advisories.sources import SOURCES

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter", "rate-limits", *args],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, *args, database_url=database_url)


def one_line_error(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


async def test_show_lists_every_source_with_its_limits_and_usage(database_url: str) -> None:
    run = await cli("--json", database_url=database_url)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert [r["source"] for r in rows] == sorted(SOURCES)
    for row in rows:
        policy = SOURCES[row["source"]].rate_limit
        assert {name: row[name] for name in SETTING_NAMES} == {
            name: getattr(policy, name) for name in SETTING_NAMES
        }
        assert (row["requests_last_hour"], row["utilisation_percent"]) == (0, 0.0)
        assert row["seconds_since_last_request"] is None
        assert isinstance(row["business_hours"], bool)

    table = await cli("--source", "uk_foreign_office", database_url=database_url)
    assert table.returncode == 0, table.stderr
    assert "uk_foreign_office" in table.stdout and "us_state_dept" not in table.stdout
    assert "Europe/London" in table.stdout and "utilisation" in table.stdout


async def test_set_changes_the_next_show(database_url: str) -> None:
    run = await cli(
        "--source",
        "us_state_dept",
        "--set",
        "requests_per_hour=80",
        "--set",
        "min_delay_seconds=1.2",
        "--json",
        database_url=database_url,
    )
    assert run.returncode == 0, run.stderr
    [updated] = json.loads(run.stdout)
    assert (updated["requests_per_hour"], updated["min_delay_seconds"]) == (80, 1.2)

    shown = json.loads((await cli("--json", database_url=database_url)).stdout)
    by_source = {r["source"]: r for r in shown}
    assert by_source["us_state_dept"]["requests_per_hour"] == 80
    assert by_source["us_state_dept"]["min_delay_seconds"] == 1.2
    assert by_source["canada_travel"]["requests_per_hour"] == 100

    table = await cli(
        "--source", "canada_travel", "--set", "enabled=false", database_url=database_url
    )
    assert table.returncode == 0, table.stderr
    assert "updated" in table.stdout and "NO (unlimited)" in table.stdout


async def test_bad_setting_name_exits_2_listing_the_allowed_names(database_url: str) -> None:
    run = await cli("--source", "us_state_dept", "--set", "per_hour=80", database_url=database_url)
    line = one_line_error(run)
    assert "per_hour" in line
    assert all(name in line for name in SETTING_NAMES)
    line = one_line_error(
        await cli("--source", "us_state_dept", "--set", "80", database_url=database_url)
    )
    assert "NAME=VALUE" in line


async def test_bad_setting_value_exits_2_naming_it(database_url: str) -> None:
    for assignment in ("requests_per_hour=0", "respectful_factor=2", "timezone=Mars/Base"):
        run = await cli("--source", "us_state_dept", "--set", assignment, database_url=database_url)
        line = one_line_error(run)
        assert assignment.split("=")[0] in line and "requests_per_hour, burst_limit" in line
    shown = json.loads(
        (await cli("--source", "us_state_dept", "--json", database_url=database_url)).stdout
    )
    assert shown[0]["requests_per_hour"] == 60


async def test_unknown_source_and_set_without_source_exit_2(database_url: str) -> None:
    line = one_line_error(await cli("--source", "atlantis", database_url=database_url))
    assert "atlantis" in line and "us_state_dept" in line
    line = one_line_error(
        await cli("--source", "atlantis", "--set", "requests_per_hour=5", database_url=database_url)
    )
    assert "atlantis" in line
    line = one_line_error(await cli("--set", "requests_per_hour=5", database_url=database_url))
    assert "--source" in line

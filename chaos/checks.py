"""The final accounting of a chaos run: the store against the catalogue, jobs against Temporal.

* **expected**: every country of every source, as the project's parsers read the catalogue now.
* **stored**: rows of ``advisories`` (per source).
* **quarantined**: expected countries that are not stored but are held by an open quarantine
  (``dead_letter_jobs`` status ``open``/``requeued``; an open *index* quarantine holds every
  unstored country of its source).
* **lost** = expected − stored − quarantined (must be 0).
* **stale**: stored, but not the catalogue's current content, and not quarantined: an update
  that was lost (must be 0).
* **duplicate versions**: (source, country, content_hash) stored more than once in
  ``advisory_versions`` (the waves never bring back an earlier content; must be 0).
* **stuck jobs**: ``scrape_jobs`` rows still ``started``/``pending`` whose workflow run is closed
  (so nothing will ever move them; rows of a run still going are not stuck; must be 0).
  Rows left ``retry`` by a closed run are reported too (``orphaned_retry``).
* **workflows still running**: anything but an open quarantine still running at the end (a
  workflow that never finishes; must be 0).
* **recovered**: quarantines requeued successfully (``dead_letter_jobs`` status ``recovered``).
* **superseded quarantines**: open quarantines whose country is stored at its current content
  anyway (a later cycle fetched it); nothing is lost, but the dead-letter queue shows work that
  needs none.
* **mirror mismatches**: running quarantine workflows and open ``dead_letter_jobs`` rows that
  disagree.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from advisories.sources import SOURCES
from chaos import catalogue
from chaos.temporal import describe, is_running, list_ids

INDEX_COUNTRY = "*"
_OPEN = ("open", "requeued")


@dataclass
class SourceCount:
    """The accounting of one source."""

    source: str
    expected: int = 0
    stored: int = 0
    quarantined: int = 0
    lost: int = 0
    stale: int = 0
    duplicate_versions: int = 0
    quarantines_open: int = 0
    quarantines_superseded: int = 0
    recovered: int = 0
    lost_countries: list[str] = field(default_factory=list)
    stale_countries: list[str] = field(default_factory=list)
    unexpected_countries: list[str] = field(default_factory=list)


@dataclass
class StuckJob:
    job_key: str
    kind: str
    country: str | None
    status: str
    workflow_status: str
    error: str | None


@dataclass
class Accounting:
    """Everything the run is judged on."""

    sources: list[SourceCount]
    stuck: list[StuckJob]
    orphaned_retry: list[StuckJob]
    still_running: list[str]
    mirror_mismatches: list[str]
    open_quarantines: list[dict[str, Any]]
    versions_total: int

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.sources)

    @property
    def ok(self) -> bool:
        return (
            self.total("lost") == 0
            and self.total("duplicate_versions") == 0
            and self.total("stale") == 0
            and not self.stuck
            and not self.still_running
        )

    def failures(self) -> list[str]:
        out = []
        if self.total("lost"):
            out.append(f"lost {self.total('lost')}")
        if self.total("stale"):
            out.append(f"stale {self.total('stale')}")
        if self.total("duplicate_versions"):
            out.append(f"duplicate versions {self.total('duplicate_versions')}")
        if self.stuck:
            out.append(f"stuck jobs {len(self.stuck)}")
        if self.still_running:
            out.append(f"workflows still running {len(self.still_running)}")
        return out

    def to_json(self) -> dict[str, Any]:
        totals = {
            name: self.total(name)
            for name in (
                "expected",
                "stored",
                "quarantined",
                "lost",
                "stale",
                "duplicate_versions",
                "quarantines_open",
                "quarantines_superseded",
                "recovered",
            )
        }
        totals["stuck"] = len(self.stuck)
        totals["orphaned_retry"] = len(self.orphaned_retry)
        totals["workflows_still_running"] = len(self.still_running)
        totals["mirror_mismatches"] = len(self.mirror_mismatches)
        totals["versions_total"] = self.versions_total
        return {
            "ok": self.ok,
            "totals": totals,
            "sources": [asdict(s) for s in self.sources],
            "stuck_jobs": [asdict(s) for s in self.stuck],
            "orphaned_retry_jobs": [asdict(s) for s in self.orphaned_retry],
            "workflows_still_running": self.still_running,
            "mirror_mismatches": self.mirror_mismatches,
            "open_quarantines": self.open_quarantines,
        }


async def account(database_url: str, client: Client, catalogue_root: Path) -> Accounting:
    """Compare the store with the catalogue and the jobs with Temporal."""
    expected = await asyncio.to_thread(catalogue.expected, catalogue_root)
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        stored_rows = await conn.fetch("SELECT source, country, content_hash FROM advisories")
        quarantine_rows = await conn.fetch(
            "SELECT workflow_id, source, country, job_key, failure_kind, status, attempts,"
            " requeue_count, message FROM dead_letter_jobs ORDER BY workflow_id"
        )
        duplicate_rows = await conn.fetch(
            "SELECT source, count(*) AS n FROM (SELECT source, country, content_hash"
            " FROM advisory_versions GROUP BY 1, 2, 3 HAVING count(*) > 1) d GROUP BY 1"
        )
        versions_total = int(await conn.fetchval("SELECT count(*) FROM advisory_versions"))
        job_rows = await conn.fetch(
            "SELECT job_key, kind, country, status, workflow_id, run_id, error FROM scrape_jobs"
            " WHERE status IN ('started', 'pending', 'retry') ORDER BY id"
        )
    finally:
        await conn.close()

    stored: dict[str, dict[str, str]] = {s: {} for s in SOURCES}
    for row in stored_rows:
        stored.setdefault(row["source"], {})[row["country"]] = row["content_hash"]
    open_rows = [r for r in quarantine_rows if r["status"] in _OPEN]
    duplicates = {r["source"]: int(r["n"]) for r in duplicate_rows}

    sources: list[SourceCount] = []
    for source, truth in expected.items():
        mine = stored.get(source, {})
        held = {r["country"] for r in open_rows if r["source"] == source}
        index_held = INDEX_COUNTRY in held
        wanted = set(truth.hashes)
        missing = wanted - set(mine)
        quarantined = {c for c in missing if index_held or c in held}
        lost = sorted(missing - quarantined)
        stale = sorted(
            c for c in wanted & set(mine) if mine[c] != truth.hashes[c] and c not in held
        )
        current = {c for c in wanted & set(mine) if mine[c] == truth.hashes[c]}
        superseded = [
            r
            for r in open_rows
            if r["source"] == source
            and (r["country"] in current or (r["country"] == INDEX_COUNTRY and current == wanted))
        ]
        sources.append(
            SourceCount(
                source=source,
                expected=len(wanted),
                stored=len(wanted & set(mine)),
                quarantined=len(quarantined),
                lost=len(lost),
                stale=len(stale),
                duplicate_versions=duplicates.get(source, 0),
                quarantines_open=len([r for r in open_rows if r["source"] == source]),
                quarantines_superseded=len(superseded),
                recovered=len(
                    [
                        r
                        for r in quarantine_rows
                        if r["source"] == source and r["status"] == "recovered"
                    ]
                ),
                lost_countries=lost,
                stale_countries=stale,
                unexpected_countries=sorted(set(mine) - wanted),
            )
        )

    stuck, orphaned = await _stuck_jobs(client, job_rows, open_rows)
    running = await list_ids(client, "ExecutionStatus = 'Running'")
    quarantines_running = set(
        await list_ids(
            client, "ExecutionStatus = 'Running' AND WorkflowType = 'QuarantineWorkflow'"
        )
    )
    still_running = sorted(set(running) - quarantines_running)
    open_ids = {r["workflow_id"] for r in open_rows}
    mismatches = [
        f"running, but not open in dead_letter_jobs: {w}"
        for w in sorted(quarantines_running - open_ids)
    ]
    mismatches += [
        f"open in dead_letter_jobs, but not running: {w}"
        for w in sorted(open_ids - quarantines_running)
    ]
    return Accounting(
        sources=sources,
        stuck=stuck,
        orphaned_retry=orphaned,
        still_running=still_running,
        mirror_mismatches=mismatches,
        open_quarantines=[
            {
                "workflow_id": r["workflow_id"],
                "source": r["source"],
                "country": r["country"],
                "kind": r["failure_kind"],
                "status": r["status"],
                "attempts": r["attempts"],
                "requeue_count": r["requeue_count"],
                "message": (r["message"] or "")[:200],
            }
            for r in open_rows
        ],
        versions_total=versions_total,
    )


async def _stuck_jobs(
    client: Client, rows: list[asyncpg.Record], open_quarantines: list[asyncpg.Record]
) -> tuple[list[StuckJob], list[StuckJob]]:
    """Unfinished job rows whose workflow run is closed (and that no requeue is running)."""
    requeueing = {r["job_key"] for r in open_quarantines if r["status"] == "requeued"}
    status_of: dict[tuple[str, str | None], str] = {}
    stuck: list[StuckJob] = []
    orphaned: list[StuckJob] = []
    for row in rows:
        workflow_id, run_id = _owner(row["job_key"], row["workflow_id"], row["run_id"])
        if workflow_id is None or row["job_key"] in requeueing:
            continue
        key = (workflow_id, run_id)
        if key not in status_of:
            try:
                description = await describe(client, workflow_id, run_id, within=15)
                status_of[key] = (
                    "RUNNING"
                    if is_running(description)
                    else (description.status.name if description.status else "?")
                )
            except Exception as exc:
                status_of[key] = f"unknown ({type(exc).__name__})"
        if status_of[key] == "RUNNING":
            continue
        job = StuckJob(
            job_key=row["job_key"],
            kind=row["kind"],
            country=row["country"],
            status=row["status"],
            workflow_status=status_of[key],
            error=(row["error"] or "")[:200] or None,
        )
        (orphaned if row["status"] == "retry" else stuck).append(job)
    return stuck, orphaned


def _owner(
    job_key: str, workflow_id: str | None, run_id: str | None
) -> tuple[str | None, str | None]:
    """The workflow run a job belongs to: ``<workflow id>/<run id>/...`` keys name it."""
    parts = job_key.split("/")
    if len(parts) >= 3 and len(parts[1]) == 36:
        return parts[0], parts[1]
    return workflow_id, run_id

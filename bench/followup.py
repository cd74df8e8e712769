"""Follow-up freshness: one government raises a country, how soon do the others' views follow?

:func:`followup_freshness` takes a complete crawl, changes one country to level 4 at every
source that lists it — the trigger source (GOV.UK) in its index and document, the others only
in their per-country documents (their index entries stay, so only a forced re-poll sees the
change; the US feed is the index, so its item changes) — then runs one cycle of the trigger
source and measures, from that cycle's start, when each other source's follow-up stored the
change (``changes.detected_at``). The edits are helpers the follow-up test uses too.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from rich.table import Table
from temporalio.client import Client

from activities.types import ScrapeSourceResult
from advisories.models import Level
from advisories.parsers import parser_for
from advisories.settings import Settings
from advisories.sources import get_source
from bench.crawl import catalogue_file
from bench.stack import BenchError
from replay.synthetic import set_level
from starter.schedules import scrape_input
from workflows import ScrapeSourceWorkflow

#: The source whose raise starts the follow-ups (it states levels 1, 3 and 4).
TRIGGER = "uk_foreign_office"
#: The source whose index is a feed carrying every advisory.
FEED_SOURCE = "us_state_dept"

_ITEM = re.compile(rb"<item>.*?</item>", re.DOTALL)
_LEVEL_PHRASE = re.compile(rb"Level\s*[1-4]\s*:\s*[A-Za-z][A-Za-z ]*[A-Za-z]")
_LEVEL_PHRASES = {
    Level.NORMAL_PRECAUTIONS: b"Level 1: Exercise Normal Precautions",
    Level.INCREASED_CAUTION: b"Level 2: Exercise Increased Caution",
    Level.RECONSIDER_TRAVEL: b"Level 3: Reconsider Travel",
    Level.DO_NOT_TRAVEL: b"Level 4: Do Not Travel",
}


def set_document_level(
    root: Path, source: str, country: str, level: Level | int, *, document_path: str
) -> None:
    """Give ``country`` a new level in its per-country document only; the index stays.

    The edit is :func:`replay.synthetic.set_level`'s, made on a scratch copy of the source's
    catalogue; only the document is copied back.

    Raises:
        KeyError: if the catalogue has no such country.
        ValueError: if the source cannot state ``level`` (or has no synthetic edit).
    """
    with tempfile.TemporaryDirectory(prefix="followup-") as scratch:
        shutil.copytree(root / source, Path(scratch) / source)
        set_level(Path(scratch), source, country, level)
        changed = catalogue_file(Path(scratch), source, document_path)
        target = catalogue_file(root, source, document_path)
        shutil.copyfile(changed, target.with_suffix(target.suffix + ".tmp"))
        target.with_suffix(target.suffix + ".tmp").replace(target)


def set_feed_level(root: Path, country: str, level: Level | int) -> None:
    """Give ``country``'s item in the US feed a new level (title and Threat-Level category).

    Raises:
        KeyError: if no item of the feed is about ``country``.
    """
    spec = get_source(FEED_SOURCE)
    path = catalogue_file(root, FEED_SOURCE, spec.index_path)
    feed = path.read_bytes()
    items = list(_ITEM.finditer(feed))
    if not items:
        raise KeyError(f"{path} has no <item>")
    head, tail = feed[: items[0].start()], feed[items[-1].end() :]
    parser = parser_for(FEED_SOURCE)
    now = datetime.now(UTC)
    for item in items:
        try:
            entries = parser.parse_index(head + item[0] + tail, url=str(path), fetched_at=now)
        except Exception:  # an item the parser refuses on its own is not the one wanted
            continue
        if [e.country for e in entries] != [country]:
            continue
        changed = _LEVEL_PHRASE.sub(_LEVEL_PHRASES[Level(level)], item[0])
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_bytes(feed[: item.start()] + changed + feed[item.end() :])
        temporary.replace(path)
        return
    raise KeyError(f"the {FEED_SOURCE} feed at {path} has no item for {country!r}")


async def pick_country(conn: asyncpg.Connection) -> str:
    """A country the trigger source, the US feed and Canada all list (below 4 where possible)."""
    country = await conn.fetchval(
        """
        SELECT t.country FROM advisories t
        JOIN advisories f ON f.country = t.country AND f.source = $2
        JOIN advisories c ON c.country = t.country AND c.source = 'canada_travel'
        WHERE t.source = $1 AND NOT (t.withdrawn OR f.withdrawn OR c.withdrawn)
          AND t.country !~ '-'
        ORDER BY greatest(t.level, f.level, c.level) = 4, t.country LIMIT 1
        """,
        TRIGGER,
        FEED_SOURCE,
    )
    if country is None:
        raise BenchError("no country listed by the UK, the US and Canada")
    return str(country)


async def change_elsewhere(
    conn: asyncpg.Connection, root: Path, country: str, *, trigger: str = TRIGGER
) -> dict[str, int]:
    """A new level for ``country`` in the document of every other source listing it (their
    index entries unchanged): 4, or 3 where it already is 4. Returns the levels set, by
    source; a source whose catalogue cannot be edited so is left out."""
    rows = await conn.fetch(
        """
        SELECT e.source, e.document_path, a.level FROM index_entries e
        JOIN advisories a ON a.source = e.source AND a.country = e.country
        WHERE e.country = $1 AND e.source <> $2 AND NOT e.withdrawn ORDER BY e.source
        """,
        country,
        trigger,
    )
    changed = {}
    for row in rows:
        source, document_path = row["source"], row["document_path"]
        level = Level.RECONSIDER_TRAVEL if row["level"] == 4 else Level.DO_NOT_TRAVEL
        try:
            if document_path is None:
                if source != FEED_SOURCE:
                    continue  # an index carrying advisories that this module cannot edit
                await asyncio.to_thread(set_feed_level, root, country, level)
            else:
                await asyncio.to_thread(
                    set_document_level, root, source, country, level, document_path=document_path
                )
        except (KeyError, ValueError):
            continue  # a source the synthetic catalogue cannot change this way
        changed[source] = int(level)
    return changed


async def _trigger_cycle(
    client: Client, settings: Settings, *, within: float
) -> ScrapeSourceResult:
    spec = get_source(TRIGGER)
    try:
        return await asyncio.wait_for(
            client.execute_workflow(
                ScrapeSourceWorkflow.run,
                scrape_input(spec, settings),
                id=f"bench-followup-{TRIGGER}-{uuid.uuid4().hex[:8]}",
                task_queue=spec.priority.task_queue,
            ),
            timeout=within,
        )
    except TimeoutError:
        raise BenchError(f"the {TRIGGER} cycle did not end within {within:.0f} s") from None


async def followup_freshness(
    client: Client,
    settings: Settings,
    *,
    dsn: str,
    catalogue: Path,
    within: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Seconds from the trigger cycle's start to each other source's stored follow-up change.

    Args:
        dsn: The database the worker uses, holding a complete crawl.
        catalogue: The catalogue the replay server serves (edited here).
        within: Longest wait for the follow-ups, seconds.

    Raises:
        BenchError: if the cycle starts no follow-up or one does not store the change in time.
    """
    conn = await asyncpg.connect(dsn)
    try:
        country = await pick_country(conn)
        level = await conn.fetchval(
            "SELECT level FROM advisories WHERE source = $1 AND country = $2", TRIGGER, country
        )
        if level == Level.DO_NOT_TRAVEL:
            # Already at 4: lower it first (a lowering starts no follow-up), so it can rise.
            await asyncio.to_thread(
                set_level, catalogue, TRIGGER, country, Level.NORMAL_PRECAUTIONS
            )
            await _trigger_cycle(client, settings, within=within)
        changed = await change_elsewhere(conn, catalogue, country)
        await asyncio.to_thread(set_level, catalogue, TRIGGER, country, Level.DO_NOT_TRAVEL)
        mark = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM source_requests"))
        started = datetime.now(UTC)
        result = await _trigger_cycle(client, settings, within=within)
        if not result.followups:
            raise BenchError(f"raising {country} at {TRIGGER} started no follow-up")
        runs: dict[str, ScrapeSourceResult] = {}
        for workflow_id in result.followups:
            handle = client.get_workflow_handle(workflow_id, result_type=ScrapeSourceResult)
            try:
                run = await asyncio.wait_for(handle.result(), timeout=within)
            except TimeoutError:
                raise BenchError(f"follow-up {workflow_id} did not end in {within:.0f} s") from None
            runs[run.source] = run
        detected = {
            r["source"]: r["detected_at"]
            for r in await conn.fetch(
                "SELECT source, min(detected_at) AS detected_at FROM changes"
                " WHERE country = $1 AND detected_at >= $2 GROUP BY 1",
                country,
                started,
            )
        }
        requests = {
            r["source"]: (int(r["n"]), int(r["documents"]))
            for r in await conn.fetch(
                "SELECT source, count(*) AS n, count(*) FILTER (WHERE kind = 'document')"
                " AS documents FROM source_requests WHERE id > $1 GROUP BY 1",
                mark,
            )
        }
    finally:
        await conn.close()
    if TRIGGER not in detected:
        raise BenchError(f"the {TRIGGER} cycle did not store the raise of {country}")
    sources: dict[str, Any] = {}
    for source, run in sorted(runs.items()):
        seen = detected.get(source)
        sources[source] = {
            "workflow_id": next(w for w in result.followups if w.startswith(f"followup-{source}-")),
            "changed_at_source": source in changed,
            "level_set": changed.get(source),
            "stored_at": seen.isoformat() if seen else None,
            "lag_seconds": round((seen - started).total_seconds(), 2) if seen else None,
            "requests": requests.get(source, (0, 0))[0],
            "documents": requests.get(source, (0, 0))[1],
            "countries_planned": run.countries_planned,
            "followups_started": len(run.followups),
        }
    missing = [
        s for s, row in sources.items() if row["changed_at_source"] and row["lag_seconds"] is None
    ]
    if missing:
        raise BenchError(f"follow-ups of {', '.join(missing)} stored no change of {country}")
    trigger_lag = round((detected[TRIGGER] - started).total_seconds(), 2)
    log(
        f"follow-up: {TRIGGER} raised {country} ({trigger_lag} s); "
        + ", ".join(f"{s} {row['lag_seconds']} s" for s, row in sources.items())
    )
    return {
        "trigger": TRIGGER,
        "country": country,
        "trigger_stored_seconds": trigger_lag,
        "sources": sources,
    }


def followup_table(section: dict[str, Any]) -> Table:
    """The section as a table, like the others (``bench.report``)."""
    table = Table(
        title=(
            f"Follow-up freshness ({section['trigger']} raised {section['country']} to 4,"
            f" stored {section['trigger_stored_seconds']} s after its cycle started)"
        ),
        title_justify="left",
    )
    for column in ("source", "changed there", "lag s", "requests", "documents", "follow-ups"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, row in section["sources"].items():
        lag = row["lag_seconds"]
        table.add_row(
            source,
            "yes" if row["changed_at_source"] else "no",
            "-" if lag is None else f"{lag:.2f}",
            str(row["requests"]),
            str(row["documents"]),
            str(row["followups_started"]),
        )
    return table

"""The real Nederland Wereldwijd history of Burkina Faso, served in order, stores exactly
the real changes.

The three documents are the REAL ``traveladvice`` XML of 2026-09-23, 09-24 and
10-07 (``replay/captures/nl_nederland_wereldwijd/history/``), served unmodified at
their real path. The list (the index) at each step is the real list excerpt's
Burkina Faso record with ``lastmodified`` and ``introduction`` taken from the
document served, marked ``_synthetic`` (the list was not captured on those days).

What the real history holds: 09-23 → 09-24 one real edit (republished: "Laatst
gewijzigd op" and ``lastmodified`` moved, a "Fiche de voyage" block added,
colours unchanged: rood, oranje); 09-24 → 10-07 only the daily "Nog steeds geldig
op" date, which must not make a version, even when the document is fetched.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from lxml import etree
from temporalio.testing import WorkflowEnvironment

from activities.types import ScrapeSourceResult
from advisories.sources import SOURCES
from advisories.sources._synthetic import SYNTHETIC_KEY
from advisories.sources.nl_nederland_wereldwijd import INDEX_PATH, SOURCE_ID, document_path
from replay.server import ReplayServer
from starter.schedules import scrape_input
from tests.conftest import make_settings
from tests.integration.helpers import running_worker
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration
SPEC = SOURCES[SOURCE_ID]
CAPTURES = Path(__file__).resolve().parents[2] / "replay" / "captures" / SOURCE_ID
DAYS = ("09-23", "09-24", "10-07")
HISTORY = [CAPTURES / "history" / f"traveladvice_BFA_2026-{day}.xml" for day in DAYS]
LIST = CAPTURES / "traveladvice_list_12-item-excerpt_2026-09.json"
_STILL_VALID = re.compile(rb"\| Nog steeds geldig op: \d{2}-\d{2}-\d{4}")


def list_for(document: bytes) -> bytes:
    """The list on the day ``document`` was served: its one record, times and text from it."""
    [record] = [r for r in json.loads(LIST.read_bytes()) if r["isocode"] == "BFA"]
    root = etree.fromstring(document)
    step: dict[str, Any] = {
        SYNTHETIC_KEY: "the real list record with lastmodified and introduction of the document",
        **record,
        "lastmodified": root.findtext("lastmodified"),
        "introduction": root.findtext("introduction"),
    }
    return json.dumps([step], ensure_ascii=False).encode("utf-8")


def serve(root: Path, document: bytes) -> None:
    """Put ``document`` and its day's list where the replay server's directory mode finds them."""
    base = root / SOURCE_ID
    files = {
        document_path("BFA").lstrip("/") + ".xml": document,
        INDEX_PATH.lstrip("/") + ".json": list_for(document),
    }
    for relative, body in files.items():  # the document before the list that points to it
        (base / relative).parent.mkdir(parents=True, exist_ok=True)
        (base / relative).write_bytes(body)


def real_edits(before: bytes, after: bytes) -> int:
    """1 if the raw documents differ in more than whitespace and the still-valid date."""

    def words(body: bytes) -> bytes:
        return b" ".join(_STILL_VALID.sub(b"", body).split())

    return int(words(before) != words(after))


async def test_real_burkina_faso_history_gives_the_real_changes(
    temporal_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    bodies = [path.read_bytes() for path in HISTORY]
    # What the raw documents say, independently of the parser: one real edit, then none.
    assert [real_edits(a, b) for a, b in itertools.pairwise(bodies)] == [1, 0]
    assert bodies[1] != bodies[2]  # the re-stamp is a different body all the same

    root = tmp_path / "catalogue"
    serve(root, bodies[0])
    client = temporal_env.client
    conn = await asyncpg.connect(database_url)
    try:
        with ReplayServer(root, manifest=None, directory=root) as server:
            settings = make_settings(
                database_url=database_url,
                replay_base_url=server.base_url,
                rate_limits_enabled=False,
            )
            results: list[ScrapeSourceResult] = []
            async with running_worker(client, settings):
                runs: list[tuple[bytes, list[str] | None]] = [
                    (bodies[0], None),
                    (bodies[1], None),
                    (bodies[2], None),
                    # The list did not move, so the cycle fetches nothing; fetch the
                    # re-stamped document anyway, as a `schedule --country BF` would.
                    (bodies[2], ["BF"]),
                ]
                for step, (body, countries) in enumerate(runs):
                    serve(root, body)
                    results.append(
                        await client.execute_workflow(
                            ScrapeSourceWorkflow.run,
                            scrape_input(SPEC, settings, countries=countries),
                            id=f"test-nl-history-{step}",
                            task_queue=SPEC.priority.task_queue,
                        )
                    )
            fetched = server.stats().count(source=SOURCE_ID, path=document_path("BFA"))
        assert [r.countries_planned for r in results] == [1, 1, 0, 1]
        assert [r.versions_created for r in results] == [1, 1, 0, 0]
        assert [r.countries_quarantined for r in results] == [[], [], [], []]
        # Fetched at 09-23, at 09-24 and once more (forced) at 10-07.
        assert fetched == 3
        changes = await conn.fetch(
            "SELECT country, kind, level_before, level_after FROM changes"
            " WHERE source = $1 ORDER BY id",
            SOURCE_ID,
        )
        assert [tuple(c) for c in changes] == [("BF", "new", None, 4), ("BF", "text", 4, 4)]
        versions = await conn.fetch(
            "SELECT level, regional_level, raw_level, source_updated_at FROM advisory_versions"
            " WHERE source = $1 ORDER BY id",
            SOURCE_ID,
        )
        assert [(v["level"], v["regional_level"], v["raw_level"]) for v in versions] == [
            (4, None, "rood; delen: oranje"),
            (4, None, "rood; delen: oranje"),
        ]
        assert [v["source_updated_at"].isoformat() for v in versions] == [
            "2026-04-15T07:56:37.045000+00:00",
            "2026-09-24T07:15:53.695000+00:00",
        ]
        kinds = {c["kind"]: 0 for c in changes}
        for change in changes:
            kinds[change["kind"]] += 1
        print(f"\nBurkina Faso, 3 real versions: {kinds}, re-stamps stored: 0")
    finally:
        await conn.close()

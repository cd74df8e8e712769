"""The worker's Prometheus endpoint: Temporal SDK metrics and the project's, on one ``/metrics``.

A runtime from ``worker.telemetry.runtime_with_prometheus`` on a free port, the
project's workers (``running_worker``) on a client of that runtime, real scrape
cycles (real dev server, PostgreSQL, replay server), then a real GET of ``/metrics``.

The counts asserted are of everything this process's workers ran, so this module has
a dev server of its own: on the shared one, a task another test left on the project's
task queues could run here and be counted.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from activities.types import ScrapeSourceResult
from advisories.settings import Settings
from advisories.sources import get_source
from replay import FaultRule
from replay.server import ReplayServer
from starter.schedules import scrape_input
from tests.conftest import dev_server, free_port, make_settings
from tests.integration.helpers import running_worker
from worker.telemetry import JOBS, runtime_with_prometheus
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration

SOURCE = "us_state_dept"
FEED_PATH = "/_res/rss/TAsTWs.xml"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of the Prometheus text format: (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = dict(_LABEL.findall(match["labels"] or ""))
        samples.append((match["name"], labels, float(match["value"])))
    return samples


def value(
    samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str
) -> float | None:
    """The sum over the series of ``name`` whose labels include ``labels`` (None: no series)."""
    found = [
        v for n, ls, v in samples if n == name and all(ls.get(k) == w for k, w in labels.items())
    ]
    return sum(found) if found else None


@pytest.fixture(scope="module")
async def own_temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server for this module alone."""
    async with dev_server() as env:
        yield env


class MetricsRun:
    """A runtime serving ``/metrics`` on a free port and a client of that runtime."""

    def __init__(self, runtime: Runtime, bind: str, client: Client) -> None:
        self.runtime = runtime
        self.bind = bind
        self.client = client

    @classmethod
    async def start(cls, temporal_env: WorkflowEnvironment) -> MetricsRun:
        bind = f"127.0.0.1:{free_port()}"
        runtime = runtime_with_prometheus(bind)
        client = await Client.connect(
            temporal_env.client.service_client.config.target_host, runtime=runtime
        )
        return cls(runtime, bind, client)

    async def cycle(self, settings: Settings) -> ScrapeSourceResult:
        """One scrape cycle of ``SOURCE``, started by this client."""
        spec = get_source(SOURCE)
        result: ScrapeSourceResult = await self.client.execute_workflow(
            ScrapeSourceWorkflow.run,
            scrape_input(spec, settings),
            id=f"scrape-{SOURCE}-metrics-{uuid.uuid4().hex[:8]}",
            task_queue=spec.priority.task_queue,
        )
        return result

    async def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """GET ``/metrics`` and parse it."""
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://{self.bind}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return parse_metrics(response.text)


async def test_metrics_endpoint_serves_sdk_and_project_metrics(
    own_temporal_env: WorkflowEnvironment, database_url: str, replay_server: ReplayServer
) -> None:
    settings = make_settings(database_url=database_url, replay_base_url=replay_server.base_url)
    run = await MetricsRun.start(own_temporal_env)
    async with running_worker(run.client, settings):
        result = await run.cycle(settings)
    assert result.versions_created == 213
    samples = await run.samples()

    # Temporal SDK metrics: the workflow and its activities, by type and task queue.
    queue = get_source(SOURCE).priority.task_queue
    completed = value(
        samples,
        "temporal_workflow_completed_total",
        workflow_type="ScrapeSourceWorkflow",
        task_queue=queue,
        namespace="default",
    )
    assert completed == 1
    for activity in ("fetch_index", "finish_cycle"):
        executions = value(
            samples,
            "temporal_activity_execution_latency_count",
            activity_type=activity,
            task_queue=queue,
        )
        assert executions == 1, activity
    assert value(samples, "temporal_num_pollers", task_queue=queue) is not None

    # The project's: requests by source and status (robots.txt is absent: 404).
    assert value(samples, "advisory_source_requests_total", source=SOURCE, status="200") == 1
    assert value(samples, "advisory_source_requests_total", source=SOURCE, status="404") == 1
    sources = {ls["source"] for n, ls, _ in samples if n == "advisory_source_requests_total"}
    assert sources == {SOURCE}


def test_metric_facade_checks_label_names() -> None:
    expected = "takes labels source, kind, status; got kind, source, state"
    with pytest.raises(ValueError, match=expected):
        JOBS.add(1, {"source": SOURCE, "state": "success", "kind": "index"})
    with pytest.raises(ValueError, match="cannot go down"):
        JOBS.add(-1, {"source": SOURCE, "status": "success", "kind": "index"})


def test_metrics_port_in_use_is_one_clear_error() -> None:
    bind = f"127.0.0.1:{free_port()}"
    first: Runtime = runtime_with_prometheus(bind)
    with pytest.raises(RuntimeError, match=f"cannot serve metrics on {bind}"):
        runtime_with_prometheus(bind)
    assert first.metric_meter is not None


@pytest.fixture
def healed(replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server, with its faults cleared after the test."""
    yield replay_server
    replay_server.clear_faults()


async def test_cycles_count_jobs_changes_waits_and_dead_letters(
    own_temporal_env: WorkflowEnvironment, database_url: str, healed: ReplayServer
) -> None:
    """Needs the telemetry hooks of the ``store`` package (jobs, changes, waits, dead letters)."""
    settings = make_settings(database_url=database_url, replay_base_url=healed.base_url)
    run = await MetricsRun.start(own_temporal_env)
    async with running_worker(run.client, settings):
        first = await run.cycle(settings)
        assert first.versions_created == 213
        # The feed answers 404: the index fails for good and is quarantined.
        healed.set_faults(
            FaultRule(source=SOURCE, path_prefix=FEED_PATH, kind="status", status=404)
        )
        with pytest.raises(WorkflowFailureError):
            await run.cycle(settings)
        # The quarantine's mirror is written by its own (abandoned) child workflow; on a
        # loaded machine that can take a while (bounded: 60 s).
        for _ in range(600):
            samples = await run.samples()
            if value(samples, "advisory_dead_letters_total") is not None:
                break
            await asyncio.sleep(0.1)
        # The quarantine waits for a person; end it so no later test lists it.
        conn = await asyncpg.connect(database_url)
        try:
            quarantined = await conn.fetch("SELECT workflow_id FROM dead_letter_jobs")
        finally:
            await conn.close()
        for row in quarantined:
            await run.client.get_workflow_handle(row["workflow_id"]).terminate("test over")

    assert value(samples, "advisory_jobs_total") is not None, (
        "no job counts: the telemetry hooks of store/jobs.py are not applied"
    )
    jobs = {
        (ls["kind"], ls["status"]): v
        for n, ls, v in samples
        if n == "advisory_jobs_total" and ls["source"] == SOURCE
    }
    assert jobs == {
        ("index", "started"): 2,
        ("index", "success"): 1,
        ("index", "failure"): 1,
        ("index", "dead_letter"): 1,
        ("cycle", "started"): 1,
        ("cycle", "success"): 1,
    }
    changes = {ls["kind"]: v for n, ls, v in samples if n == "advisory_changes_total"}
    assert changes == {"new": 213}
    assert value(samples, "advisory_dead_letters_total", source=SOURCE, kind="http_4xx") == 1
    # robots.txt, then the feed 1.5 s later at the earliest (the source's minimum delay).
    waits = value(samples, "advisory_rate_limit_wait_seconds_count", source=SOURCE)
    assert waits is not None and waits >= 1
    waited = value(samples, "advisory_rate_limit_wait_seconds_sum", source=SOURCE)
    assert waited is not None and 0 < waited <= 2 * 1.5 * waits
    assert value(samples, "advisory_source_requests_total", source=SOURCE, status="404") == 2

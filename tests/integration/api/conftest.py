"""Fixtures of the API tests: a database filled by a real crawl, and the real service.

Names other suites rely on (the dashboard's browser test reuses them; keep them stable):

* ``crawled_database_url`` (package scope): DSN of a migrated database that a REAL crawl
  filled — the project's workers on the session's Temporal dev server, one cycle of every
  source against the replay server serving the small synthetic catalogue (US: the real
  feed). Treat it as read-only; a test that writes takes ``fresh_crawled_database_url``.
* ``api_server`` (package scope): base URL (``http://127.0.0.1:<port>``) of ``python -m
  api`` running as a subprocess on ``crawled_database_url``, once ``/healthz`` answered 200.
* ``fresh_crawled_database_url`` (function scope): a private copy of the crawled database.
* ``start_api(database_url)``: a context manager running another service process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from replay.server import ReplayServer
from replay.synthetic import CatalogueSummary
from schema.migrate import migrate
from tests.conftest import free_port, make_settings
from tests.integration.helpers import REPO, crawl, running_worker

#: The crawled database, before any service connected (copies are made from it).
_TEMPLATE_PREFIX = "api_crawled_"


def _dsn(server_dsn: str, database: str) -> str:
    return server_dsn.rsplit("/", 1)[0] + f"/{database}"


async def _admin(server_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="package")
async def crawled_template(
    postgres_server: str, temporal_env: WorkflowEnvironment, catalogue: CatalogueSummary
) -> AsyncIterator[str]:
    """Name of a database filled by one real crawl of every source; nobody stays connected."""
    name = f"{_TEMPLATE_PREFIX}{uuid.uuid4().hex[:8]}"
    await _admin(postgres_server, f'CREATE DATABASE "{name}"')
    url = _dsn(postgres_server, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    # The catalogue is only read: one replay server over it for the whole package.
    with ReplayServer(catalogue.root, manifest=None, directory=catalogue.root) as server:
        settings = make_settings(
            database_url=url, replay_base_url=server.base_url, rate_limits_enabled=False
        )
        async with running_worker(temporal_env.client, settings):
            results = await crawl(temporal_env.client, settings, "api")
    assert all(r.versions_created > 0 for r in results.values()), results
    yield name
    await _admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _copy(postgres_server: str, template: str) -> str:
    name = f"api_{uuid.uuid4().hex[:12]}"
    await _admin(postgres_server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


@pytest.fixture(scope="package")
async def crawled_database_url(postgres_server: str, crawled_template: str) -> AsyncIterator[str]:
    """DSN of the crawled database the package's ``api_server`` reads (do not write to it)."""
    name = await _copy(postgres_server, crawled_template)
    yield _dsn(postgres_server, name)
    await _admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def fresh_crawled_database_url(
    postgres_server: str, crawled_template: str
) -> AsyncIterator[str]:
    """A private copy of the crawled database, for a test that writes, dropped after it."""
    name = await _copy(postgres_server, crawled_template)
    yield _dsn(postgres_server, name)
    await _admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_healthy(
    base_url: str, process: subprocess.Popen[bytes], log: Path, within: float
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"python -m api exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"python -m api not healthy within {within} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def start_api(
    database_url: str,
    *,
    log_dir: Path,
    env: dict[str, str] | None = None,
    wait_healthy: bool = True,
) -> Iterator[str]:
    """``python -m api --port <free>`` on ``database_url`` until the block ends; its base URL.

    It runs in ``log_dir`` (no ``.env`` of the repository applies) and logs there.
    """
    port = free_port()
    log = log_dir / f"api-{port}.log"
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "--port", str(port)],
            cwd=log_dir,
            # PYTHONPATH: the checkout's packages, whatever the editable install maps.
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "DATABASE_URL": database_url,
                **(env or {}),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if wait_healthy:
            _wait_healthy(base_url, process, log, within=60)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="package")
def api_server(
    crawled_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of the real service on the crawled database (a subprocess, healthy)."""
    with start_api(crawled_database_url, log_dir=tmp_path_factory.mktemp("api")) as base_url:
        yield base_url

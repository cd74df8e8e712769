"""PostgreSQL going away and coming back under a running service (a private cluster).

The service starts while PostgreSQL is down and answers 503 with ``Retry-After``; it
serves once PostgreSQL is up; when PostgreSQL stops it answers 503 again (also for
responses it had cached) and recovers by itself when PostgreSQL is back, without a
restart of the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from schema.migrate import migrate
from starter import devstack
from tests.conftest import free_port
from tests.integration.api.conftest import start_api
from tests.integration.api.helpers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A PostgreSQL cluster of this test's own (data directory, port), removed after it."""
    data_dir = tmp_path / "pg" / "data"
    data_dir.parent.mkdir()
    port = free_port()
    try:
        yield data_dir, port
    finally:
        devstack.remove_postgres_data(data_dir)


def _start(data_dir: Path, port: int) -> str:
    return devstack.start_postgres(
        data_dir,
        port=port,
        log_file=data_dir.parent / "postgres.log",
        database="advisories",
        fast=True,
    )


async def _status(http: httpx.AsyncClient, path: str, wanted: int) -> httpx.Response | None:
    try:
        response = await http.get(path)
    except httpx.HTTPError:
        return None
    return response if response.status_code == wanted else None


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text
    assert set(response.json()) == {"error"}
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_503_while_postgres_is_down_and_recovery_without_restart(
    private_postgres: tuple[Path, int], tmp_path: Path
) -> None:
    data_dir, port = private_postgres
    dsn = await asyncio.to_thread(_start, data_dir, port)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    await asyncio.to_thread(devstack.stop_postgres, data_dir)

    with start_api(dsn, log_dir=tmp_path, wait_healthy=False) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
            # Started with PostgreSQL down: up, but unavailable.
            down = await wait_until(lambda: _status(http, "/healthz", 503), within=30)
            _assert_unavailable(down)
            _assert_unavailable(await http.get("/v1/advisories"))

            await asyncio.to_thread(_start, data_dir, port)
            await wait_until(lambda: _status(http, "/healthz", 200), within=30)
            served = await wait_until(lambda: _status(http, "/v1/advisories", 200), within=30)
            assert served.json() == {"advisories": []}
            cached = await http.get("/v1/advisories")
            assert cached.headers["etag"] == served.headers["etag"]

            await asyncio.to_thread(devstack.stop_postgres, data_dir)
            # The data endpoints stop vouching for data they cannot check: 503, cached or not.
            _assert_unavailable(
                await wait_until(lambda: _status(http, "/v1/advisories", 503), within=30)
            )
            _assert_unavailable(await http.get("/v1/sources"))
            _assert_unavailable(await http.get("/healthz"))
            page = await http.get("/changes")  # a browser's page: HTML, not JSON
            assert page.status_code == 503 and int(page.headers["retry-after"]) > 0
            assert page.headers["content-type"].startswith("text/html")
            # Long enough for several reconnect attempts (the service's and the pool's).
            await asyncio.sleep(4)
            _assert_unavailable(await http.get("/v1/sources"))

            await asyncio.to_thread(_start, data_dir, port)
            await wait_until(lambda: _status(http, "/v1/advisories", 200), within=30)
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/v1/sources")).status_code == 200

    # Two outages (at start, then the stop), each logged once going down and once back up;
    # the retries in between (many, a second apart) log nothing at INFO.
    log = (tmp_path / f"api-{httpx.URL(base_url).port}.log").read_text()
    assert "Traceback" not in log, log
    assert "asyncpg" not in log, log
    went_down = [line for line in log.splitlines() if " WARNING api.service: " in line]
    assert len(went_down) == 2, log
    assert all("database unavailable: " in line and line.split(": ")[-1] for line in went_down)
    up = [line for line in log.splitlines() if " INFO api.service: " in line]
    assert [line.split(": ", 1)[1] for line in up] == ["database available again"] * 2, log

"""The dev stack's library: a real PostgreSQL, a real Temporal dev server, real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from advisories.search_attributes import SEARCH_ATTRIBUTES
from starter import devstack
from starter.devstack import postgres, supervisor

pytestmark = pytest.mark.integration

needs_postgres = pytest.mark.skipif(
    devstack.find_postgres_bin_dir() is None, reason="PostgreSQL binaries not installed"
)
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A directory every user can traverse (like a checkout under /work or /home)."""
    path = Path(tempfile.mkdtemp(prefix="devstack-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cleanup_postgres() -> Iterator[list[Path]]:
    """Data dirs to stop and delete (with any /var/tmp relocation) after the test."""
    data_dirs: list[Path] = []
    yield data_dirs
    for data_dir in data_dirs:
        devstack.remove_postgres_data(data_dir)


async def _select_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval("SELECT 1")
        return value
    finally:
        await conn.close()


@needs_postgres
async def test_postgres_start_is_idempotent_and_stop_frees_the_port(
    reachable_dir: Path, cleanup_postgres: list[Path]
) -> None:
    data_dir = reachable_dir / "state" / "postgres"
    cleanup_postgres.append(data_dir)
    log_file = reachable_dir / "state" / "logs" / "postgres.log"
    port = devstack.find_free_port()

    dsn = devstack.start_postgres(data_dir, port=port, log_file=log_file, fast=True)

    assert dsn == f"postgresql://postgres@127.0.0.1:{port}/advisories"
    assert devstack.postgres_running(data_dir)
    assert not data_dir.is_symlink(), "a reachable data dir must not be relocated"
    assert await _select_one(dsn) == 1
    pid = devstack.postgres_pid(data_dir)

    # Again, while running: same DSN, same server; a second database is created on the way.
    assert devstack.start_postgres(data_dir, port=port, log_file=log_file, fast=True) == dsn
    assert devstack.postgres_pid(data_dir) == pid
    other = devstack.start_postgres(
        data_dir, port=port, log_file=log_file, fast=True, database="other_db"
    )
    assert other.endswith(f":{port}/other_db")
    assert await _select_one(other) == 1

    # Asking for another port while it runs is an error, not a silent second server.
    with pytest.raises(devstack.DevStackError, match="already runs on port"):
        devstack.start_postgres(data_dir, port=devstack.find_free_port(), log_file=log_file)

    devstack.stop_postgres(data_dir)
    assert not devstack.postgres_running(data_dir)
    assert pid is not None and not devstack.pid_alive(pid)
    assert not _accepts_connections(port)
    devstack.stop_postgres(data_dir)  # not running: no error

    # A restart keeps the data (no second initdb).
    assert devstack.start_postgres(data_dir, port=port, log_file=log_file, fast=True) == dsn
    assert await _select_one(other) == 1
    devstack.stop_postgres(data_dir)
    assert "initialised a new cluster" in log_file.read_text()
    assert log_file.read_text().count("initialised a new cluster") == 1


@needs_postgres
@pytest.mark.skipif(os.geteuid() != 0, reason="relocation only happens as root")
async def test_postgres_data_dir_unreachable_by_postgres_user_is_relocated(
    tmp_path: Path, cleanup_postgres: list[Path]
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    data_dir = private / "postgres"
    cleanup_postgres.append(data_dir)
    log_file = private / "postgres.log"

    dsn = devstack.start_postgres(
        data_dir, port=devstack.find_free_port(), log_file=log_file, fast=True
    )

    assert data_dir.is_symlink()
    real = data_dir.resolve()
    assert str(real).startswith("/var/tmp/travel-advisories-")
    assert real.stat().st_uid == psutil.Process(devstack.postgres_pid(data_dir)).uids().real
    assert "not reachable by the postgres user" in log_file.read_text()
    assert await _select_one(dsn) == 1

    # The state dir deleted by hand (symlink gone): the next start gets a fresh cluster.
    devstack.stop_postgres(data_dir)
    data_dir.unlink()
    port = devstack.find_free_port()
    devstack.start_postgres(data_dir, port=port, log_file=log_file, fast=True)
    assert data_dir.resolve() == real
    assert log_file.read_text().count("initialised a new cluster") == 2

    devstack.remove_postgres_data(data_dir)
    assert not data_dir.exists() and not data_dir.is_symlink()
    assert not real.exists()
    assert not devstack.port_in_use(port)


@needs_postgres
async def test_postgres_without_client_tools_creates_the_database_with_asyncpg(
    reachable_dir: Path, cleanup_postgres: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_bin = devstack.find_postgres_bin_dir()
    assert real_bin is not None
    server_only = reachable_dir / "bin"  # like a server-only install: no psql, no createdb
    server_only.mkdir()
    for tool in real_bin.iterdir():
        if tool.name not in {"psql", "createdb"}:
            (server_only / tool.name).symlink_to(tool)
    monkeypatch.setattr(postgres, "find_postgres_bin_dir", lambda: server_only)
    data_dir = reachable_dir / "pg"
    cleanup_postgres.append(data_dir)

    # Called from inside a running event loop, as an async fixture would.
    dsn = devstack.start_postgres(
        data_dir,
        port=devstack.find_free_port(),
        log_file=reachable_dir / "pg.log",
        database="from_asyncpg",
        fast=True,
    )

    assert dsn.endswith("/from_asyncpg")
    assert await _select_one(dsn) == 1


@needs_postgres
def test_postgres_refuses_a_taken_port(reachable_dir: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(devstack.DevStackError, match=f"port {port} is already in use"):
            devstack.start_postgres(
                reachable_dir / "pg", port=port, log_file=reachable_dir / "pg.log"
            )
    assert not (reachable_dir / "pg").exists(), "nothing is initialised for a taken port"


def test_supervisor_start_status_stop(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "sleeper.log"

    pid = devstack.start_service(
        "sleeper", SLEEPER, env=os.environ, log_file=log_file, state_dir=tmp_path
    )

    status = devstack.service_status("sleeper", state_dir=tmp_path)
    assert status.running and status.pid == pid
    assert status.rss_mb is not None and status.rss_mb > 0
    assert status.uptime is not None and status.uptime.total_seconds() >= 0
    assert os.getsid(pid) == pid, "services run detached, in their own session"
    assert devstack.pid_path("sleeper", tmp_path).exists()
    assert "starting sleeper" in log_file.read_text()
    # Starting again while it runs leaves it alone.
    again = devstack.start_service(
        "sleeper", SLEEPER, env=os.environ, log_file=log_file, state_dir=tmp_path
    )
    assert again == pid

    assert devstack.stop_service("sleeper", state_dir=tmp_path) is True

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not devstack.service_status("sleeper", state_dir=tmp_path).running
    assert not devstack.pid_path("sleeper", tmp_path).exists()
    assert devstack.stop_service("sleeper", state_dir=tmp_path) is False


def test_supervisor_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    log_file = tmp_path / "stubborn.log"
    pid = devstack.start_service(
        "stubborn", [sys.executable, "-c", code], log_file=log_file, state_dir=tmp_path
    )
    deadline = time.monotonic() + 10
    while "ready" not in log_file.read_text():  # SIGTERM must arrive after the handler is set
        assert time.monotonic() < deadline, "the child never became ready"
        time.sleep(0.05)

    assert devstack.stop_service("stubborn", timeout=0.5, state_dir=tmp_path) is True
    assert not devstack.pid_alive(pid)


def test_supervisor_treats_a_reused_pid_as_stale(tmp_path: Path) -> None:
    pid = devstack.start_service("sleeper", SLEEPER, state_dir=tmp_path)
    pid_file = devstack.pid_path("sleeper", tmp_path)
    record = json.loads(pid_file.read_text())

    # The pid now belongs to another process (this test runner): not our service.
    pid_file.write_text(json.dumps({**record, "pid": os.getpid()}))
    assert not devstack.service_status("sleeper", state_dir=tmp_path).running
    assert devstack.stop_service("sleeper", state_dir=tmp_path) is False  # and we survive

    # The process died behind our back: the pid file is stale.
    pid_file.write_text(json.dumps(record))
    assert devstack.service_status("sleeper", state_dir=tmp_path).running
    os.kill(pid, signal.SIGKILL)
    supervisor._children.pop(pid).wait(5)
    assert not devstack.service_status("sleeper", state_dir=tmp_path).running
    assert devstack.stop_service("sleeper", state_dir=tmp_path) is False
    assert not pid_file.exists()


def test_temporal_binary_is_the_cli() -> None:
    binary = devstack.temporal_binary()
    assert binary.is_file() and os.access(binary, os.X_OK)
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith("temporal version")


def test_temporal_dev_server_starts_with_search_attributes(tmp_path: Path) -> None:
    port, ui_port = devstack.find_free_port(), devstack.find_free_port()
    log_file = tmp_path / "logs" / "temporal.log"
    pid = devstack.start_temporal(tmp_path, port=port, ui_port=ui_port, log_file=log_file)
    try:
        assert devstack.service_status("temporal", state_dir=tmp_path).pid == pid
        assert (tmp_path / "temporal.db").exists()
        address = f"127.0.0.1:{port}"
        listed = subprocess.run(
            [
                devstack.temporal_binary(),
                "operator",
                "search-attribute",
                "list",
                "--address",
                address,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name in SEARCH_ATTRIBUTES:
            assert name in listed
        # A second dev server on the same port is refused with the port named.
        with pytest.raises(devstack.DevStackError, match=f"port {port} is already in use"):
            devstack.start_temporal(
                tmp_path / "other", port=port, ui_port=devstack.find_free_port(), log_file=log_file
            )
    finally:
        devstack.stop_service("temporal", state_dir=tmp_path)
    assert not devstack.pid_alive(pid)
    assert not _accepts_connections(port)

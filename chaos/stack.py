"""The processes of a chaos run, each on loopback, each its own process, all in one temp dir.

PostgreSQL (a throw-away cluster on a free port), the Temporal dev server (a SQLite file in the
temp dir, WAL mode, so a restart keeps its state), the replay server (``python -m replay``), the
advisory service (``python -m api``) and any number of ``python -m worker`` processes. Built
on :mod:`starter.devstack`; synchronous (the scenario runs these calls in threads).
:meth:`Stack.close` stops everything this stack started and removes its data; it is safe to
call more than once and after a partial start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from advisories.settings import Settings
from starter import devstack

LOOPBACK = devstack.LOOPBACK
DATABASE = "advisories"


class StackError(RuntimeError):
    """A component of the stack did not start or stop as it should."""


@dataclass(frozen=True, slots=True)
class Ports:
    """The loopback ports of one run."""

    postgres: int
    temporal: int
    temporal_ui: int
    replay: int
    api: int

    @classmethod
    def free(cls) -> Ports:
        """Five distinct ports nothing listens on right now."""
        ports: set[int] = set()
        for _ in range(50):
            ports.add(devstack.find_free_port())
            if len(ports) == 5:
                break
        if len(ports) < 5:
            raise StackError("could not find five free loopback ports")
        postgres, temporal, ui, replay, api = sorted(ports)
        return cls(postgres=postgres, temporal=temporal, temporal_ui=ui, replay=replay, api=api)


@dataclass
class StopReport:
    """How a SIGTERM went."""

    seconds: float
    graceful: bool


@dataclass
class Stack:
    """Every process of one chaos run.

    Attributes:
        root: The run's temp directory (removed by :meth:`close` unless ``keep``).
        catalogue: The replay catalogue directory.
        latency_ms: Latency the replay server adds to every document request.
        settings_env: ``NAME=value`` settings for the workers and the CLI.
        keep: Leave ``root`` (logs, data) in place after :meth:`close`.
    """

    root: Path
    catalogue: Path
    latency_ms: float
    settings_env: Mapping[str, str]
    keep: bool = False
    ports: Ports = field(default_factory=Ports.free)
    workers: dict[str, int] = field(default_factory=dict)
    _worker_serial: int = 0
    _closed: bool = False

    # ------------------------------------------------------------------ paths and addresses

    @classmethod
    def create(
        cls,
        *,
        catalogue: Path | None,
        latency_ms: float,
        settings_env: Mapping[str, str],
        keep: bool,
    ) -> Stack:
        """A stack in a new temp directory (the catalogue goes inside it when not given)."""
        root = Path(tempfile.mkdtemp(prefix="chaos-"))
        return cls(
            root=root,
            catalogue=catalogue if catalogue is not None else root / "catalogue",
            latency_ms=latency_ms,
            settings_env=dict(settings_env),
            keep=keep,
        )

    @property
    def state_dir(self) -> Path:
        """Pid files, logs and the Temporal SQLite file."""
        return self.root / "state"

    @property
    def postgres_data(self) -> Path:
        return self.root / "postgres" / "data"

    @property
    def temporal_db(self) -> Path:
        return self.state_dir / "temporal.db"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self.ports.postgres}/{DATABASE}"

    @property
    def temporal_address(self) -> str:
        return f"{LOOPBACK}:{self.ports.temporal}"

    @property
    def replay_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.replay}"

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.api}"

    def log(self, name: str) -> Path:
        """The log file of service ``name``."""
        return devstack.log_path(name, self.state_dir)

    def env(self) -> dict[str, str]:
        """Environment of the workers and the CLI: ours without any project setting, plus the
        run's settings (so no outside ``DATABASE_URL``, ``TEMPORAL_*`` … leaks in)."""
        own = {name.upper() for name in Settings.model_fields}
        env = {
            k: v
            for k, v in os.environ.items()
            if k.upper() not in own and not k.startswith(("TEMPORAL_", "OTEL_", "PG"))
        }
        env.update(self.settings_env)
        env.update(
            {
                "TEMPORAL_ADDRESS": self.temporal_address,
                "TEMPORAL_UI_URL": f"http://{LOOPBACK}:{self.ports.temporal_ui}",
                "DATABASE_URL": self.database_url,
                "REPLAY_BASE_URL": self.replay_url,
                "STATE_DIR": str(self.state_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # ------------------------------------------------------------------ PostgreSQL

    def start_postgres(self) -> float:
        """Start (initialising on first use) the cluster; seconds it took."""
        started = time.monotonic()
        devstack.start_postgres(
            self.postgres_data,
            port=self.ports.postgres,
            log_file=self.log("postgres"),
            database=DATABASE,
            fast=True,
        )
        return time.monotonic() - started

    def stop_postgres(self) -> float:
        """``pg_ctl stop -m fast``; seconds it took."""
        started = time.monotonic()
        devstack.stop_postgres(self.postgres_data)
        if devstack.postgres_running(self.postgres_data):
            raise StackError("PostgreSQL is still running after pg_ctl stop")
        return time.monotonic() - started

    # ------------------------------------------------------------------ Temporal

    def start_temporal(self) -> float:
        """Start the dev server on the run's port and SQLite file; seconds until healthy."""
        started = time.monotonic()
        devstack.start_temporal(
            self.state_dir,
            port=self.ports.temporal,
            ui_port=self.ports.temporal_ui,
            log_file=self.log("temporal"),
        )
        return time.monotonic() - started

    def temporal_pid(self) -> int | None:
        return devstack.service_status("temporal", state_dir=self.state_dir).pid

    def stop_temporal(self, *, timeout: float = 30.0) -> StopReport:
        """SIGTERM the dev server's process group; SIGKILL only if it outlives ``timeout``."""
        pid = self.temporal_pid()
        if pid is None:
            raise StackError("the Temporal dev server is not running")
        started = time.monotonic()
        graceful = _terminate_group(pid, timeout)
        devstack.stop_service("temporal", state_dir=self.state_dir)  # pid file; SIGKILL leftovers
        return StopReport(seconds=time.monotonic() - started, graceful=graceful)

    # ------------------------------------------------------------------ replay server

    def start_replay(self, *, timeout: float = 30.0) -> int:
        """``python -m replay`` over the catalogue with the base latency; its pid."""
        argv = [sys.executable, "-m", "replay", "--directory", str(self.catalogue)]
        argv += ["--no-manifest", "--port", str(self.ports.replay)]
        argv += ["--latency-ms", str(self.latency_ms), "--log-level", "WARNING"]
        pid = devstack.start_service(
            "replay", argv, env=self.env(), state_dir=self.state_dir, cwd=self.root
        )
        deadline = time.monotonic() + timeout
        while not _accepts(self.ports.replay):
            if not _alive(pid):
                raise StackError(f"the replay server exited: see {self.log('replay')}")
            if time.monotonic() > deadline:
                raise StackError(f"the replay server did not listen within {timeout:.0f} s")
            time.sleep(0.05)
        return pid

    # ------------------------------------------------------------------ advisory service

    def start_api(self, *, timeout: float = 60.0) -> int:
        """``python -m api`` on the run's database; its pid once it listens."""
        argv = [sys.executable, "-m", "api", "--host", LOOPBACK, "--port", str(self.ports.api)]
        pid = devstack.start_service(
            "api", argv, env=self.env(), state_dir=self.state_dir, cwd=self.root
        )
        deadline = time.monotonic() + timeout
        while not _accepts(self.ports.api):
            if not _alive(pid):
                raise StackError(f"the advisory service exited: see {self.log('api')}")
            if time.monotonic() > deadline:
                raise StackError(f"the advisory service did not listen within {timeout:.0f} s")
            time.sleep(0.05)
        return pid

    # ------------------------------------------------------------------ workers

    def start_worker(self) -> tuple[str, int]:
        """Start one more ``python -m worker``; its name and pid."""
        self._worker_serial += 1
        name = f"worker-{self._worker_serial}"
        pid = devstack.start_service(
            name,
            [sys.executable, "-m", "worker"],
            env=self.env(),
            state_dir=self.state_dir,
            cwd=self.root,
        )
        self.workers[name] = pid
        return name, pid

    def kill_worker(self, name: str) -> int:
        """``kill -9`` a worker (no chance to finish or report anything); its pid."""
        pid = self.workers.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid, 10.0)
        devstack.stop_service(name, state_dir=self.state_dir)  # the pid file
        return pid

    def dead_workers(self) -> dict[str, int]:
        """Workers that exited without being told to (name → pid)."""
        return {name: pid for name, pid in self.workers.items() if not _alive(pid)}

    def forget_worker(self, name: str) -> None:
        """Drop a dead worker from the books (and its pid file)."""
        pid = self.workers.pop(name, None)
        if pid is not None:
            _reap(pid, 1.0)
        devstack.stop_service(name, state_dir=self.state_dir)

    @staticmethod
    def worker_identity(pid: int) -> str:
        """The identity the Python SDK gives a worker's pollers by default."""
        return f"{pid}@{socket.gethostname()}"

    # ------------------------------------------------------------------ cleanup

    def close(self) -> list[str]:
        """Stop every process this stack started and remove its data; what was left running."""
        if self._closed:
            return []
        self._closed = True
        names = [*sorted(self.workers), "api", "replay", "temporal"]
        for name in names:
            with contextlib.suppress(Exception):
                devstack.stop_service(name, timeout=10.0, state_dir=self.state_dir)
        self.workers.clear()
        with contextlib.suppress(Exception):
            if self.keep:
                devstack.stop_postgres(self.postgres_data)
            else:
                devstack.remove_postgres_data(self.postgres_data)
        left = self._leftovers()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        return left

    def _leftovers(self) -> list[str]:
        """Processes still running from this run's directory (there should be none)."""
        left = []
        marker = str(self.root)
        for process in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(process.info["cmdline"] or [])
                if marker in cmdline and process.pid != os.getpid():
                    left.append(f"{process.pid}: {cmdline[:120]}")
        if devstack.postgres_running(self.postgres_data):
            left.append("postgres")
        return left


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _reap(pid: int, timeout: float) -> None:
    """Wait for ``pid`` to exit, collecting its status if it is our child."""
    with contextlib.suppress(psutil.Error, subprocess.TimeoutExpired):
        psutil.Process(pid).wait(timeout)


def _terminate_group(pid: int, timeout: float) -> bool:
    """SIGTERM ``pid``'s process group; whether every member left within ``timeout``."""
    try:
        members = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return True
    deadline = time.monotonic() + timeout
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    _reap(pid, timeout)
    while time.monotonic() < deadline:
        if not any(_alive(p.pid) for p in members):
            return True
        time.sleep(0.05)
    return False

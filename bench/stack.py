"""The processes a benchmark runs against, started with the dev stack's own helpers.

One :class:`BenchStack` per bench run, everything under one temporary directory: a PostgreSQL
cluster (``devstack.start_postgres``), the Temporal dev server (``devstack.start_temporal``: SQLite
in WAL mode), the replay server and the workers (``devstack.start_service``: detached, own process
group, pid files under ``<root>/run``). :meth:`BenchStack.close` stops every one of them and removes
the PostgreSQL data; it is safe to call more than once and after a failed start.

Also here: what the bench measures about processes — CPU seconds of a process tree
(:func:`tree_cpu_seconds`) and peak resident memory sampled every 50 ms (:class:`RssSampler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from advisories.queues import SCRAPING, SCRAPING_HIGH_PRIORITY
from schema.migrate import migrate
from starter import devstack
from store.pool import create_pool
from store.ratelimits import RateLimitStore

#: The repository the bench belongs to: services run this checkout's code, whatever is installed.
REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
BENCH_DATABASE = "bench"
#: Settings that must not leak from the caller's environment into the services: each points
#: somewhere (a remote Temporal, an OTLP collector, real sources) or is set by the bench itself.
_STRIPPED_PREFIXES = ("TEMPORAL_", "OTEL_", "PG")
_STRIPPED = frozenset(
    {
        "DATABASE_URL",
        "REPLAY_BASE_URL",
        "SOURCE_BASE_URLS",
        "RATE_LIMITS_ENABLED",
        "ROBOTS_TXT_ENABLED",
        "SCHEDULE_OVERRIDES",
        "SCHEDULE_JITTER_SECONDS",
        "STATE_DIR",
    }
)


class BenchError(RuntimeError):
    """Something the bench needs did not work (a service did not start, a run failed)."""


def base_environment() -> dict[str, str]:
    """This process's environment without what must not reach the services (see above)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _STRIPPED and not k.startswith(_STRIPPED_PREFIXES)
    }
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --------------------------------------------------------------------------------------------
# Measuring processes
# --------------------------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def tree_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process, its live descendants and the children it reaped.

    A PostgreSQL backend that exits is reaped by the postmaster, whose ``children_*`` times then
    carry it, so the difference of two readings counts every backend that ran in between.
    """
    if pid is None:
        return 0.0
    total = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        for process in _tree(pid):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                t = process.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (all CPUs, since boot)."""
    t = psutil.cpu_times()
    # Linux counts guest time inside user time; steal is another machine's.
    return sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


async def wait_for_quiet(
    own: Mapping[str, int | None], *, threshold_cores: float, within: float, window: float = 1.0
) -> tuple[float, float]:
    """Wait (at most ``within`` s) until the rest of the machine is quiet; a shared machine's
    other work (someone's test suite) is the largest error of a wall-clock comparison.

    Quiet: over the last ``window`` seconds, CPU used by anything but the ``own`` process trees
    stayed under ``threshold_cores``. Returns ``(seconds waited, that load in cores)``.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        meter = CpuMeter(own)
        meter.start()
        busy = machine_busy_seconds()
        await asyncio.sleep(window)
        other = machine_busy_seconds() - busy - sum(meter.stop().values())
        load = max(0.0, other) / window
        waited = loop.time() - started
        if load < threshold_cores or waited >= within:
            return round(waited, 1), round(load, 2)


class RssSampler:
    """Peak RSS (MiB, descendants included) of named processes, sampled on a thread.

    Use as a context manager around the measured run; :attr:`peaks_mb` holds the result. Listing
    a process's descendants scans every process of the machine (~10 ms), so the trees are listed
    again only every ``refresh`` seconds; reading the RSS of a known process is cheap.
    """

    def __init__(
        self, pids: Mapping[str, int | None], *, interval: float = 0.05, refresh: float = 1.0
    ) -> None:
        self._pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._interval = interval
        self._refresh = refresh
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._peaks: dict[str, int] = dict.fromkeys(self._pids, 0)
        self._trees: dict[str, list[psutil.Process]] = {}
        self._listed_at = -1e9
        self.samples = 0

    def _list_trees(self) -> None:
        for name, pid in self._pids.items():
            try:
                own = psutil.Process(pid)
                # This process: itself only (the services it started are measured on their own).
                self._trees[name] = [own] if pid == os.getpid() else _tree(pid)
            except psutil.NoSuchProcess:
                self._trees[name] = []
        self._listed_at = time.monotonic()

    def _sample(self) -> None:
        if time.monotonic() - self._listed_at > self._refresh:
            self._list_trees()
        for name, processes in self._trees.items():
            rss = 0
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    rss += process.memory_info().rss
            self._peaks[name] = max(self._peaks[name], rss)
        self.samples += 1

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self._interval):
                return

    def sample_once(self) -> dict[str, float]:
        """One reading now (MiB), without the thread."""
        self._sample()
        return self.peaks_mb

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._list_trees()
        self._sample()  # the state at the end counts too

    @property
    def peaks_mb(self) -> dict[str, float]:
        """Peak resident memory per name, MiB."""
        return {name: round(peak / 2**20, 1) for name, peak in self._peaks.items()}


@dataclass
class CpuMeter:
    """CPU seconds used by named process trees between :meth:`start` and :meth:`stop`."""

    pids: Mapping[str, int | None]
    _start: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._start = {name: self._read(name, pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        self.seconds = {
            name: round(self._read(name, pid) - self._start[name], 3)
            for name, pid in self.pids.items()
        }
        return self.seconds

    @staticmethod
    def _read(name: str, pid: int | None) -> float:
        if name == "bench":
            # This process only: its own threads, not the services it started (they are their
            # own process groups, but still our children to psutil).
            t = psutil.Process().cpu_times()
            return t.user + t.system
        return tree_cpu_seconds(pid)


def start_py_spy(pid: int | None, output: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` into ``output`` (collapsed stacks) until :func:`stop_py_spy`.

    Only samples of the thread holding the GIL (``--gil``): a crawl is bound by one
    interpreter, and threads waiting for it would otherwise count as busy.

    Raises:
        BenchError: py-spy is not installed (``pip install py-spy``) or ``pid`` is None.
    """
    binary = Path(sys.executable).parent / "py-spy"
    found = str(binary) if binary.exists() else shutil.which("py-spy")
    if found is None or pid is None:
        raise BenchError("profiling needs py-spy (pip install py-spy) and a process to profile")
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [found, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--gil"]
    argv += ["--output", str(output), "--nonblocking"]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attached before the measured run starts
    return process


def stop_py_spy(process: subprocess.Popen[bytes]) -> None:
    """Stop a recording (SIGINT makes py-spy write its file)."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# --------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------


def _wait_port(port: int, pid: int, log_file: Path, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid):
            raise BenchError(f"process {pid} exited during start-up; see {log_file}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"nothing listens on {LOOPBACK}:{port} after {timeout:.0f} s; see {log_file}")


class BenchStack:
    """PostgreSQL, Temporal, replay server and workers for one bench run.

    Args:
        root: An empty directory the stack owns (logs, pid files, SQLite, PostgreSQL data).
        pg_fast: Start PostgreSQL without fsync (``devstack.start_postgres(fast=True)``).
    """

    def __init__(self, root: Path, *, pg_fast: bool) -> None:
        self.root = root
        self.pg_fast = pg_fast
        self.pg_data = root / "postgres" / "data"
        self.logs = root / "logs"
        self.admin_dsn: str | None = None
        self.temporal_port: int | None = None
        self.replay_port: int | None = None
        self.replay_latency_ms: float | None = None
        self._services: list[str] = []

    # --- lifecycle ----------------------------------------------------------------------

    def start_postgres(self) -> str:
        """Start the cluster; return the DSN of its ``postgres`` database."""
        port = devstack.find_free_port()
        self.admin_dsn = devstack.start_postgres(
            self.pg_data,
            port=port,
            log_file=self.logs / "postgres.log",
            database="postgres",
            fast=self.pg_fast,
        )
        return self.admin_dsn

    def start_temporal(self) -> str:
        """Start the dev server (SQLite in WAL mode); return its address."""
        port = devstack.find_free_port()
        ui_port = devstack.find_free_port()
        self._services.append("temporal")
        devstack.start_temporal(
            self.root, port=port, ui_port=ui_port, log_file=self.logs / "temporal.log"
        )
        self.temporal_port = port
        return self.temporal_address

    @property
    def temporal_address(self) -> str:
        assert self.temporal_port is not None, "start_temporal first"
        return f"{LOOPBACK}:{self.temporal_port}"

    def start_replay(self, catalogue: Path, fixtures: Path, *, latency_ms: float) -> str:
        """(Re)start the replay server on ``catalogue`` with ``latency_ms``; return its URL."""
        self.stop_service("replay")
        port = devstack.find_free_port()
        argv = [sys.executable, "-m", "replay", "--directory", str(catalogue), "--no-manifest"]
        argv += ["--fixtures", str(fixtures), "--port", str(port)]
        argv += ["--latency-ms", f"{latency_ms:g}", "--log-level", "WARNING"]
        log_file = self.logs / "replay.log"
        pid = self._start("replay", argv, base_environment(), log_file)
        _wait_port(port, pid, log_file, timeout=30)
        self.replay_port = port
        self.replay_latency_ms = latency_ms
        return self.replay_url

    @property
    def replay_url(self) -> str:
        assert self.replay_port is not None, "start_replay first"
        return f"http://{LOOPBACK}:{self.replay_port}"

    def start_worker(self, name: str, env: Mapping[str, str]) -> int:
        """Start ``python -m worker`` as service ``name`` with ``env`` added; return its pid."""
        self.stop_service(name)
        full = base_environment()
        full.update(env)
        return self._start(name, [sys.executable, "-m", "worker"], full, self.logs / f"{name}.log")

    def _start(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_file: Path) -> int:
        if name not in self._services:
            self._services.append(name)
        # cwd = the stack's directory: no developer's .env is read by the service.
        return devstack.start_service(
            name, argv, env=env, log_file=log_file, state_dir=self.root, cwd=self.root
        )

    def stop_service(self, name: str) -> None:
        """Stop one service (SIGTERM to its process group, SIGKILL after 10 s)."""
        devstack.stop_service(name, state_dir=self.root)

    def pid(self, name: str) -> int | None:
        """Pid of a running service (``postgres`` included), or None."""
        if name == "postgres":
            return devstack.postgres_pid(self.pg_data)
        status = devstack.service_status(name, state_dir=self.root)
        return status.pid if status.running else None

    def close(self) -> list[str]:
        """Stop everything (workers first, PostgreSQL last); return what is still running."""
        for name in reversed(self._services):
            with contextlib.suppress(Exception):
                self.stop_service(name)
        with contextlib.suppress(Exception):
            devstack.remove_postgres_data(self.pg_data)
        left = [n for n in self._services if self.pid(n) is not None]
        if devstack.postgres_pid(self.pg_data) is not None:
            left.append("postgres")
        return left

    def remove(self) -> None:
        """Delete the stack's directory (after :meth:`close`)."""
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ------------------------------------------------------------------------

    def database_dsn(self, name: str = BENCH_DATABASE) -> str:
        assert self.admin_dsn is not None, "start_postgres first"
        return self.admin_dsn.rsplit("/", 1)[0] + f"/{name}"

    async def fresh_database(self, name: str = BENCH_DATABASE) -> str:
        """Drop and re-create ``name``, apply every migration, seed sources and rate limits.

        Connections still open to the old database (a worker's pool) are cut; asyncpg pools
        replace a closed connection on their next acquire.
        """
        assert self.admin_dsn is not None, "start_postgres first"
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        dsn = self.database_dsn(name)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await create_pool(dsn, max_size=2)
        try:
            await RateLimitStore(pool).ensure_defaults()
        finally:
            await pool.close()
        return dsn


async def wait_worker_polling(client: Client, pid: int, *, within: float = 60.0) -> None:
    """Wait until the worker process ``pid`` polls the scraping queues (workflows and activities).

    A worker's default identity is ``<pid>@<host>``; pollers of stopped workers stay listed for
    minutes, so the pid is what tells this worker apart.
    """
    wanted = [
        (queue, kind)
        for queue in (SCRAPING_HIGH_PRIORITY, SCRAPING)
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    ]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    prefix = f"{pid}@"
    while True:
        if not psutil.pid_exists(pid):
            raise BenchError(f"worker {pid} exited during start-up")
        ready = 0
        for queue, kind in wanted:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=kind,
                )
            )
            if any(p.identity.startswith(prefix) for p in response.pollers):
                ready += 1
        if ready == len(wanted):
            return
        if loop.time() > deadline:
            raise BenchError(f"worker {pid} not polling after {within:.0f} s")
        await asyncio.sleep(0.1)

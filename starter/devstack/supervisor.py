"""A tiny process supervisor: detached services with pid files under ``<state_dir>/run/`` and
logs under ``<state_dir>/logs/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import psutil

from advisories.settings import Settings
from starter.devstack.common import log_header


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


def live_process(path: Path) -> psutil.Process | None:
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
    existing = live_process(pid_file)
    if existing is not None:
        return existing.pid
    log_file = log_file if log_file is not None else log_path(name, state_dir)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(a) for a in argv]
    with log_file.open("ab") as log:
        log_header(log, f"starting {name}: {' '.join(argv)}")
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


def process_group(process: psutil.Process) -> list[psutil.Process]:
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
    members = process_group(process)
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
    if wait_gone(members, timeout):
        signal_all(signal.SIGKILL)
        wait_gone(members, 5)
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
    process = live_process(pid_file)
    if process is not None:
        _terminate(process, timeout)
    pid_file.unlink(missing_ok=True)
    return process is not None


def status_of(process: psutil.Process | None) -> ServiceStatus:
    """What :func:`service_status` reports for ``process`` (stopped for ``None`` or gone)."""
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
    return status_of(live_process(pid_path(name, state_dir)))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(processes: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
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

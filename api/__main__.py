"""``python -m api [--host 127.0.0.1] [--port 8000] [--workers N]``: serve the advisory API.

The service starts whether or not PostgreSQL is up (it answers 503 until it is) and
never writes advisories. ``--workers`` (default ``API_WORKERS``, 1) runs that many
uvicorn processes on the one port; each keeps its own snapshot of the data.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from typing import NoReturn

import uvicorn
from pydantic import ValidationError

from advisories.health import HealthSettings
from advisories.settings import config_errors, get_settings


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {port}")
    return port


def _host(text: str) -> str:
    if text != "localhost":
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None
    return text


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit status 2, as everywhere in the project."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def _parse_args(argv: list[str], default_workers: int) -> argparse.Namespace:
    parser = _Parser(prog="python -m api", description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=_host, default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--port", type=_port, default=8000, help="default 8000")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers,
        help=f"uvicorn worker processes (default API_WORKERS, now {default_workers})",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 16:
        parser.error(f"--workers must be 1-16, not {args.workers}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the service until SIGINT/SIGTERM; the exit status."""
    try:
        settings = get_settings()
        HealthSettings()  # the freshness thresholds of /v1/sources
    except ValidationError as exc:
        print(f"error: invalid configuration: {config_errors(exc)}", file=sys.stderr)
        return 2
    args = _parse_args(sys.argv[1:] if argv is None else argv, settings.api_workers)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        uvicorn.run(
            "api.app:app_from_environment",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=args.access_log,
            log_level=settings.log_level.lower(),
            http="httptools",
            loop="uvloop",
            lifespan="on",
            server_header=False,
        )
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio is imported (the health figures): skip the interpreter's finalisation,
    # which can crash after main returned (sdk-python #300), so the exit status holds.
    os._exit(code)

"""What every part of the dev stack shares: the loopback address, the error type, free ports
and log files.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import IO

LOOPBACK = "127.0.0.1"


class DevStackError(RuntimeError):
    """A dev-stack step failed; the message says which and where its log is."""


def find_free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def last_line(path: Path) -> str:
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


def log_header(log: IO[bytes], message: str) -> None:
    """Mark where a run starts in a log that several runs append to."""
    log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} devstack: {message}\n".encode())
    log.flush()

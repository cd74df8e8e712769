"""``python -m api``'s bad input: one line on stderr, exit status 2, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import REPO

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "99999"], {}, "error: argument --port: port out of range 1-65535: 99999"),
        (["--port", "http"], {}, "error: argument --port: not a port number: 'http'"),
        (["--host", "example.org"], {}, "error: argument --host: not an IP address"),
        (["--workers", "0"], {}, "error: --workers must be 1-16, not 0"),
        (["--bogus"], {}, "error: unrecognized arguments: --bogus"),
        ([], {"API_WORKERS": "0"}, "error: invalid configuration: API_WORKERS:"),
        ([], {"API_POLL_SECONDS": "soon"}, "error: invalid configuration: API_POLL_SECONDS:"),
    ],
)
def test_bad_input_is_one_line(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr

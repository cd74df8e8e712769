"""The api bench's reading of wrk's report (pure)."""

from __future__ import annotations

import pytest

from bench.api import parse_wrk
from bench.stack import BenchError

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:41234/v1/countries/FR
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.12ms    2.01ms  41.30ms   80.12%
    Req/Sec     7.61k   512.33     8.40k    71.00%
  Latency Distribution
     50%    3.80ms
     75%    4.90ms
     90%  612.00us
     99%    1.20s
  75712 requests in 10.00s, 142.11MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   7570.41
Transfer/sec:     14.21MB
"""


def test_parse_wrk_reads_throughput_latency_and_errors() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result["requests_per_second"] == 7570.41
    assert result["requests"] == 75712
    assert result["p50_ms"] == 3.8 and result["p75_ms"] == 4.9
    assert result["p90_ms"] == 0.612  # microseconds converted
    assert result["p99_ms"] == 1200.0  # seconds converted
    assert result["errors"] == 4 + 1 + 2


def test_parse_wrk_without_errors_lines() -> None:
    lines = [
        line for line in WRK_OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line
    ]
    assert parse_wrk("\n".join(lines))["errors"] == 0


def test_parse_wrk_rejects_a_failed_run() -> None:
    with pytest.raises(BenchError, match="wrk printed no result"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")

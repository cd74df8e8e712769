"""``python -m bench [--short] [--out FILE.json]``: run the benchmark, print tables, write JSON.

Sections, in order: parse cost (nothing else running), full crawl A/B at each latency, unchanged
cycle, freshness, follow-up freshness (also in ``--short``: one cycle and its follow-ups),
politeness, requests per day. ``--short`` is the CI mode: a 20-country
catalogue for the UK and Canada, one round per arm and latency without warm-up, short freshness
and politeness; it prints the same tables. The exit status is 0 when nothing is broken, 1 when
something is (see :mod:`bench.report`), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from temporalio.client import Client

from advisories.schedule_spec import parse_timing
from advisories.sources import SOURCES, SyntheticInput, get_source
from bench.api import ApiBenchConfig, api_bench, api_table
from bench.budget import canada_change_rate, requests_per_day
from bench.crawl import (
    CrawlConfig,
    bench_settings,
    crawl_ab,
    expected_countries,
    worker_env,
)
from bench.cycles import freshness, unchanged_cycle
from bench.followup import followup_freshness
from bench.parse_cost import parse_cost
from bench.politeness import politeness
from bench.report import Report, find_problems, render
from bench.stack import REPO, BenchStack, wait_worker_polling
from replay._catalogue import capture_file
from replay.synthetic import build_catalogue
from tests.fixtures_path import REAL_FIXTURES

# Tables piped to a file or a CI log keep their full width instead of 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 220)
progress = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_OUT = Path(".state/bench.json")
#: Sections ``--only`` can pick (requests per day always runs: it is arithmetic).
SECTIONS = ("parse", "crawl", "unchanged", "freshness", "followup", "politeness", "api")


@dataclass(frozen=True)
class BenchConfig:
    """What one bench run does (full or short)."""

    mode: str
    uk_countries: int | None
    canada_destinations: int | None
    crawl: CrawlConfig
    freshness_interval: str
    freshness_timeout: float
    politeness_limits: dict[str, object]
    politeness_timeout: float
    parse_repeats: int
    intervals: dict[str, timedelta] = field(default_factory=dict)
    sections: frozenset[str] = frozenset(SECTIONS)
    api: ApiBenchConfig = field(default_factory=ApiBenchConfig)


def full_config(rounds: int) -> BenchConfig:
    return BenchConfig(
        mode="full",
        uk_countries=None,
        canada_destinations=None,
        crawl=CrawlConfig(
            latencies_ms=(0.0, 20.0), rounds=rounds, warmup=True, timeout=600, quiet_wait=20
        ),
        freshness_interval="1m",
        freshness_timeout=170,
        politeness_limits={
            "requests_per_hour": 240,
            "burst_limit": 8,
            "burst_window_seconds": 10.0,
            "min_delay_seconds": 0.5,
            "respectful_factor": 1.0,
        },
        politeness_timeout=900,
        parse_repeats=30,
    )


def short_config() -> BenchConfig:
    return BenchConfig(
        mode="short",
        uk_countries=20,
        canada_destinations=20,
        crawl=CrawlConfig(latencies_ms=(0.0, 20.0), rounds=1, warmup=False, timeout=120),
        freshness_interval="1m",
        freshness_timeout=100,
        politeness_limits={
            "requests_per_hour": 240,
            "burst_limit": 8,
            "burst_window_seconds": 4.0,
            "min_delay_seconds": 0.25,
            "respectful_factor": 1.0,
        },
        politeness_timeout=120,
        parse_repeats=3,
        api=ApiBenchConfig(duration_s=1.0, warmup_s=0.0, connections=16, rounds=1),
    )


def _git_revision() -> str | None:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def log(message: str) -> None:
    progress.log(message)


async def _section(report: Report, name: str, coro: Any) -> Any:
    """Run one section; a failure is recorded as a problem and the bench goes on."""
    started = time.monotonic()
    try:
        result = await coro
    except Exception as exc:  # BenchError or not: the section failed, the bench goes on
        report.problems.append(f"{name} failed: {type(exc).__name__}: {exc}")
        log(f"[red]{name} failed[/]: {exc}")
        return None
    report.sections[name] = result
    log(f"{name} done in {time.monotonic() - started:.0f} s")
    return result


async def run(stack: BenchStack, config: BenchConfig, report: Report) -> None:
    """Every section, in order; results land in ``report``."""
    # SIGTERM stops the bench like Ctrl-C does: the caller's cleanup runs.
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    wanted = config.sections
    if "parse" in wanted:
        report.sections["parse_cost"] = await asyncio.to_thread(
            parse_cost, REAL_FIXTURES, repeats=config.parse_repeats
        )
        log("parse cost done")

    catalogue = stack.root / "catalogue"
    summary = await asyncio.to_thread(
        build_catalogue,
        catalogue,
        fixtures=REAL_FIXTURES,
        uk_countries=config.uk_countries,
        canada_destinations=config.canada_destinations,
    )
    expected = await asyncio.to_thread(expected_countries, catalogue)
    report.meta["countries"] = expected
    report.meta["catalogue_documents"] = dict(summary.documents)
    await asyncio.to_thread(stack.start_postgres)
    await asyncio.to_thread(stack.start_temporal)
    log(f"stack up: PostgreSQL, Temporal at {stack.temporal_address}; catalogue {expected}")
    client = await Client.connect(stack.temporal_address)

    # Crawl A/B; the highest latency first so that the later sections run at 0 ms.
    crawl_config = config.crawl
    ordered = tuple(sorted(crawl_config.latencies_ms, reverse=True))
    crawl = None
    if "crawl" in wanted:
        crawl = await _section(
            report,
            "crawl",
            crawl_ab(
                stack,
                client,
                catalogue=catalogue,
                fixtures=REAL_FIXTURES,
                expected=expected,
                config=CrawlConfig(
                    latencies_ms=ordered,
                    rounds=crawl_config.rounds,
                    warmup=crawl_config.warmup,
                    timeout=crawl_config.timeout,
                    profile=crawl_config.profile,
                    quiet_cores=crawl_config.quiet_cores,
                    quiet_wait=crawl_config.quiet_wait,
                ),
                log=log,
            ),
        )
    if crawl is not None:
        report.sections["crawl"] = dict(sorted(crawl.items(), key=lambda kv: kv[1]["latency_ms"]))

    # The later sections: replay server at 0 ms, one worker.
    restart = stack.replay_port is None or stack.replay_latency_ms != 0.0
    if restart:
        await asyncio.to_thread(stack.start_replay, catalogue, REAL_FIXTURES, latency_ms=0.0)
    dsn = stack.database_dsn()
    settings = bench_settings(
        database_url=dsn,
        temporal_address=stack.temporal_address,
        replay_url=stack.replay_url,
        rate_limits=False,
    )
    if restart or stack.pid("worker") is None:
        await stack.fresh_database()  # the worker seeds its pool from it at start
        pid = await asyncio.to_thread(stack.start_worker, "worker", worker_env(settings))
        await wait_worker_polling(client, pid)

    unchanged = None
    if {"unchanged", "freshness", "followup"} & wanted:
        unchanged = await _section(
            report,
            "unchanged_cycle",
            unchanged_cycle(
                stack,
                client,
                settings,
                expected=expected,
                within=crawl_config.timeout,
                log=log,
            ),
        )
    if unchanged is not None and "freshness" in wanted:
        await _section(
            report,
            "freshness",
            freshness(
                client,
                settings,
                dsn=dsn,
                catalogue=catalogue,
                interval=config.freshness_interval,
                within=config.freshness_timeout,
                log=log,
            ),
        )
    if unchanged is not None and "followup" in wanted:
        await _section(
            report,
            "followup",
            followup_freshness(
                client,
                settings,
                dsn=dsn,
                catalogue=catalogue,
                within=config.freshness_timeout,
                log=log,
            ),
        )
    if "api" in wanted:
        await _section(
            report,
            "api",
            api_bench(
                stack, client, settings, config=config.api, within=crawl_config.timeout, log=log
            ),
        )
    if "politeness" in wanted:
        await _section(
            report,
            "politeness",
            politeness(
                stack,
                client,
                settings,
                limits=config.politeness_limits,
                expected=expected,
                within=config.politeness_timeout,
                log=log,
            ),
        )

    rate = await asyncio.to_thread(
        canada_change_rate, sorted((REAL_FIXTURES / "canada").glob("index_*.json"))
    )
    # An unchanged cycle's requests, robots.txt apart (counted once a day on its own).
    per_cycle = {
        source: row["requests"] - row["robots"]
        for source, row in (unchanged or {"sources": {}})["sources"].items()
    }
    intervals = {s: config.intervals.get(s, SOURCES[s].priority.interval) for s in SOURCES}
    report.sections["requests_per_day"] = {
        "change_rate": {
            "source": "canada_travel index captures (real)",
            "changed": rate.changed,
            "countries": rate.countries,
            "days": round(rate.days, 2),
            "intervals": rate.intervals,
            "per_country_per_day": round(rate.per_country_per_day, 5),
            "assumption": "every source's countries change at the rate measured on Canada's",
        },
        "sources": requests_per_day(
            intervals=intervals,
            countries=await asyncio.to_thread(live_sizes),
            policies={s: spec.rate_limit for s, spec in SOURCES.items()},
            change_rate=rate.per_country_per_day,
            unchanged_cycle_requests=per_cycle,
            day=datetime(2026, 10, 7, tzinfo=UTC),
        ),
    }


def live_sizes() -> dict[str, int]:
    """Countries per source on the live sites, for the per-day figures (any catalogue size).

    A source served as its real, complete capture (the US feed, the Smartraveller
    export) counts the countries its index lists; the others their full-size
    synthetic imitation, which is built to the live size (GOV.UK's ~225, every
    destination of Canada's index, ...).
    """
    fetched_at = datetime.now(UTC)
    sizes: dict[str, int] = {}
    for spec in SOURCES.values():
        output = spec.synthetic.build(
            SyntheticInput(
                lambda relative: capture_file(relative, REAL_FIXTURES).read_bytes(), 0, None
            )
        )
        if not spec.synthetic.real:
            sizes[spec.id] = output.countries
            continue
        (body,) = (b for b in output.files.values() if isinstance(b, bytes))
        entries = spec.parser.parse_index(body, url=spec.index_path, fetched_at=fetched_at)
        sizes[spec.id] = len({e.country for e in entries})
    return sizes


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--short", action="store_true", help="CI mode: small and quick")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="JSON results file (default %(default)s)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="counted A/B rounds per latency (full mode)"
    )
    parser.add_argument(
        "--pg-fast",
        action="store_true",
        help="PostgreSQL without fsync (both arms); default: durable settings",
    )
    parser.add_argument(
        "--interval",
        action="append",
        default=[],
        metavar="SOURCE=DURATION",
        help="schedule interval for the requests-per-day figures (default: the configured one)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="py-spy the worker (project) / this process (baseline) in each counted crawl run",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        default=[],
        help="run only these sections (repeatable; default: all)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs) at the end"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds must be between 1 and 50")
    intervals = {}
    for item in args.interval:
        source, _, text = item.partition("=")
        try:
            get_source(source)
            every = parse_timing(text).every
        except (ValueError, LookupError) as exc:
            parser.error(f"--interval {item}: {exc}")
        if every is None:
            parser.error(f"--interval {item}: give a duration such as 30m, not a cron")
        intervals[source] = every
    args.intervals = intervals
    return args


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    config = short_config() if args.short else full_config(args.rounds)
    config = dataclasses.replace(
        config,
        crawl=dataclasses.replace(config.crawl, profile=args.profile),
        intervals=args.intervals,
        sections=frozenset(args.only or SECTIONS),
    )
    report = Report(
        meta={
            "mode": config.mode,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "revision": _git_revision(),
            "pg_fast": args.pg_fast,
            "documents_per_second": "HTTP documents stored (indexes + per-country) / wall s",
        }
    )
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    stack = BenchStack(root, pg_fast=args.pg_fast)
    code = 0
    try:
        asyncio.run(run(stack, config, report))
    except (KeyboardInterrupt, asyncio.CancelledError):
        report.problems.append("interrupted")
        code = 130
    except Exception as exc:
        report.problems.append(f"bench failed: {type(exc).__name__}: {exc}")
        progress.print_exception()
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        left = stack.close()
        if left:
            report.problems.append(f"still running after cleanup: {', '.join(left)}")
        if args.keep:
            log(f"kept {root}")
        else:
            stack.remove()
    report.meta["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report.problems = [*report.problems, *find_problems(report.sections)]
    render(report, console)
    if "api" in report.sections:
        console.print(api_table(report.sections["api"]))
    report.write(args.out)
    console.print(f"results: {args.out}")
    if code == 0 and report.problems:
        code = 1
    return code


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # temporalio can crash during interpreter finalisation (sdk-python #300): flush and leave.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)

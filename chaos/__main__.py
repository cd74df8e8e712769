"""``python -m chaos [--short] [--out FILE] [--postgres-down SECONDS] [--keep]``: the chaos run.

Exit status 0 when nothing was lost, no version was duplicated, no job is stuck and every
cycle finished; 1 otherwise (or when the run could not complete); 130 on Ctrl-C. Every process
the run started is stopped and its temp directory removed on the way out, whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
from rich.console import Console
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from chaos import catalogue
from chaos.checks import account
from chaos.profile import FULL, SHORT, Profile
from chaos.report import print_report
from chaos.scenario import Scenario
from chaos.stack import Stack
from schema.migrate import migrate


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--short",
        action="store_true",
        help="CI mode: 20 GOV.UK and 20 Canada countries, 5 s database outage, short pauses",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--postgres-down",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long PostgreSQL stays stopped (default: 30, --short: 5)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temp directory (logs, PostgreSQL data, Temporal db) for a post-mortem",
    )
    return parser.parse_args(argv)


async def _run(profile: Profile, stack: Stack, out: Console, err: Console) -> dict[str, Any]:
    started = time.monotonic()
    setup: dict[str, float] = {}

    def lap(name: str, since: float) -> None:
        setup[name] = round(time.monotonic() - since, 1)

    t = time.monotonic()
    summary = await asyncio.to_thread(
        catalogue.build,
        stack.catalogue,
        uk_countries=profile.uk_countries,
        canada_destinations=profile.canada_destinations,
    )
    lap("catalogue", t)
    err.print(f"catalogue: {dict(summary.countries)} in {stack.catalogue}", highlight=False)
    t = time.monotonic()
    await asyncio.to_thread(stack.start_postgres)
    conn = await asyncpg.connect(stack.database_url, timeout=10)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    lap("postgres", t)
    t = time.monotonic()
    await asyncio.to_thread(stack.start_temporal)
    lap("temporal", t)
    t = time.monotonic()
    await asyncio.to_thread(stack.start_replay)
    lap("replay", t)
    t = time.monotonic()
    await asyncio.to_thread(stack.start_api)
    lap("api", t)
    err.print(
        f"stack up: PostgreSQL {stack.database_url}, Temporal {stack.temporal_address}, "
        f"replay {stack.replay_url}, API {stack.api_url} ({setup})",
        highlight=False,
    )
    # The harness's own client retries through the dev server restart on purpose: keep the
    # SDK core's retry warnings out of the report.
    quiet = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )
    client = await Client.connect(stack.temporal_address, runtime=quiet)
    scenario = Scenario(profile, stack, client, err)
    complete = True
    try:
        await scenario.run()
    except Exception as exc:  # the run could not finish: still account for what happened
        complete = False
        scenario.problem(f"run aborted: {type(exc).__name__}: {exc}")
    accounting = await account(stack.database_url, client, stack.catalogue)
    api_failures = scenario.api.failures()
    result: dict[str, Any] = {
        "profile": profile.to_json(),
        "complete": complete,
        "ok": complete and accounting.ok and not api_failures,
        "failures": accounting.failures() + api_failures + ([] if complete else ["run incomplete"]),
        **accounting.to_json()["totals"],
        "accounting": accounting.to_json(),
        "api": scenario.api.to_json(),
        "setup_seconds": setup,
        "total_seconds": round(time.monotonic() - started, 1),
        "run": scenario.to_json(),
    }
    print_report(out, accounting, result["run"], result["api"])
    verdict = (
        "[green]PASS[/]" if result["ok"] else f"[red]FAIL[/] ({', '.join(result['failures'])})"
    )
    out.print(f"chaos {profile.name}: {verdict} in {result['total_seconds']:.0f} s")
    return result


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    profile = SHORT if args.short else FULL
    if args.postgres_down is not None:
        if not 0 < args.postgres_down <= 600:
            print("error: --postgres-down must be in (0, 600] seconds", file=sys.stderr)
            return 2
        profile = dataclasses.replace(profile, postgres_down_seconds=args.postgres_down)
    out = Console(width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    stack = Stack.create(
        catalogue=None,
        latency_ms=profile.latency_ms,
        settings_env=profile.settings_env(),
        keep=args.keep,
    )
    err.print(f"chaos {profile.name}: working in {stack.root}", highlight=False)
    code = 1
    result: dict[str, Any] | None = None
    try:
        result = asyncio.run(_run(profile, stack, out, err))
        code = 0 if result["ok"] else 1
    except KeyboardInterrupt:
        err.print("interrupted: cleaning up")
        code = 130
    except Exception as exc:
        err.print(f"[red]chaos run failed:[/] {type(exc).__name__}: {exc}")
        result = {"ok": False, "complete": False, "error": f"{type(exc).__name__}: {exc}"}
        code = 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # finish the cleanup whatever comes
            signal.signal(sig, signal.SIG_IGN)
        left = stack.close()
        if left:
            err.print(f"[red]processes left running:[/] {left}")
            code = code or 1
        elif args.keep:
            err.print(f"kept {stack.root}")
    if result is not None and args.out is not None:
        result["processes_left"] = left
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    exit_code = main(sys.argv[1:])
    # temporalio can crash during interpreter finalisation (sdk-python #300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)

"""``python -m worker [--queues Q ...]``: poll the task queues (all by default)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from pydantic import ValidationError

from advisories.health import HealthSettings
from advisories.queues import ALL_QUEUES
from advisories.settings import config_errors, get_settings
from worker.main import run
from worker.memory import tune_malloc
from worker.telemetry import setup_tracing, shutdown_tracing


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument(
        "--queues",
        nargs="+",
        default=list(ALL_QUEUES),
        metavar="QUEUE",
        help=f"task queues to poll (default: all of {', '.join(ALL_QUEUES)})",
    )
    args = parser.parse_args(argv)
    unknown = [q for q in args.queues if q not in ALL_QUEUES]
    if unknown:
        parser.exit(
            2, f"error: unknown queue {', '.join(unknown)}; valid: {', '.join(ALL_QUEUES)}\n"
        )
    return args


async def _main(argv: list[str]) -> int:
    args = _parse_args(argv)
    try:
        settings = get_settings()
        health = HealthSettings()
    except ValidationError as exc:
        print(f"error: invalid configuration: {config_errors(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("worker").info("configuration: %s", settings.safe_summary())
    provider = setup_tracing(service_name="advisory-worker")
    try:
        await run(settings, queues=args.queues, health=health)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutdown_tracing(provider)
    return 0


if __name__ == "__main__":
    tune_malloc()  # before the Temporal core starts its threads
    code = asyncio.run(_main(sys.argv[1:]))
    # temporalio can crash during interpreter finalisation (sdk-python #300):
    # flush and leave without running it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

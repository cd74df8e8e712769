"""``python -m replay``: run the replay server in the foreground until SIGTERM or SIGINT.

The first line on stdout is the base URL (useful with ``--port 0``); one log
line per request goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from replay._catalogue import REAL_ROUTES, ReplayError, default_fixtures_root
from replay._faults import FaultRule
from replay.server import ReplayServer

logger = logging.getLogger("replay")

#: Exit status for a configuration the server cannot start with.
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m replay",
        description="Serve recorded advisory documents at <base URL>/<source id>/<real path>.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--fixtures", type=Path, default=None, help="root of the real captures (and manifest files)"
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=REAL_ROUTES,
        help="routes TOML instead of the registered sources' real-capture routes",
    )
    parser.add_argument(
        "--no-manifest", action="store_true", help="serve only --directory, no real-capture routes"
    )
    parser.add_argument(
        "--directory", type=Path, default=None, help="catalogue laid out as DIR/<source>/<path>"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay added to every document request"
    )
    parser.add_argument("--log-level", default="INFO", help="default %(default)s")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT; the process exit status."""
    args = _parser().parse_args(argv)
    fixtures: Path = args.fixtures if args.fixtures is not None else default_fixtures_root()
    if not fixtures.is_dir():
        print(f"replay: fixtures directory {fixtures} does not exist", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(message)s"
    )
    try:
        server = ReplayServer(
            fixtures,
            manifest=None if args.no_manifest else args.manifest,
            directory=args.directory,
            host=args.host,
            port=args.port,
        )
        if args.latency_ms > 0:
            server.set_faults(FaultRule(latency_ms=args.latency_ms))
    except (ReplayError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    # Block the signals before any thread starts so that every thread inherits
    # the mask and only sigwait() below receives them: no handler races.
    signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        server.start()
    except OSError as exc:
        print(f"replay: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        print(server.base_url, flush=True)
        logger.info(
            "serving %d real-capture routes from %s%s",
            len(server.routes),
            fixtures,
            f" and directory {args.directory}" if args.directory else "",
        )
        received = signal.sigwait(signals)
        logger.info("stopping on %s", signal.Signals(received).name)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

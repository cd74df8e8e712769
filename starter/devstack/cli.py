"""The dev stack's commands: ``up [--demo]``, ``down``, ``restart``, ``status``, ``logs`` and
``clean``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import IO, Annotated, TypeVar

import psutil
import typer
from rich.console import Console
from rich.table import Table

from advisories.settings import Settings, redact_url
from starter.devstack.common import (
    LOOPBACK,
    DevStackError,
    last_line,
    log_header,
    port_in_use,
    tail_lines,
)
from starter.devstack.postgres import (
    postgres_pid,
    postgres_running,
    remove_postgres_data,
    start_postgres,
    stop_postgres,
)
from starter.devstack.stack import API_PORT, API_URL, REPLAY_BASE_URL, REPLAY_PORT, SERVICES, Stack
from starter.devstack.supervisor import (
    live_process,
    pid_alive,
    pid_path,
    process_group,
    start_service,
    stop_service,
    wait_gone,
)
from starter.devstack.temporal import start_temporal

app = typer.Typer(
    help="The dev stack: PostgreSQL, Temporal dev server, replay server (demo) and worker.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")


def _stack(demo: bool | None) -> Stack:
    """The stack for this command; without a flag, demo mode if ``demo.env`` says so."""
    settings = Settings()
    if demo is None:
        demo = (settings.state_dir / "demo.env").exists()
    return Stack.from_settings(settings, demo=demo)


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it (shorter to read)."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _ok(name: str, message: str) -> None:
    console.print(f"[green]✓[/] {name:<10} {message}")


def _skip(name: str, message: str) -> None:
    console.print(f"[cyan]•[/] {name:<10} {message}")


def _fail(step: str, message: str) -> typer.Exit:
    err_console.print(f"[red]✗[/] {step:<10} {message}")
    return typer.Exit(1)


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def _run_step(stack: Stack, step: str, log_name: str, args: Sequence[str]) -> None:
    """Run ``python -m <args>`` to completion, output to its log; one clear line if it fails."""
    log_file = stack.log(log_name)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", *args]
    started = time.monotonic()
    with log_file.open("ab") as log:
        log_header(log, " ".join(argv))
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=stack.env(),
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _fail(
                step, f"`python -m {' '.join(args)}` timed out; see {_shown(log_file)}"
            ) from None
    if result.returncode != 0:
        raise _fail(
            step,
            f"`python -m {' '.join(args)}` exited {result.returncode}: "
            f"{last_line(log_file)} (log: {_shown(log_file)})",
        )
    _ok(step, f"`python -m {' '.join(args)}` done in {time.monotonic() - started:.1f} s")


def _start_python_service(
    stack: Stack, name: str, args: Sequence[str], ready: Callable[[], bool], timeout: float
) -> None:
    """Start ``python -m <args>`` as service ``name``; wait until ``ready()`` or it dies."""
    status = stack.status(name)
    if status.running:
        _skip(name, f"already running (pid {status.pid})")
        return
    log_file = stack.log(name)
    started = time.monotonic()
    pid = start_service(
        name,
        [sys.executable, "-m", *args],
        env=stack.env(),
        log_file=log_file,
        state_dir=stack.state_dir,
    )
    deadline = started + timeout
    while True:
        if not pid_alive(pid):
            stop_service(name, state_dir=stack.state_dir)
            raise _fail(
                name,
                f"`python -m {' '.join(args)}` exited: {last_line(log_file)} "
                f"(log: {_shown(log_file)})",
            )
        if ready():
            break
        if time.monotonic() > deadline:
            stop_service(name, state_dir=stack.state_dir)
            raise _fail(name, f"not ready after {timeout:.0f} s; see {_shown(log_file)}")
        time.sleep(0.1)
    _ok(name, f"started in {time.monotonic() - started:.1f} s (pid {pid})")


def _up(stack: Stack) -> None:
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    mode = "demo mode: sources served by the replay server" if stack.demo else "live sources"
    console.print(f"Dev stack in {_shown(stack.state_dir)} ({mode})")

    # 1. PostgreSQL
    if stack.postgres_port is None:
        _skip("postgres", f"external: {redact_url(stack.database_url)}")
    else:
        port = stack.postgres_port
        was_running = postgres_running(stack.postgres_data)
        try:
            _, took = _timed(
                lambda: start_postgres(
                    stack.postgres_data,
                    port=port,
                    log_file=stack.log("postgres"),
                    database=stack.database,
                )
            )
        except (DevStackError, ValueError) as exc:
            raise _fail("postgres", f"{exc} (log: {_shown(stack.log('postgres'))})") from None
        pid = postgres_pid(stack.postgres_data)
        if was_running:
            _skip("postgres", f"already running (pid {pid}), database {stack.database} ready")
        else:
            _ok("postgres", f"started in {took:.1f} s (pid {pid}, {LOOPBACK}:{port})")

    # 2. Migrations
    _run_step(stack, "migrate", "schema", ["schema"])

    # 3. Temporal dev server
    if stack.temporal_port is None:
        _skip("temporal", f"external: {stack.temporal_address}")
    else:
        status = stack.status("temporal")
        if status.running:
            _skip("temporal", f"already running (pid {status.pid})")
        else:
            tport = stack.temporal_port
            try:
                pid, took = _timed(
                    lambda: start_temporal(
                        stack.state_dir,
                        port=tport,
                        ui_port=tport + 1000,
                        log_file=stack.log("temporal"),
                    )
                )
            except DevStackError as exc:
                raise _fail("temporal", str(exc)) from None
            _ok("temporal", f"started in {took:.1f} s (pid {pid}, {stack.temporal_address})")

    # 4. Replay server (demo): a full-size catalogue generated from the real
    #    captures' structure (the US feed is the real one, unmodified).
    if stack.demo:
        if not stack.status("replay").running and port_in_use(REPLAY_PORT):
            raise _fail("replay", f"port {REPLAY_PORT} is already in use on {LOOPBACK}")
        catalogue = stack.state_dir / "catalogue"
        if not catalogue.exists():
            _run_step(stack, "catalogue", "catalogue", ["replay.synthetic", str(catalogue)])
        else:
            _skip("catalogue", f"using {_shown(catalogue)}")
        _start_python_service(
            stack,
            "replay",
            [
                "replay",
                "--port",
                str(REPLAY_PORT),
                "--directory",
                str(catalogue),
                "--no-manifest",
            ],
            ready=lambda: port_in_use(REPLAY_PORT),
            timeout=30,
        )
        # Read by every later command run from here (advisories.settings reads it),
        # so the CLI judges the demo as the worker runs it.
        stack.demo_env_file.write_text(
            f"REPLAY_BASE_URL={REPLAY_BASE_URL}\nRATE_LIMITS_ENABLED=false\n", encoding="utf-8"
        )
    else:
        stack.demo_env_file.unlink(missing_ok=True)

    # 5. Worker: "ready" = still alive after a short settle period.
    worker_started = time.monotonic()
    _start_python_service(
        stack,
        "worker",
        ["worker"],
        ready=lambda: time.monotonic() - worker_started > 2.0,
        timeout=30,
    )

    # 6. Schedules, and in demo mode a first run of every scrape schedule right now.
    _run_step(stack, "schedules", "schedules", ["starter", "schedules", "sync"])
    if stack.demo:
        _run_step(stack, "scrape", "first-scrape", ["starter", "schedules", "trigger"])

    # 7. The advisory service (read API and dashboard): ready when /healthz answers 200.
    if not stack.status("api").running and port_in_use(API_PORT):
        raise _fail("api", f"port {API_PORT} is already in use on {LOOPBACK}")
    _start_python_service(
        stack,
        "api",
        ["api", "--host", LOOPBACK, "--port", str(API_PORT)],
        ready=lambda: _http_ok(f"{API_URL}/healthz"),
        timeout=60,
    )

    _print_summary(stack)


def _http_ok(url: str) -> bool:
    """Whether ``url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _print_summary(stack: Stack) -> None:
    table = Table(title="Dev stack", title_justify="left")
    for column in ("service", "pid", "address", "log"):
        table.add_column(column)
    for name in stack.expected():
        status = stack.status(name)
        table.add_row(
            name,
            str(status.pid) if status.pid else "-",
            stack.address(name),
            _shown(stack.log(name)),
        )
    console.print(table)
    if stack.ui_url:
        console.print(f"Temporal Web UI: {stack.ui_url}")
    console.print(f"Dashboard:       {API_URL}  (API {API_URL}/v1/sources, {API_URL}/openapi.json)")
    console.print(f"Database:        {redact_url(stack.database_url)}")
    if stack.demo:
        console.print(f"Replay server:   {REPLAY_BASE_URL} (saved in {stack.demo_env_file})")
    console.print(
        "Next: open the dashboard | python -m starter advisories | make logs worker | make down"
    )


def _down(stack: Stack) -> None:
    """Stop everything this state directory started, in reverse order; verify none survives."""
    survivors: list[psutil.Process] = []
    for name in reversed(SERVICES):
        if name == "postgres":
            pid = postgres_pid(stack.postgres_data)
            if pid is None:
                _skip(name, "not running")
                continue
            tree = []
            with contextlib.suppress(psutil.NoSuchProcess):
                tree = process_group(psutil.Process(pid))
            stop_postgres(stack.postgres_data)
        else:
            process = live_process(pid_path(name, stack.state_dir))
            if process is None:
                stop_service(name, state_dir=stack.state_dir)  # clears a stale pid file
                _skip(name, "not running")
                continue
            pid = process.pid
            tree = process_group(process)
            stop_service(name, state_dir=stack.state_dir)
        left = wait_gone(tree, 0)
        survivors += left
        _ok(name, f"stopped (pid {pid})" + (f", {len(left)} process(es) left!" if left else ""))
    stack.demo_env_file.unlink(missing_ok=True)
    if survivors:
        pids = ", ".join(str(p.pid) for p in survivors)
        raise _fail("down", f"processes still running: {pids}")


@app.command()
def up(
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--no-demo",
            help="Also start the replay server and point the sources at it "
            "(default: keep the mode of a running demo stack).",
        ),
    ] = None,
) -> None:
    """Start PostgreSQL, migrations, Temporal, (replay), worker, schedules and the API.

    Safe to re-run.
    """
    _up(_stack(demo))


@app.command()
def down() -> None:
    """Stop the API, worker, replay, Temporal and PostgreSQL. Safe when nothing runs."""
    _down(_stack(None))


@app.command()
def restart(
    demo: Annotated[
        bool | None,
        typer.Option("--demo/--no-demo", help="Demo mode (default: keep the current mode)."),
    ] = None,
) -> None:
    """Down, then up (keeping demo mode unless told otherwise)."""
    stack = _stack(demo)
    _down(stack)
    _up(stack)


def _format_uptime(uptime: timedelta | None) -> str:
    if uptime is None:
        return "-"
    seconds = int(uptime.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show each service; exit 0 if every expected service runs, 3 otherwise."""
    stack = _stack(None)
    expected = stack.expected()
    rows = []
    for name in SERVICES:
        state = stack.status(name)
        rows.append(
            {
                "service": name,
                "expected": name in expected,
                "running": state.running,
                "pid": state.pid,
                "rss_mb": state.rss_mb,
                "uptime_seconds": int(state.uptime.total_seconds()) if state.uptime else None,
                "address": stack.address(name),
                "log": str(stack.log(name)),
            }
        )
    healthy = all(row["running"] for row in rows if row["expected"])
    if as_json:
        print(json.dumps({"healthy": healthy, "services": rows}, indent=2))
    else:
        table = Table(title=f"Dev stack in {stack.state_dir}", title_justify="left")
        for column in ("service", "state", "pid", "RSS MB", "uptime", "address"):
            table.add_column(column)
        for name, row in zip(SERVICES, rows, strict=True):
            state = stack.status(name)
            if state.running:
                label = "[green]running[/]"
            elif row["expected"]:
                label = "[red]stopped[/]"
            else:
                label = "[dim]not used[/]"
            table.add_row(
                name,
                label,
                str(state.pid or "-"),
                f"{state.rss_mb:.0f}" if state.rss_mb is not None else "-",
                _format_uptime(state.uptime),
                str(row["address"]) if row["expected"] or state.running else "-",
            )
        console.print(table)
        if stack.ui_url and stack.status("temporal").running:
            console.print(f"Temporal Web UI: {stack.ui_url}")
    raise typer.Exit(0 if healthy else 3)


def _log_files(stack: Stack, service: str | None) -> list[tuple[str, Path]]:
    logs_dir = stack.state_dir / "logs"
    if service is not None:
        path = stack.log(service)
        if not path.exists():
            known = sorted(p.stem for p in logs_dir.glob("*.log"))
            raise _fail("logs", f"no log for {service!r} (have: {', '.join(known) or 'none'})")
        return [(service, path)]
    order = {name: i for i, name in enumerate(SERVICES)}
    found = sorted(logs_dir.glob("*.log"), key=lambda p: (order.get(p.stem, len(order)), p.stem))
    return [(p.stem, p) for p in found]


def _follow(files: list[tuple[str, Path]], prefix: bool) -> None:
    """Print lines appended to ``files`` until interrupted."""
    handles: dict[str, IO[bytes]] = {}
    width = max((len(name) for name, _ in files), default=0)
    try:
        for name, path in files:
            handles[name] = path.open("rb")
            handles[name].seek(0, os.SEEK_END)
        while True:
            quiet = True
            for name, path in files:
                handle = handles[name]
                if path.exists() and path.stat().st_size < handle.tell():
                    handle.seek(0)  # truncated or replaced
                for raw in iter(handle.readline, b""):
                    quiet = False
                    line = raw.decode("utf-8", errors="replace").rstrip("\n")
                    print(f"{name:<{width}} | {line}" if prefix else line, flush=True)
            if quiet:
                time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    finally:
        for handle in handles.values():
            handle.close()


@app.command()
def logs(
    service: Annotated[
        str | None, typer.Argument(help="postgres, temporal, replay, worker, api, schema, ...")
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines to show.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Show the last lines of a service's log (or of every log, prefixed by service)."""
    stack = _stack(None)
    files = _log_files(stack, service)
    if not files:
        raise _fail("logs", f"no logs in {stack.state_dir / 'logs'} yet")
    prefix = service is None
    width = max(len(name) for name, _ in files)
    for name, path in files:
        for line in tail_lines(path, lines):
            print(f"{name:<{width}} | {line}" if prefix else line)
    if follow:
        _follow(files, prefix)


@app.command()
def clean() -> None:
    """Down, then delete the state directory (PostgreSQL data and Temporal history included)."""
    stack = _stack(None)
    _down(stack)
    remove_postgres_data(stack.postgres_data)
    if stack.state_dir.exists():
        shutil.rmtree(stack.state_dir)
    _ok("clean", f"removed {stack.state_dir}")

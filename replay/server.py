"""The HTTP server: documents at the real sites' paths, conditional requests, faults."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import random
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from replay._catalogue import (
    REAL_ROUTES,
    Catalogue,
    Document,
    RegistryRoutes,
    ReplayError,
    Route,
    default_fixtures_root,
    format_validation_error,
    is_source_id,
    load_manifest,
    registry_routes,
)
from replay._faults import FaultConfig, FaultDecision, FaultRule, Faults
from replay._stats import NO_RESPONSE, ReplayStats, StatsRecorder

logger = logging.getLogger("replay")

#: URL prefix of the control API; never a source id (those start with a letter).
CONTROL_PREFIX: Final = "/_replay"
_MAX_CONTROL_BODY: Final = 1024 * 1024
_TEXT: Final = "text/plain; charset=utf-8"
_JSON: Final = "application/json"


@dataclass(slots=True)
class _State:
    """What every request handler thread shares."""

    catalogue: Catalogue
    faults: Faults = field(default_factory=Faults)
    stats: StatsRecorder = field(default_factory=StatsRecorder)
    # Set by stop(): wakes requests sleeping in a latency or timeout fault.
    stopping: threading.Event = field(default_factory=threading.Event)


class _HTTPServer(ThreadingHTTPServer):
    # Hanging "timeout" requests must neither block other requests nor stop().
    daemon_threads = True
    # Benchmarks open tens of connections at once; the default backlog of 5
    # makes the kernel drop SYNs and clients stall for a 1 s retransmit.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: _State, *, ipv6: bool) -> None:
        if ipv6:
            self.address_family = socket.AF_INET6
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup
        # that can stall start-up on a machine without network; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open connection (idle keep-alive ones would otherwise linger)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, so benchmarks measure the server and not TCP handshakes.
    protocol_version = "HTTP/1.1"
    server_version = "replay"
    # Headers and body go out in two writes; with Nagle on, the second waits
    # for a delayed ACK (~40 ms) on every keep-alive response.
    disable_nagle_algorithm = True
    # An idle keep-alive connection holds a thread; let it go eventually.
    timeout = 300

    _status: int
    _sent: int

    @property
    def _state(self) -> _State:
        server = self.server
        assert isinstance(server, _HTTPServer)
        return server.state

    # --- dispatch -------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        self._status = NO_RESPONSE
        self._sent = 0
        parts = urlsplit(self.path)
        target = parts.path
        try:
            if target == CONTROL_PREFIX or target.startswith(CONTROL_PREFIX + "/"):
                self._control(method, target)
            else:
                self._document(method, target, parts.query)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-response; nothing left to tell it.
            self.close_connection = True
        finally:
            logger.info(
                "%s %s %s %dB %.1fms",
                method,
                self.path,
                self._status or "-",
                self._sent,
                (time.perf_counter() - started) * 1000,
            )

    # --- documents ------------------------------------------------------------

    def _document(self, method: str, target: str, query: str = "") -> None:
        state = self._state
        source, path = _split_target(target)
        if method not in ("GET", "HEAD"):
            # Any request body is left unread, so the connection cannot be reused.
            self.close_connection = True
            self._answer(
                source, path, 405, b"method not allowed\n", _TEXT, {"Allow": "GET, HEAD"}, method
            )
            return

        decision = state.faults.decide(source, path)
        if decision.latency_seconds > 0 and state.stopping.wait(decision.latency_seconds):
            self.close_connection = True
            return
        rule = decision.rule
        if rule is not None and rule.kind == "status":
            code = rule.status_code
            headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
            body = f"injected fault: status {code}\n".encode()
            self._answer(source, path, code, body, _TEXT, headers, method, fault="status")
            return
        if rule is not None and rule.kind == "timeout":
            state.stats.record(source, path, NO_RESPONSE, fault="timeout")
            self.close_connection = True
            state.stopping.wait(rule.hang_for)
            return

        # The query picks a page of a paged index; other sources' documents ignore it.
        lookup = state.catalogue.lookup
        document = lookup(source, path, query=query) if is_source_id(source) else None
        if document is None:
            self._answer(source, path, 404, f"not found: {target}\n".encode(), _TEXT, {}, method)
            return
        validators = {
            "ETag": document.etag,
            "Last-Modified": formatdate(document.last_modified, usegmt=True),
        }
        if rule is not None and rule.kind == "garbage":
            self._answer_garbage(source, path, document, decision, method)
            return
        if rule is not None and rule.kind == "truncate":
            self._answer(
                source,
                path,
                200,
                document.body,
                document.content_type,
                validators,
                method,
                fault="truncate",
                truncate=True,
            )
            return
        if self._not_modified(document):
            self._answer(source, path, 304, b"", None, validators, method)
            return
        self._answer(source, path, 200, document.body, document.content_type, validators, method)

    def _answer_garbage(
        self, source: str, path: str, document: Document, decision: FaultDecision, method: str
    ) -> None:
        # As long as the real document and claiming its type, so only a parser notices.
        size = len(document.body) or 64
        noise = random.Random(decision.noise_seed).randbytes(size)
        self._answer(source, path, 200, noise, document.content_type, {}, method, fault="garbage")

    def _not_modified(self, document: Document) -> bool:
        # RFC 9110 §13.2.2: If-None-Match decides when present, with weak comparison.
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [tag.strip() for tag in if_none_match.split(",")]
            return "*" in tags or any(tag.removeprefix("W/") == document.etag for tag in tags)
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since is None:
            return False
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # an unparsable date is ignored, as the RFC asks
        return math.floor(document.last_modified) <= since.timestamp()

    # --- control API ----------------------------------------------------------

    def _control(self, method: str, target: str) -> None:
        state = self._state
        if target == f"{CONTROL_PREFIX}/faults":
            if method == "GET":
                self._json(200, state.faults.config.model_dump(mode="json"))
            elif method == "POST":
                config = self._read_fault_config()
                if config is not None:
                    state.faults.set(config)
                    self._json(200, config.model_dump(mode="json"))
            elif method == "DELETE":
                state.faults.clear()
                self._json(200, FaultConfig().model_dump(mode="json"))
            else:
                self._control_error(405, "use GET, POST or DELETE", {"Allow": "GET, POST, DELETE"})
        elif target == f"{CONTROL_PREFIX}/stats":
            if method == "GET":
                self._json(200, state.stats.snapshot().to_json())
            elif method == "DELETE":
                state.stats.reset()
                self._json(200, state.stats.snapshot().to_json())
            else:
                self._control_error(405, "use GET or DELETE", {"Allow": "GET, DELETE"})
        else:
            self._control_error(
                404, f"no control endpoint {target}; try {CONTROL_PREFIX}/faults or /stats"
            )

    def _read_fault_config(self) -> FaultConfig | None:
        """The POSTed fault config, or None after answering 4xx."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._control_error(411, "send the body with a Content-Length")
            return None
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._control_error(411, "send the body with a Content-Length")
            return None
        if not 0 <= length <= _MAX_CONTROL_BODY:
            self._control_error(413, f"body must be at most {_MAX_CONTROL_BODY} bytes")
            return None
        raw = self.rfile.read(length)
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._control_error(400, f"invalid JSON: {exc}")
            return None
        try:
            return FaultConfig.model_validate(data)
        except ValidationError as exc:
            self._control_error(400, f"invalid fault config: {format_validation_error(exc)}")
            return None

    def _control_error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        if status in (405, 411, 413):
            # The body (if any) was not read, so the connection cannot be reused.
            self.close_connection = True
        self._json(status, {"error": message}, headers)

    def _json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload, indent=2).encode() + b"\n"
        self._write(status, body, _JSON, headers or {}, send_body=True)

    # --- writing --------------------------------------------------------------

    def _answer(
        self,
        source: str,
        path: str,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str],
        method: str,
        *,
        fault: str | None = None,
        truncate: bool = False,
    ) -> None:
        # Counted before the answer goes out, so a client that reads the stats
        # right after its response sees its own request.
        self._state.stats.record(source, path, status, fault=fault)
        self._write(
            status, body, content_type, headers, send_body=method != "HEAD", truncate=truncate
        )

    def _write(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str],
        *,
        send_body: bool,
        truncate: bool = False,
    ) -> None:
        self._status = status
        self.send_response(status)
        if status != 304:
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not send_body or status == 304:
            return
        if truncate:
            # Content-Length promised the whole body; close after half of it.
            body = body[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)
        self._sent = len(body)

    def version_string(self) -> str:
        return self.server_version

    # --- logging: one line per request from _handle, the rest at debug level --

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.address_string(), *args)


def _split_target(target: str) -> tuple[str, str]:
    """``/<source>/<path>`` → ``(source, "/<path>")``, percent-decoded."""
    decoded = unquote(target)
    source, _, path = decoded.removeprefix("/").partition("/")
    return source, "/" + path


def _check_loopback(host: str) -> bool:
    """Whether ``host`` is IPv6; raises ValueError unless it is a loopback address."""
    if host == "localhost":
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host {host!r} is not an IP address or 'localhost'") from None
    if not address.is_loopback:
        raise ValueError(f"refusing to listen on {host}: the replay server binds loopback only")
    return address.version == 6


class ReplayServer:
    """A local HTTP server answering ``/<source id>/<real path>`` with recorded documents.

    Point a source at ``server.url_for(source)`` (or set ``REPLAY_BASE_URL`` to
    ``server.base_url``) and it fetches the recorded documents at the same
    paths as on the real site. Requests are served on daemon threads, one per
    connection, so slow or hanging answers never hold up others.

    Example::

        with ReplayServer() as server:
            httpx.get(server.url_for("us_state_dept") + "/_res/rss/TAsTWs.xml")

    Args:
        fixtures_root: Directory the real captures (or the manifest's files)
            are relative to (default: :func:`default_fixtures_root`).
        manifest: The real-capture routes the registered sources declare
            (:data:`REAL_ROUTES`, the default), a manifest TOML of routes, or
            None for no routes (directory only).
        directory: A catalogue laid out as ``<directory>/<source>/<url path>``
            (a URL path without a file of its own name may be stored with a
            ``.json``, ``.xml`` or ``.html`` suffix). Manifest routes win over it.
        host: Loopback address to listen on.
        port: TCP port; 0 picks a free one.

    Raises:
        ManifestError: if the manifest is invalid or names missing files.
        ReplayError: if the fixtures root, a routed capture or the directory
            does not exist.
        ValueError: if ``host`` is not a loopback address.
    """

    def __init__(
        self,
        fixtures_root: Path | None = None,
        *,
        manifest: Path | RegistryRoutes | None = REAL_ROUTES,
        directory: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.fixtures_root = fixtures_root if fixtures_root is not None else default_fixtures_root()
        routes: list[Route] = []
        if manifest is not None:
            if not self.fixtures_root.is_dir():
                raise ReplayError(f"fixtures directory {self.fixtures_root} does not exist")
            routes = (
                registry_routes(self.fixtures_root)
                if isinstance(manifest, RegistryRoutes)
                else load_manifest(manifest, self.fixtures_root)
            )
        if directory is not None and not directory.is_dir():
            raise ReplayError(f"catalogue directory {directory} does not exist")
        self._ipv6 = _check_loopback(host)
        self._host = host
        self._port = port
        self._state = _State(catalogue=Catalogue(routes=routes, directory=directory))
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> Self:
        """Bind and start serving in a background thread.

        Raises:
            RuntimeError: if already started.
            OSError: if the address cannot be bound.
        """
        if self._httpd is not None:
            raise RuntimeError("replay server already started")
        self._state.stopping = threading.Event()
        httpd = _HTTPServer((self._host, self._port), self._state, ipv6=self._ipv6)
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"replay-server:{httpd.server_port}",
            daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and wake hanging requests. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._state.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server.

        Raises:
            RuntimeError: if the server is not running.
        """
        if self._httpd is None:
            raise RuntimeError("replay server not started")
        host, port = self._httpd.server_address[:2]
        host = str(host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def url_for(self, source: str) -> str:
        """Base URL to configure for ``source``: ``<base_url>/<source>``."""
        return f"{self.base_url}/{source}"

    @property
    def routes(self) -> list[Route]:
        """The manifest routes served."""
        return self._state.catalogue.routes

    # --- documents ----------------------------------------------------------------

    def put(
        self, source: str, path: str, body: bytes | str, *, content_type: str | None = None
    ) -> Document:
        """Serve ``body`` at ``/<source><path>`` from now on (a new ETag and Last-Modified).

        Args:
            source: Source id.
            path: Path on the real site, starting with ``/``.
            body: The document; ``str`` is encoded as UTF-8.
            content_type: Content-Type; by default from the path's suffix, else
                the replaced document's, else ``application/octet-stream``.

        Returns:
            The document now served.
        """
        _check_route(source, path)
        data = body.encode() if isinstance(body, str) else body
        return self._state.catalogue.put(source, path, data, content_type=content_type)

    def delete(self, source: str, path: str) -> None:
        """Answer ``/<source><path>`` with 404 from now on."""
        _check_route(source, path)
        self._state.catalogue.delete(source, path)

    def clear_overrides(self) -> None:
        """Undo every :meth:`put` and :meth:`delete`."""
        self._state.catalogue.clear_overrides()

    # --- faults and stats -----------------------------------------------------------

    def set_faults(self, *rules: FaultRule) -> None:
        """Replace the fault rules (no rules: no faults)."""
        self._state.faults.set(FaultConfig(rules=list(rules)))

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._state.faults.clear()

    @property
    def faults(self) -> FaultConfig:
        """The fault rules in force."""
        return self._state.faults.config

    def stats(self) -> ReplayStats:
        """Request counts so far."""
        return self._state.stats.snapshot()

    def reset_stats(self) -> None:
        """Start counting requests from zero."""
        self._state.stats.reset()

    def reset(self) -> None:
        """Clear faults, overrides and stats: back to the catalogue as loaded."""
        self.clear_faults()
        self.clear_overrides()
        self.reset_stats()


def _check_route(source: str, path: str) -> None:
    if not is_source_id(source):
        raise ValueError(f"{source!r} is not a source id")
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/'")

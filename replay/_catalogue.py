"""What the replay server serves: real-capture routes, a plain directory, run-time overrides.

The real-capture routes come from the source registry: each source module
declares its own (``SOURCE.replay_routes``). A TOML manifest of routes can
stand in for them (tests, one-off catalogues).
"""

from __future__ import annotations

import enum
import hashlib
import math
import mimetypes
import os
import re
import stat
import threading
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from advisories.sources import SOURCES, query_file

#: Source ids are plain lower-case identifiers; this also keeps ``_replay`` (the
#: control namespace) and path tricks such as ``..`` out of the source position.
SOURCE_ID_PATTERN: Final = r"^[a-z][a-z0-9_]*$"
_SOURCE_ID: Final = re.compile(r"[a-z][a-z0-9_]*")


class RegistryRoutes(enum.Enum):
    """Marks "the routes the registered sources declare" where a manifest could be given."""

    REAL = "the real-capture routes of the registered sources"


#: The default instead of a manifest: every registered source's ``replay_routes``.
REAL_ROUTES: Final = RegistryRoutes.REAL
#: The name REAL_ROUTES had when the routes were a TOML manifest.
REAL_MANIFEST: Final = REAL_ROUTES

#: Suffixes tried, in order, when a directory-mode URL path has no file of its own name.
#: They let one catalogue hold both ``/api/content/foreign-travel-advice`` (stored as
#: ``foreign-travel-advice.json``) and the documents below it (in ``foreign-travel-advice/``),
#: and give extension-less URLs a content type.
DIRECTORY_SUFFIXES: Final = (".json", ".xml", ".html")

_CONTENT_TYPES: Final = {
    ".json": "application/json",
    # No charset for XML: the document's own declaration is authoritative.
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"


class ReplayError(Exception):
    """Base class of the errors the replay server raises on purpose."""


class ManifestError(ReplayError, ValueError):
    """A manifest that cannot be loaded.

    Attributes:
        manifest: The manifest file.
        reason: What is wrong with it.
    """

    def __init__(self, manifest: Path, reason: str) -> None:
        self.manifest = manifest
        self.reason = reason
        super().__init__(f"manifest {manifest}: {reason}")


def default_fixtures_root() -> Path:
    """The fixtures root used when none is given.

    ``$REPLAY_FIXTURES_DIR`` if set, else ``<repo root>/../shared/fixtures/real``
    (the repo root being the directory that holds the ``replay`` package).
    """
    configured = os.environ.get("REPLAY_FIXTURES_DIR")
    if configured:
        return Path(configured)
    repo_root = Path(__file__).resolve().parent.parent
    return repo_root.parent / "shared" / "fixtures" / "real"


def is_source_id(value: str) -> bool:
    """Whether ``value`` is shaped like a source id (see :data:`SOURCE_ID_PATTERN`)."""
    return _SOURCE_ID.fullmatch(value) is not None


def guess_content_type(name: str) -> str | None:
    """Content type implied by a file or URL path's suffix, or None if unknown."""
    suffix = PurePosixPath(name).suffix.lower()
    if not suffix:
        return None
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed


@dataclass(frozen=True, slots=True)
class Document:
    """One servable document with its HTTP validators.

    Attributes:
        body: The exact bytes served.
        content_type: Value of the Content-Type header.
        etag: Strong entity tag (quoted SHA-256 of ``body``).
        last_modified: Unix time of the last change (file mtime, or time of ``put``).
    """

    body: bytes
    content_type: str
    etag: str
    last_modified: float

    @classmethod
    def of(cls, body: bytes, *, content_type: str, last_modified: float) -> Document:
        """A document for ``body``, its ETag computed from the bytes."""
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        return cls(body=body, content_type=content_type, etag=etag, last_modified=last_modified)


@dataclass(frozen=True, slots=True)
class Route:
    """A manifest entry: ``(source, path)`` answered with ``file``.

    Attributes:
        source: Source id (first URL path segment on the replay server).
        path: Path on the real site, starting with ``/``.
        file: Absolute path of the file served.
        content_type: Explicit Content-Type, or None to follow the file's suffix.
    """

    source: str
    path: str
    file: Path
    content_type: str | None = None


class _ManifestRoute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=SOURCE_ID_PATTERN)
    path: str = Field(pattern=r"^/", description="path on the real site")
    file: str = Field(min_length=1, description="relative to the fixtures root")
    content_type: str | None = Field(default=None, min_length=1)


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: list[_ManifestRoute] = Field(default_factory=list)


def load_manifest(manifest: Path, fixtures_root: Path) -> list[Route]:
    """Read and check a manifest TOML file.

    The file holds an array of tables ``[[routes]]`` with ``source``, ``path``,
    ``file`` (relative to ``fixtures_root``) and an optional ``content_type``.

    Raises:
        ManifestError: if the file is unreadable or invalid, a route is listed
            twice, or a routed file does not exist under ``fixtures_root``.
    """
    try:
        raw = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(manifest, f"cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(manifest, f"invalid TOML: {exc}") from exc
    try:
        parsed = _Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(manifest, format_validation_error(exc)) from exc

    root = fixtures_root.resolve()
    routes: list[Route] = []
    seen: set[tuple[str, str]] = set()
    missing: list[str] = []
    for entry in parsed.routes:
        key = (entry.source, entry.path)
        if key in seen:
            raise ManifestError(manifest, f"route {entry.source} {entry.path} is listed twice")
        seen.add(key)
        relative = PurePosixPath(entry.file)
        if relative.is_absolute() or ".." in relative.parts:
            raise ManifestError(manifest, f"file {entry.file!r} must be relative to the root")
        file = root.joinpath(*relative.parts)
        if not file.is_file():
            missing.append(entry.file)
        routes.append(Route(entry.source, entry.path, file, entry.content_type))
    if missing:
        raise ManifestError(manifest, f"files missing under {root}: {', '.join(missing)}")
    return routes


#: The repository (the directory holding the ``replay`` package).
REPOSITORY: Final = Path(__file__).resolve().parent.parent
#: Captures kept in the repository, named from its root (``replay/captures/<source>/...``).
REPOSITORY_CAPTURES: Final = "replay/captures/"


def capture_file(relative: str, fixtures_root: Path) -> Path:
    """Where a capture named by a source module lives.

    ``replay/captures/...`` is in the repository; anything else is under the
    real-captures root.
    """
    base = REPOSITORY if relative.startswith(REPOSITORY_CAPTURES) else fixtures_root
    return base.joinpath(*PurePosixPath(relative).parts)


def registry_routes(fixtures_root: Path) -> list[Route]:
    """The real-capture routes every registered source declares, in registry order.

    Raises:
        ReplayError: if a route's capture does not exist under ``fixtures_root``,
            or two routes of a source share a path.
    """
    root = fixtures_root.resolve()
    routes: list[Route] = []
    seen: set[tuple[str, str]] = set()
    missing: list[str] = []
    for spec in SOURCES.values():
        for declared in spec.replay_routes:
            key = (spec.id, declared.path)
            if key in seen:
                raise ReplayError(f"{spec.id} routes {declared.path} twice")
            seen.add(key)
            file = capture_file(declared.file, root)
            if not file.is_file():
                missing.append(declared.file)
            routes.append(Route(spec.id, declared.path, file, declared.content_type))
    if missing:
        raise ReplayError(f"real captures missing under {root}: {', '.join(missing)}")
    return routes


def format_validation_error(exc: ValidationError) -> str:
    """A one-line summary of a pydantic error: ``where: what; where: what``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(loc) for loc in error["loc"]) or "(body)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


class _FileCache:
    """File contents and ETags, reused while a file's mtime and size are unchanged.

    Hashing a 600 kB feed on every request would dominate benchmark timings;
    a ``stat`` per request still notices files rewritten in place.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[Path, str | None], tuple[tuple[int, int], Document]] = {}
        self._lock = threading.Lock()

    def load(self, file: Path, content_type: str | None) -> Document | None:
        try:
            info = file.stat()
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        version = (info.st_mtime_ns, info.st_size)
        key = (file, content_type)
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            body = file.read_bytes()
        except OSError:
            return None
        document = Document.of(
            body,
            content_type=content_type or guess_content_type(file.name) or DEFAULT_CONTENT_TYPE,
            last_modified=info.st_mtime,
        )
        with self._lock:
            self._entries[key] = (version, document)
        return document


class Catalogue:
    """Finds the document for ``(source, path)``.

    Precedence: run-time overrides (``put`` / ``delete``), then manifest routes,
    then the plain directory ``<directory>/<source>/<path>``.
    """

    def __init__(self, *, routes: Iterable[Route] = (), directory: Path | None = None) -> None:
        self._routes = {(r.source, r.path): r for r in routes}
        self._directory = directory.resolve() if directory is not None else None
        self._files = _FileCache()
        # None marks a deleted document (a tombstone that hides the route).
        self._overrides: dict[tuple[str, str], Document | None] = {}
        self._lock = threading.Lock()

    @property
    def routes(self) -> list[Route]:
        """The manifest routes, in manifest order."""
        return list(self._routes.values())

    @property
    def directory(self) -> Path | None:
        """Root of the directory catalogue, if any."""
        return self._directory

    def lookup(self, source: str, path: str, *, query: str = "") -> Document | None:
        """The document served at ``/<source><path>``, or None for a 404.

        With a query, the document kept for ``path?query`` (a ``put`` of that path and
        query, or the directory file :func:`~advisories.sources.query_file` names) when
        there is one, else the one at ``path`` (most sources ignore the query).
        """
        keyed = query_file(path, query)
        if keyed != path:
            with self._lock:
                if (source, keyed) in self._overrides:
                    return self._overrides[(source, keyed)]
            file = self._directory_file(source, keyed)
            if file is not None:
                return self._files.load(file, None)
        key = (source, path)
        with self._lock:
            if key in self._overrides:
                return self._overrides[key]
        route = self._routes.get(key)
        if route is not None:
            return self._files.load(route.file, route.content_type)
        file = self._directory_file(source, path)
        if file is None:
            return None
        return self._files.load(file, None)

    def put(
        self, source: str, path: str, body: bytes, *, content_type: str | None = None
    ) -> Document:
        """Serve ``body`` at ``(source, path)`` from now on, replacing whatever was there.

        Without ``content_type`` the type follows the path's suffix, else the
        replaced document's type, else ``application/octet-stream``. A path with a
        query (``/list?rows=200&offset=200``) is served for that query only.
        """
        path, _, query = path.partition("?")
        previous = self.lookup(source, path, query=query)
        if content_type is None:
            content_type = (
                guess_content_type(path)
                or (previous.content_type if previous is not None else None)
                or DEFAULT_CONTENT_TYPE
            )
        now = time.time()
        if previous is not None:
            # HTTP dates have one-second resolution: two versions inside the same
            # second would look unmodified to a client that sends only
            # If-Modified-Since, so each put moves Last-Modified on by >= 1 s.
            now = max(now, math.floor(previous.last_modified) + 1.0)
        document = Document.of(body, content_type=content_type, last_modified=now)
        with self._lock:
            self._overrides[(source, query_file(path, query))] = document
        return document

    def delete(self, source: str, path: str) -> None:
        """Answer ``(source, path)`` (a path with a query: for that query) with 404 from now on."""
        path, _, query = path.partition("?")
        with self._lock:
            self._overrides[(source, query_file(path, query))] = None

    def clear_overrides(self) -> None:
        """Forget every ``put`` and ``delete``."""
        with self._lock:
            self._overrides.clear()

    def _directory_file(self, source: str, path: str) -> Path | None:
        if self._directory is None or not is_source_id(source):
            return None
        parts = [part for part in path.split("/") if part]
        # Refuse anything that could step outside <directory>/<source>.
        if not parts or any(part in {".", ".."} or "\\" in part or "\0" in part for part in parts):
            return None
        candidate = self._directory.joinpath(source, *parts)
        if candidate.is_file():
            return candidate
        for suffix in DIRECTORY_SUFFIXES:
            with_suffix = candidate.with_name(candidate.name + suffix)
            if with_suffix.is_file():
                return with_suffix
        return None

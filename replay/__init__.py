"""The replay server: recorded source documents served at the real sites' paths.

A request for ``/<source id>/<path on the real site>`` is answered with the
recorded document, with ETag / Last-Modified validators, per-request counts,
and faults (errors, latency, hangs, truncated or garbage bodies) switchable at
run time from Python or over HTTP (``/_replay/faults``, ``/_replay/stats``).
Used by the integration tests, the offline demo and the benchmarks.
"""

from replay._catalogue import (
    DIRECTORY_SUFFIXES,
    REAL_MANIFEST,
    REAL_ROUTES,
    Document,
    ManifestError,
    RegistryRoutes,
    ReplayError,
    Route,
    default_fixtures_root,
    load_manifest,
    registry_routes,
)
from replay._faults import FaultConfig, FaultKind, FaultRule
from replay._stats import NO_RESPONSE, ReplayStats, RequestCount
from replay.server import CONTROL_PREFIX, ReplayServer

__all__ = [
    "CONTROL_PREFIX",
    "DIRECTORY_SUFFIXES",
    "NO_RESPONSE",
    "REAL_MANIFEST",
    "REAL_ROUTES",
    "Document",
    "FaultConfig",
    "FaultKind",
    "FaultRule",
    "ManifestError",
    "RegistryRoutes",
    "ReplayError",
    "ReplayServer",
    "ReplayStats",
    "RequestCount",
    "Route",
    "default_fixtures_root",
    "load_manifest",
    "registry_routes",
]

"""Connecting to Temporal: the one place a Client is built (worker and starter)."""

from __future__ import annotations

from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from advisories.settings import Settings
from worker.telemetry import client_interceptors


async def connect(
    settings: Settings,
    *,
    interceptors: list[Interceptor] | None = None,
    runtime: Runtime | None = None,
) -> Client:
    """A client for the configured address and namespace (TLS / API key if set).

    Args:
        settings: Address, namespace, TLS and API key.
        interceptors: Client interceptors; default: tracing when it is set up
            (``worker.telemetry.client_interceptors``).
        runtime: The process's Temporal runtime (metrics endpoint); default: the SDK's.

    Raises:
        RuntimeError: with a one-line reason when the server cannot be reached.
    """
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    elif settings.temporal_tls or settings.temporal_api_key:
        tls = True
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            tls=tls,
            api_key=api_key,
            interceptors=client_interceptors() if interceptors is None else interceptors,
            runtime=runtime,
        )
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}): {exc}"
        ) from exc

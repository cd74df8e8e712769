"""How a prepared response reaches the client: request keys, 304s, gzip, the cache middleware.

:class:`CachedResponses` answers ``/v1`` requests whose response was already built for
this data version before routing, without PostgreSQL; :class:`PreparedResponse` sends a
freshly built one the same way.
"""

from __future__ import annotations

import time
from typing import Final

from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import RETRY_AFTER
from api.http import JSON, NOSNIFF, Prepared, fresh, json_body, negotiate
from api.service import Service

__all__ = ["CachedResponses", "PreparedResponse", "request_key"]

_UNAVAILABLE_BODY: Final = json_body({"error": "database unavailable; retry later"})


def request_key(scope: Scope) -> tuple[str, str, str, str]:
    """What identifies a response in the cache: path, query, negotiated format, host."""
    accept = host = ""
    for name, value in scope["headers"]:
        if name == b"accept":
            accept = value.decode("latin-1")
        elif name == b"host":
            host = value.decode("latin-1")
    return (
        scope["path"],
        scope["query_string"].decode("latin-1"),
        negotiate(None, accept),
        host,
    )


def _negotiation(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """The request's ``If-None-Match``, ``If-Modified-Since`` and ``Accept-Encoding``."""
    if_none_match = if_modified_since = accept_encoding = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"if-modified-since":
            if_modified_since = value.decode("latin-1")
        elif name == b"accept-encoding":
            accept_encoding = value.decode("latin-1")
    return if_none_match, if_modified_since, accept_encoding


async def _send(send: Send, scope: Scope, prepared: Prepared) -> None:
    """Send ``prepared`` for the request of ``scope``: gzipped if taken, 304 if current."""
    if_none_match, if_modified_since, accept_encoding = _negotiation(scope)
    prepared = prepared.select(accept_encoding)
    if fresh(prepared, if_none_match=if_none_match, if_modified_since=if_modified_since):
        await send(
            {
                "type": "http.response.start",
                "status": 304,
                "headers": prepared.headers(with_body=False),
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    await send(
        {
            "type": "http.response.start",
            "status": prepared.status,
            "headers": prepared.headers(with_body=True),
        }
    )
    await send({"type": "http.response.body", "body": prepared.body})


async def _send_unavailable(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", JSON.encode()),
                (b"content-length", str(len(_UNAVAILABLE_BODY)).encode()),
                (b"retry-after", str(RETRY_AFTER).encode()),
                (b"cache-control", b"no-store"),
                (NOSNIFF[0].lower().encode(), NOSNIFF[1].encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAVAILABLE_BODY})


def _without_body(send: Send) -> Send:
    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only


class CachedResponses:
    """ASGI middleware: ``/v1`` responses already built for this data version, and 304s.

    This is the hot path: a dictionary lookup and two ASGI messages, no routing, no
    validation, no PostgreSQL. Everything else passes through to the application.
    """

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            # HEAD is GET without the body (RFC 9110 9.3.2), headers and all.
            scope = {**scope, "method": "GET"}
            send = _without_body(send)
        elif scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if not self.service.available:
            await _send_unavailable(send)
            return
        prepared = self.service.cache.get(request_key(scope))
        if prepared is None or (prepared.expires_at and prepared.expires_at < time.monotonic()):
            await self.app(scope, receive, send)
            return
        await _send(send, scope, prepared)


class PreparedResponse(Response):
    """A :class:`Prepared` as a Starlette response (with its 304 when the client has it)."""

    def __init__(self, prepared: Prepared) -> None:
        super().__init__()
        self.prepared = prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send(send, scope, self.prepared)

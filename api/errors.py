"""Errors of the read API: the 4xx exception, the handlers and the OpenAPI document's parts.

Every error is one line of JSON, ``{"error": "..."}``, with ``Cache-Control: no-store``
(a dashboard page gets its HTML page when PostgreSQL is away). The routes document their
responses, errors included, with :func:`openapi_responses`; :func:`openapi_without_nulls`
tidies the generated document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.http import JSON, NOSNIFF, json_body
from api.models import ErrorOut
from api.service import Unavailable

__all__ = [
    "RETRY_AFTER",
    "ApiError",
    "install_errors",
    "openapi_responses",
    "openapi_without_nulls",
    "unavailable_response",
]

log = logging.getLogger(__name__)

#: Seconds a client is told to wait when PostgreSQL is unreachable.
RETRY_AFTER: Final = 5


class ApiError(Exception):
    """A 4xx answer: its status and one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json_body({"error": message}),
        status_code=status,
        media_type=JSON,
        headers={"Cache-Control": "no-store", NOSNIFF[0]: NOSNIFF[1], **(headers or {})},
    )


#: What a parameter that misses its pattern is, in words (the pattern says it to a machine).
_PATTERN_MESSAGES: Final = {
    "iso": "invalid country code {value!r}: use ISO 3166-1 alpha-2 or alpha-3 (FR, FRA)"
    " or an ISO 3166-2 code (PT-20)",
    "country": "invalid country code {value!r}: use ISO 3166-1 alpha-2 or alpha-3 (FR, FRA)"
    " or an ISO 3166-2 code (PT-20)",
    "cursor": "invalid cursor: pass the next_cursor of a previous page",
}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(p) for p in err.get("loc", ())]
        where = f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1 else "request"
        message = err.get("msg", "invalid")
        if err.get("type") == "string_pattern_mismatch" and loc and loc[-1] in _PATTERN_MESSAGES:
            message = _PATTERN_MESSAGES[loc[-1]].format(value=err.get("input"))
        parts.append(f"{where}: {message}")
    return " ".join("; ".join(parts).split())


def _api_path(path: str) -> bool:
    """Whether ``path`` is the API's (JSON errors), not one of the dashboard's pages."""
    return path.startswith("/v1/") or path in ("/healthz", "/openapi.json")


def install_errors(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.message)

    async def unavailable(request: Request, _: Exception) -> Response:
        # A dashboard page is read by a person in a browser: an HTML page, not JSON.
        page = getattr(request.app.state, "unavailable_page", None)
        if page is not None and not _api_path(request.url.path):
            response: Response = page(RETRY_AFTER)
            return response
        return _error(503, "database unavailable; retry later", {"Retry-After": str(RETRY_AFTER)})

    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _error(422, _validation_message(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"not found: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        else:
            message = " ".join(str(exc.detail).split())
        return _error(exc.status_code, message, dict(exc.headers or {}))

    async def internal(_: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return _error(500, "internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal)


def _error_response(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


def unavailable_response() -> dict[str, Any]:
    return {
        "model": ErrorOut,
        "description": "PostgreSQL is unreachable; retry after the given seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }


def openapi_responses(
    *, csv: bool, not_found: bool = False, link: bool = False, ok: bool = True
) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    if ok:
        ok_response: dict[str, Any] = {
            "headers": {
                "ETag": {"schema": {"type": "string"}},
                "Last-Modified": {"schema": {"type": "string"}},
            }
        }
        if csv:
            ok_response["content"] = {"text/csv": {"schema": {"type": "string"}}}
        if link:
            ok_response["headers"]["Link"] = {"schema": {"type": "string"}}
        out[200] = ok_response
    out[304] = {
        "description": "Not modified: the If-None-Match ETag (or If-Modified-Since) is current"
    }
    if not_found:
        out[404] = _error_response("Unknown country code, or no source covers the country")
    out[422] = _error_response("Invalid parameter")
    out[503] = unavailable_response()
    return out


def openapi_without_nulls(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The generated document with query parameters' ``anyOf [X, null]`` read as ``X``.

    A query parameter is either absent or a string; FastAPI spells an optional one as
    "X or null", which no request can send.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for param in operation.get("parameters", []):
                    spec = param.get("schema", {})
                    options = spec.get("anyOf")
                    if isinstance(options, list) and {"type": "null"} in options:
                        rest = [o for o in options if o != {"type": "null"}]
                        if len(rest) == 1:
                            del spec["anyOf"]
                            spec.update({**rest[0], **spec})
        app.openapi_schema = schema
        return schema

    return openapi

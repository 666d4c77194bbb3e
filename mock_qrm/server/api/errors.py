"""One error middleware: every failure leaves in QRM's shape, never as HTML or a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import ValidationError

from mock_qrm.contract.display import printable
from mock_qrm.contract.errors import (
    Conflict,
    FieldErrors,
    NotFound,
    RateLimited,
    StorageError,
    error_code,
    validation_messages,
)
from mock_qrm.contract.models import ApiError
from mock_qrm.contract.rules import DELIVERY_MARKER

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOO_LARGE = "Request body is larger than 1 MiB"


class BadRequest(Exception):
    """Malformed input that is not a rule failure (bad JSON): 400."""


def api_error(status: int, message: str, errors: dict[str, list[str]] | None = None) -> ApiError:
    return ApiError(error_code=error_code(status), message=message, errors=errors)


def error_response(
    status: int, message: str, errors: dict[str, list[str]] | None = None
) -> web.Response:
    body = api_error(status, message, errors)
    return web.json_response(
        text=body.model_dump_json(by_alias=True, exclude_none=True), status=status
    )


def field_errors(exc: ValidationError, prefix: str = "") -> dict[str, list[str]]:
    """Pydantic's errors keyed by dotted field path (`basicAuth.username`)."""
    errors: dict[str, list[str]] = {}
    for loc, message in validation_messages(exc):
        path = ".".join(str(part) for part in loc) or "body"
        errors.setdefault(prefix + path, []).append(message)
    return errors


@dataclass(frozen=True, slots=True)
class Failure:
    """How a refused call answers: its status, QRM's error body, and any extra header."""

    status: int
    error: ApiError
    headers: dict[str, str]


def failure(exc: Exception) -> Failure | None:
    """The answer to a refused call (too big, bad input, unknown id, conflict, limit, store),
    else `None`.

    One mapping for the API's middleware and for the testing kit, which calls an
    embedded server's service without the HTTP trip and must refuse exactly alike.
    """
    headers: dict[str, str] = {}
    match exc:
        case web.HTTPRequestEntityTooLarge():
            status, message, errors = 413, TOO_LARGE, None
        case BadRequest():
            status, message, errors = 400, str(exc), None
        case ValidationError():
            status, message, errors = 422, "Validation error", field_errors(exc)
        case FieldErrors():
            status, message, errors = 422, "Validation error", exc.errors
        case NotFound():
            status, message, errors = 404, str(exc), None
        case Conflict():
            status, message, errors = 409, str(exc), exc.errors
        case RateLimited():
            status, message, errors = 429, str(exc), None
            headers["Retry-After"] = str(exc.retry_after)
        case StorageError():
            status, message, errors = 503, str(exc), None
        case _:
            return None
    return Failure(status, api_error(status, message, errors), headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {
            404: f"No route {request.path}",
            405: f"Method {request.method} is not allowed on {request.path}",
            413: TOO_LARGE,
        }.get(exc.status, exc.reason)
        response = error_response(exc.status, message)
        if "Allow" in exc.headers:  # a 405 must say what is allowed (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except ConnectionResetError:  # the client left while its body was read: nobody to answer
        log.info(
            "%s %s: the client closed the connection mid-request", request.method, _path(request)
        )
        return error_response(400, "The connection closed before the request was read")
    except Exception as exc:
        refused = failure(exc)
        if refused is None:
            log.exception("unhandled error on %s %s", request.method, _path(request))
            return error_response(500, "Internal server error")
        if refused.status == 503:
            log.error("store error on %s %s: %s", request.method, _path(request), exc)
        return web.json_response(
            text=refused.error.model_dump_json(by_alias=True, exclude_none=True),
            status=refused.status,
            headers=refused.headers,
        )


def _path(request: web.Request) -> str:
    """The request's path for a log line: a client's `%1b` must not reach the terminal."""
    return printable(request.path)


@web.middleware
async def loop_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A webhook delivery that reached the mock's own API (through a proxy, say) is refused."""
    if DELIVERY_MARKER in request.headers:
        return error_response(
            403,
            f"This request is a mock-qrm webhook delivery ({DELIVERY_MARKER} header): the mock"
            " does not deliver to itself; point the webhook at your receiver",
        )
    return await handler(request)

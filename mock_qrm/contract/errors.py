"""What can go wrong with a call, in the words server and clients share.

The server raises the first kinds and its API maps each to a status in QRM's
error shape; a client gets that shape back as a `QrmApiError`. No pydantic at
import: the command line catches these and must start in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "Unavailable",
    504: "GatewayTimeout",
}
"""The `errorCode` of QRM's error shape for each status; any other is `Generic`."""


def error_code(status: int) -> str:
    return ERROR_CODES.get(status, "Generic")


class NotFound(LookupError):
    """404: no such resource (or, for a webhook, one that was removed)."""

    def __init__(self, what: str, key: object, detail: str = "was not found") -> None:
        super().__init__(f"{what} {key} {detail}")


class FieldErrors(Exception):
    """A request that breaks a rule: 422 with messages keyed by dotted field path."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Validation error")
        self.errors = errors


class Conflict(Exception):
    """409: the request is well-formed but cannot apply to the resource as it stands;
    `errors`, if given, say where (keyed by dotted field path, as a 422's)."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors


class RateLimited(Exception):
    """429: a manual attempt the webhook's rate limit has no room for until `free_at`."""

    def __init__(self, webhook_id: int, limit: str, free_at: float, now: float) -> None:
        self.free_at = free_at
        self.retry_after = max(1, math.ceil(free_at - now))
        super().__init__(
            f"Webhook {webhook_id} is rate limited ({limit}): the next attempt fits in"
            f" {self.retry_after} s"
        )


class StorageError(Exception):
    """503: the server's database cannot be opened or used; the message says why, in one line."""


class QrmApiError(Exception):
    """A call refused in QRM's error shape: `{"errorCode", "message", "errors"?}` and its status.

    Raised by every client (over HTTP, or in process by the server's own port), so a
    caller handles a refusal one way however it made the call.
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        errors: dict[str, list[str]] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.errors = errors
        self.body = body
        """The whole answer, decoded (a degraded `/healthz` carries the health in it)."""

    @property
    def field_errors(self) -> dict[str, list[str]]:
        return self.errors or {}

    def describe(self) -> str:
        """The message, then each field's problems: `Validation error (url: URL is required)`."""
        details = "; ".join(
            f"{field}: {', '.join(msgs)}" for field, msgs in self.field_errors.items()
        )
        return self.message + (f" ({details})" if details else "")


def validation_messages(
    exc: ValidationError, word: Callable[[Any], str] | None = None
) -> list[tuple[tuple[int | str, ...], str]]:
    """Each of pydantic's errors as (location, message), worded for a person (by `word`,
    if given: it takes pydantic's error dict).

    Pydantic prefixes the messages of our own validators with "Value error, ";
    every place that shows a validation error shows it without. For an optional
    field (`X | None`) pydantic reports each member of the union: the `None`
    member's "should be null" is dropped and the other member's tag taken out of
    the path, so `{"name": 5}` is an error on `name`, not on `name.str`. A dict
    key's error is located at the key (`headers.Bad Name`), not under it.
    """
    errors = exc.errors(include_url=False)
    optional = {
        tuple(error["loc"][:-1])
        for error in errors
        if error["type"] == "none_required" and error["loc"][-1:] == ("none",)
    }
    messages = []
    for error in errors:
        loc = tuple(error["loc"])
        if loc[:-1] in optional and loc[-1] == "none":
            continue
        for prefix in optional:
            if len(loc) > len(prefix) and loc[: len(prefix)] == prefix:
                loc = prefix + loc[len(prefix) + 1 :]
                break
        where = tuple(part for part in loc if part != "[key]")
        messages.append((where, (word or worded)(error)))
    return messages


_BOUNDS = {
    "greater_than_equal": ("ge", "Must be at least {}"),
    "less_than_equal": ("le", "Must be at most {}"),
    "greater_than": ("gt", "Must be more than {}"),
    "less_than": ("lt", "Must be less than {}"),
}
"""Pydantic's numeric bounds ("Input should be greater than or equal to 1"), said plainly."""


def worded(error: Any) -> str:
    """One of pydantic's errors (its dict) in the words every face shows."""
    bound = _BOUNDS.get(error["type"])
    limit = (error.get("ctx") or {}).get(bound[0]) if bound else None
    if bound is not None and limit is not None:
        return bound[1].format(limit)
    return str(error["msg"]).removeprefix("Value error, ")

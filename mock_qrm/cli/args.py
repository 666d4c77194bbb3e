"""What every command shares: its failure (`CliError`) and the types of its arguments.

Every module of the CLI imports this one, and it imports nothing of them back.
Standard library only: argument checking happens before anything is imported
or waited for.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

PROG = "mock-qrm"

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report in one line (`mock-qrm: error: ...`) and exit with its status:
    2 for a usage error, 1 for anything else. `more`: further lines, each its own error
    line (a scenario file's problems, all at once)."""

    def __init__(self, message: str, status: int = EXIT_FAILED, more: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.more = tuple(more)


def usage(message: str, more: Sequence[str] = ()) -> CliError:
    return CliError(message, status=EXIT_USAGE, more=more)


# --- argument types (argparse calls them; an ArgumentTypeError is a usage error) ---------


def positive_int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1 or len(value) > 18:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def non_negative_int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return int(value)


def limit(value: str) -> int:
    number = positive_int(value)
    if number > 200:
        raise argparse.ArgumentTypeError("at most 200")
    return number


def minutes(value: str) -> int:
    number = non_negative_int(value)
    if number > 1440:
        raise argparse.ArgumentTypeError("at most 1440 (a day)")
    return number


def port(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 5 or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value!r}")
    return int(value)


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not 0 <= number <= 10**7:
        raise argparse.ArgumentTypeError(f"expected 0 to 10000000 seconds, got {value!r}")
    return number


def moment(value: str) -> str:
    from datetime import datetime

    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time like 2026-11-28T15:04:05Z, got {value!r}"
        ) from None
    return value


def header(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError("expected NAME=VALUE, like X-Tenant=acme")
    return name.strip(), text.strip()


def rate_limit(value: str) -> dict[str, Any]:
    """`2/minute` or `100/hour` as the API's `{"limit", "period"}`."""
    count, _, period = value.strip().partition("/")
    digits = count.strip()
    if not (digits.isascii() and digits.isdigit()) or period.strip() not in ("minute", "hour"):
        raise argparse.ArgumentTypeError(
            f"expected N/minute or N/hour, like 2/minute, not {value!r}"
        )
    number = int(digits)
    if not 1 <= number <= 100_000:
        raise argparse.ArgumentTypeError("the limit must be from 1 to 100000")
    return {"limit": number, "period": period.strip()}


def user_password(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


class one_of:
    """An argument type that takes only `known` values, and names them when it refuses one.

    Unlike argparse's `choices`, its refusal reads like every other (`unknown event code
    'x'; known: ...`); completion offers its `choices`.
    """

    def __init__(self, kind: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.choices = tuple(known)

    def __call__(self, value: str) -> str:
        if value not in self.choices:
            raise argparse.ArgumentTypeError(
                f"unknown {self.kind} {value!r}; known: {', '.join(self.choices)}"
            )
        return value


def json_value(text: str) -> Any:
    """`VALUE` of `--set FIELD=VALUE`: JSON if it reads as JSON, else the text itself."""
    import json

    try:
        return json.loads(text)
    except ValueError:  # not JSON, or a number too long for Python's int parser
        return text

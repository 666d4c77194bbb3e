"""The rules of the text a client sends: a webhook's name and URL, its credentials, its
custom headers, and the one rule of all free text (no control characters).

Plain functions and patterns, no pydantic: the models validate with them, the
TUI's form checks a draft with them before it sends, and the command line checks
a `--server` URL with them before it starts anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CONTROL = frozenset((*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029))
"""C0 controls, DEL, C1 controls and the line and paragraph separators: what no free text
may hold (a terminal would act on them, and a header or a table row would be split)."""
CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
"""`CONTROL` as a regex character range (ECMA and Python read it alike)."""
PLAIN_TEXT = rf"^[^{CONTROLS}]*$"
"""Text without `CONTROL` characters, as the document's `pattern`."""


def has_control(text: str) -> bool:
    return any(ord(ch) in CONTROL for ch in text)


def check_plain(value: str, what: str | None = None) -> str:
    """Free text as sent, or `ValueError`: no `CONTROL` character anywhere in it."""
    if has_control(value):
        raise ValueError(f"{what or ''} must not contain control characters".lstrip())
    return value


MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 100
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join(
    [
        f"(?:{_H16}:){{7}}{_H16}",
        f"(?:{_H16}:){{1,7}}:",
        f"(?:{_H16}:){{1,6}}:{_H16}",
        *(f"(?:{_H16}:){{1,{5 - n}}}(?::{_H16}){{1,{n + 2}}}" for n in range(4)),
        f"{_H16}:(?::{_H16}){{1,6}}",
        f":(?:(?::{_H16}){{1,7}}|:)",
    ]
)
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""What `str.strip()` trims, spelled out: `\\s` means less in the ECMA regexes of JSON Schema."""
_PORT = "[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]"
URL_PATTERN = (
    rf"^[{_SPACE}]*[Hh][Tt][Tt][Pp][Ss]?://"
    rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[(?:{_IPV6})\])"
    rf"(?::(?:{_PORT}))?"
    rf"(?:[/?#][^{_SPACE}\x00-\x1f\x7f-\x9f]*)?[{_SPACE}]*$"
)
"""What `check_url` accepts, as the document's `pattern`: http(s), a host name or an IPv6
literal, a port from 1 to 65535, then no space or control character; space around is trimmed."""
_VISIBLE = rf"[^{_SPACE}{CONTROLS}]"
NAME_PATTERN = (
    rf"^[{_SPACE}]*{_VISIBLE}(?:[^{CONTROLS}]{{0,{MAX_NAME_LENGTH - 2}}}{_VISIBLE})?[{_SPACE}]*$"
)
"""What `check_name` accepts: 1 to 100 characters after `str.strip()`, none a control."""


def check_name(value: str) -> str:
    """A webhook's name: 1 to 100 characters once the space around it is trimmed, and no
    control character (it is shown in tables and dialogs, one line each)."""
    value = value.strip()
    if not value:
        raise ValueError("Name is required")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"Name must be at most {MAX_NAME_LENGTH} characters")
    return check_plain(value, "Name")


MAX_USERNAME_LENGTH = 256
MAX_PASSWORD_LENGTH = 1024
"""Basic auth's bounds, in characters: the `Authorization` line they make (base64 of UTF-8)
stays under 7 KB, inside the 8,190 bytes a receiver reads of one header line."""
USERNAME_PATTERN = rf"^[^:{CONTROLS}]{{1,{MAX_USERNAME_LENGTH}}}$"
PASSWORD_PATTERN = rf"^[^{CONTROLS}]{{1,{MAX_PASSWORD_LENGTH}}}$"
"""RFC 7617: the user-id and password hold no control character, and the user-id no colon."""


def check_username(value: str) -> str:
    if not value:
        raise ValueError("Username is required")
    if len(value) > MAX_USERNAME_LENGTH:
        raise ValueError(f"Username must be at most {MAX_USERNAME_LENGTH} characters")
    if ":" in value:
        raise ValueError("Username must not contain ':'")
    return check_plain(value, "Username")


def check_password(value: str) -> str:
    if not value:
        raise ValueError("Password is required")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"Password must be at most {MAX_PASSWORD_LENGTH} characters")
    return check_plain(value, "Password")


def check_url(value: str) -> str:
    """An absolute http(s) URL with a host, no credentials, at most 2,048 characters as sent.

    The checks below word the common mistakes; `URL_PATTERN` is the whole rule, as documented.
    """
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"URL must be at most {MAX_URL_LENGTH} characters")
    value = value.strip()
    if not value:
        raise ValueError("URL is required")
    # C0, DEL and C1; checked before urlsplit, which would silently drop tabs and newlines.
    if any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in value):
        raise ValueError("URL must not contain control characters")
    from urllib.parse import urlsplit  # here: the command line starts without it

    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"URL is not valid: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("URL must have a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("URL must not contain credentials; use basic authentication")
    if port == 0:
        raise ValueError("URL port must be between 1 and 65535")
    if any(ch.isspace() for ch in value):
        raise ValueError("URL must not contain spaces")
    if not re.fullmatch(URL_PATTERN, value):  # compiled on first use: the CLI starts faster
        raise ValueError(
            "URL is not valid: use a host name or an IPv6 address in brackets, and a port"
            " from 1 to 65535 without leading zeros"
        )
    return value


MAX_HEADERS = 20
MAX_HEADER_VALUE = 4096
HEADER_NAME = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$"
"""An HTTP token (RFC 9110, section 5.6.2)."""
HEADER_VALUE = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]*$"
"""Any visible text, spaces and tabs: no control character (C0, DEL, C1) and no line or
paragraph separator, so no header can be smuggled in. Space around it is trimmed, as HTTP does."""

MAX_HEADER_LINE = 8190
"""Bytes of one header line (`Name: value`, as UTF-8) the commonest receivers read (aiohttp,
Apache, nginx's default buffer): a webhook whose request has a longer one is refused (422)."""
MAX_REQUEST_HEAD = 16 * 1024
"""Bytes of a request's head (request line and every header) Node.js reads by default, the
least of the common servers: a webhook whose request would be larger is refused (422)."""

DELIVERY_MARKER = "X-Mock-Qrm-Delivery"
"""Carried by every delivery: the server refuses requests bearing it, so it never feeds itself."""

RESERVED_HEADERS = ("Content-Type", "Content-Length", "Host", "Transfer-Encoding", "Connection")
"""Headers the request itself decides: a webhook may not set them (nor the loop marker)."""

_RESERVED = frozenset(name.lower() for name in (*RESERVED_HEADERS, DELIVERY_MARKER))


def header_problems(names: Iterable[str], basic_auth: bool) -> dict[str, list[str]]:
    """Why custom headers with these names cannot be sent, keyed `headers.<name>`.

    Refused: the headers the request decides, the marker that keeps the server
    from delivering to itself, two names differing only in case, and
    `Authorization` while basic authentication is on (it would be overwritten).
    The server refuses them (422); the TUI's form checks the same before it sends.
    """
    problems: dict[str, list[str]] = {}
    seen: set[str] = set()
    for name in names:
        lowered = name.lower()
        if lowered in _RESERVED:
            problems[f"headers.{name}"] = [f"{name} is set by the request itself"]
        elif lowered == "authorization" and basic_auth:
            problems[f"headers.{name}"] = [
                "Authorization comes from basic authentication: turn it off to set your own"
            ]
        elif lowered in seen:
            problems[f"headers.{name}"] = ["Another header has this name (names ignore case)"]
        seen.add(lowered)
    return problems

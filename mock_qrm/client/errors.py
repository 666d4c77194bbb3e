"""A server that cannot be reached, in words a person can act on. Standard library only."""

from __future__ import annotations

import errno


class QrmUnavailable(Exception):
    """The server could not be reached or did not speak our API; `reason` says why."""

    def __init__(self, url: str, reason: str, *, reached: bool = False) -> None:
        super().__init__(f"{url} {reason}" if reached else f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ECONNRESET: "connection reset",
}


def os_reason(error: OSError) -> str:
    """`connection refused`, `host unreachable`, ...: the operating system's error, said plainly."""
    return _REASONS.get(error.errno or 0, error.strerror or str(error))


NOT_JSON = "is not a mock-qrm server (its answer was not JSON)"

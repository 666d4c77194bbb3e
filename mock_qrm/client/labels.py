"""How a delivery's attempts read, the same in every client (the TUI's rows and inspector,
`mock-qrm deliveries` and its `--follow` lines). Standard library only."""

from __future__ import annotations

from mock_qrm.contract.codes import CERTIFICATE_FAILED


def attempt_number(attempt_count: int, in_flight: bool) -> int:
    """The automatic attempt under way, or the last one made.

    The server counts an automatic attempt in `attemptCount` once it has ended;
    while it is in flight, it is the next one.
    """
    return attempt_count + (1 if in_flight else 0)


def manual_attempts(attempt_count: int, attempts_total: int, in_flight: bool) -> int:
    """Manual redeliveries made: `attemptsTotal` counts them, `attemptCount` does not."""
    return max(0, attempts_total - attempt_number(attempt_count, in_flight))


def attempts_label(
    attempt_count: int, attempts_total: int, in_flight: bool, max_attempts: int
) -> str:
    """`3/4`; `—` before the first attempt; `3/4 +1` after one manual redelivery (SPEC 8.1)."""
    number = attempt_number(attempt_count, in_flight)
    label = f"{number}/{max_attempts}" if number else "—"
    manual = manual_attempts(attempt_count, attempts_total, in_flight)
    return f"{label} +{manual}" if manual else label


def error_label(error: str | None, detail: str | None = None) -> str | None:
    """An attempt's failure in full: the error class, then what it leaves out, if anything
    (`tls: certificate verify failed for localhost: self-signed certificate`)."""
    if error is None:
        return None
    return f"{error}: {detail}" if detail else error


def is_certificate_failure(error: str | None, detail: str | None) -> bool:
    """A `tls` failure because the receiver's certificate is not trusted (SPEC 9.7)."""
    return error == "tls" and bool(detail) and str(detail).startswith(CERTIFICATE_FAILED)


CERTIFICATE_SHORT = "tls: cert"
"""A certificate failure where a cell has room for a word or two (a table's answer column)."""

"""The one place a failed worker becomes something a person reads: a notification."""

from __future__ import annotations

from textual.dom import DOMNode
from textual.worker import Worker, WorkerState

from qrm_tui.client import QrmApiError, QrmUnavailable, describe_error


def failure_text(error: BaseException) -> tuple[str, str]:
    """The title and message of the notification for `error`."""
    if isinstance(error, QrmUnavailable):
        return "Server unreachable", f"Server unreachable: {describe_error(error)}, retrying"
    if isinstance(error, QrmApiError):
        return f"The server refused ({error.status})", describe_error(error)
    return "Something went wrong", f"{type(error).__name__}: {error}"


def report_worker_failure(node: DOMNode, event: Worker.StateChanged) -> None:
    """Handlers of `Worker.StateChanged` call this (the message does not bubble)."""
    error = event.worker.error
    if event.state is not WorkerState.ERROR or error is None:
        return
    title, message = failure_text(error)
    node.app.notify(message, title=title, severity="error", markup=False, timeout=8)

"""The one place a failed worker becomes something a person reads: a notification.

A server that cannot be reached is said once, in the app's one connection notice
(a new one replaces the last), naming what could not be done.
"""

from __future__ import annotations

from typing import Protocol

from textual.dom import DOMNode
from textual.worker import Worker, WorkerState

from qrm_tui.client import QrmApiError, QrmUnavailable, describe_error

WORKER_ACTIONS = {
    "count": "count the deliveries",
    "export_scenario": "export the scenario",
    "load": "load the delivery",
    "load_deliveries": "load the report's deliveries",
    "load_document": "load the report",
    "load_newest": "load the newest rows",
    "load_older": "load older rows",
    "redeliver": "redeliver",
    "redeliver_failed": "redeliver the failed deliveries",
    "remove_webhook": "remove the webhook",
    "save": "save the webhook",
    "set_active": "activate or deactivate the webhook",
    "upload": "upload a report",
}
"""What each worker was doing, in words: "Could not upload a report: …"."""


class ConnectionNotices(Protocol):
    def connection_notice(self, message: str, *, title: str) -> None: ...


def unreachable_text(action: str, reason: str) -> str:
    """`Could not upload a report: cannot reach http://…: connection refused. Retrying.`"""
    return f"Could not {action}: {reason}. Retrying the connection."


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
    app = node.app
    if isinstance(error, QrmUnavailable) and hasattr(app, "connection_notice"):
        name = event.worker.name
        action = WORKER_ACTIONS.get(name, name.replace("_", " "))
        notices: ConnectionNotices = app
        notices.connection_notice(
            unreachable_text(action, describe_error(error)), title="Server unreachable"
        )
        return
    title, message = failure_text(error)
    app.notify(message, title=title, severity="error", markup=False, timeout=8)

"""Add a fault on one of QRM's routes: checked by the server's own `FaultSpec` before sending.

As in the webhook form, each message lands under its field, whether it comes
from the model here or from the server's 422; a message about the whole fault
("a fault needs a status, a delayMs or reset: true") lands above the buttons.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Switch

from mock_qrm.contract.codes import FAULT_ROUTES
from mock_qrm.contract.display import printable
from mock_qrm.contract.errors import validation_messages
from mock_qrm.contract.models import Fault, FaultSpec
from qrm_tui.client import QrmApiError, QrmClient
from qrm_tui.screens.base import WorkerErrors
from qrm_tui.widgets.footer import KeyFooter

NUMBERS = {
    "status": ("Status", "400 to 599, e.g. 503; blank: the usual answer"),
    "delayMs": ("Delay (ms)", "wait before answering, e.g. 2000"),
    "retryAfter": ("Retry-After (s)", "sent as the Retry-After header"),
    "times": ("Times", "calls it applies to; blank: until removed"),
}
"""The number fields, by the API's name: their label and hint."""

FIELDS = ("route", *NUMBERS, "reset")
"""Every field, in screen order; each has an error label (`#fault-<field>-error`)."""

DEFAULT_ROUTE = "GET /api/v1/reports/{id}"
"""The route a receiver calls back after a webhook."""


def whole_number(text: str) -> int | str | None:
    """Blank is absent; digits are a number; anything else stays text for the model to refuse."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return text


def fault_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Pydantic's errors by the API's field name (`body`: the fault as a whole)."""
    errors: dict[str, list[str]] = {}
    for loc, message in validation_messages(exc):
        name = str(loc[0]) if loc else "body"
        if message.startswith("Input should be a valid integer"):
            message = "Enter a whole number"
        errors.setdefault(name, []).append(message)
    return errors


class FaultForm(WorkerErrors, ModalScreen[Fault | None]):
    """Dismissed with the fault the server added, or `None` when cancelled."""

    HELP_GROUP = "Fault form"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close the form", id="fault_form.cancel"),
        Binding("ctrl+s", "submit", "Add", tooltip="Add the fault", id="fault_form.submit"),
    ]

    def __init__(self, client: QrmClient) -> None:
        super().__init__()
        self.client = client
        self._tried = False
        """A save was tried: from then on the errors follow every change."""

    def compose(self) -> ComposeResult:
        with Vertical(id="fault-dialog", classes="dialog"):
            yield Label("Add a fault on QRM's API", classes="dialog-title")
            with VerticalScroll(id="fault-form-body"):
                with Horizontal(classes="fault-row"):
                    yield Label("Route", classes="fault-label")
                    yield Select(
                        [(route, route) for route in FAULT_ROUTES],
                        value=DEFAULT_ROUTE,
                        allow_blank=False,
                        compact=True,
                        id="fault-route",
                    )
                yield Label(id="fault-route-error", classes="field-error", markup=False)
                for name, (label, hint) in NUMBERS.items():
                    with Horizontal(classes="fault-row"):
                        yield Label(label, classes="fault-label")
                        yield Input(
                            placeholder=hint,
                            id=f"fault-{name}",
                            compact=True,
                            restrict=r"[0-9]*",
                            max_length=7,
                        )
                    yield Label(id=f"fault-{name}-error", classes="field-error", markup=False)
                with Horizontal(classes="fault-row"):
                    yield Label("Reset", classes="fault-label")
                    yield Switch(False, id="fault-reset")
                    yield Label("drop the connection instead of answering", classes="hint-inline")
                yield Label(id="fault-reset-error", classes="field-error", markup=False)
            yield Label(id="fault-body-error", classes="field-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Add fault", id="fault-submit", variant="primary")
                yield Button("Cancel", id="fault-cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._show_errors({})
        self.query_one("#fault-status", Input).focus()

    # --- the fault as the form stands -------------------------------------------------

    def body(self) -> dict[str, Any]:
        """The request body, with the API's field names (blank fields left out)."""
        body: dict[str, Any] = {"route": self.query_one("#fault-route", Select).value}
        for name in NUMBERS:
            value = whole_number(self.query_one(f"#fault-{name}", Input).value)
            if value is not None:
                body[name] = value
        if self.query_one("#fault-reset", Switch).value:
            body["reset"] = True
        return body

    def check(self) -> dict[str, list[str]]:
        """The server's rules (`FaultSpec`), by field; empty when the fault is valid."""
        try:
            FaultSpec.model_validate(self.body())
        except ValidationError as exc:
            return fault_errors(exc)
        return {}

    # --- what the user does -----------------------------------------------------------

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        if self._tried:
            self._show_errors(self.check())

    @on(Input.Submitted)
    @on(Button.Pressed, "#fault-submit")
    def _submit(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#fault-cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        self._tried = True
        errors = self.check()
        self._show_errors(errors)
        if errors:
            self._focus_first(errors)
            return
        self.save()

    @work(group="fault-form", exclusive=True, exit_on_error=False)
    async def save(self) -> None:
        button = self.query_one("#fault-submit", Button)
        button.disabled = True
        try:
            spec = self.body()
            fault = await self.client.add_fault(spec.pop("route"), **spec)
        except QrmApiError as exc:
            if exc.status != 422:
                raise
            errors = {
                name.split(".", 1)[0] or "body": msgs for name, msgs in exc.field_errors.items()
            }
            self._show_errors(errors)
            self._focus_first(errors)
            return
        finally:
            button.disabled = False
        self.dismiss(fault)

    # --- showing ----------------------------------------------------------------------

    def _show_errors(self, errors: dict[str, list[str]]) -> None:
        """Each field's messages under it; the rest (the fault as a whole) above the buttons."""
        stray = [m for name, msgs in errors.items() if name not in FIELDS for m in msgs]
        for name in (*FIELDS, "body"):
            messages = stray if name == "body" else errors.get(name, [])
            label = self.query_one(f"#fault-{name}-error", Label)
            label.update("\n".join(printable(message) for message in messages))
            label.display = bool(messages)
            if name != "body":
                self._field(name).set_class(bool(messages), "-invalid")

    def _focus_first(self, errors: dict[str, list[str]]) -> None:
        for name in FIELDS:
            if name in errors:
                self._field(name).focus()
                return

    def _field(self, name: str) -> Widget:
        return self.query_one(f"#fault-{name}")

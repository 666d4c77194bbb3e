"""Add or edit a webhook: QRM's form, checked by the server's own models before sending.

The rules live once, in `mock_qrm.contract.models` (`WebhookCreate`, `WebhookPatch`);
this form builds the request body, validates it with them, and puts each message
under its field. Whatever the server still refuses (a 422) lands the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Switch, TextArea

from mock_qrm.contract.display import printable
from mock_qrm.contract.errors import validation_messages
from mock_qrm.contract.models import (
    EventComponent,
    RateLimit,
    Webhook,
    WebhookCreate,
    WebhookPatch,
)
from mock_qrm.contract.rules import header_problems
from qrm_tui.client import QrmApiError, QrmClient
from qrm_tui.screens.base import WorkerErrors
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.footer import KeyFooter

FIELDS = ("name", "url", "events", "username", "password", "headers", "rate-limit")
"""The form's fields, in screen order; each has an input and an error label."""

API_FIELDS = {
    "name": "name",
    "url": "url",
    "events": "events",
    "basicAuth.username": "username",
    "basicAuth.password": "password",
    "basicAuth": "username",
    "headers": "headers",
    "rateLimit": "rate-limit",
}
"""Where an error keyed by the API's dotted field path is shown."""


def errors_by_field(errors: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """API field errors keyed by form field, and the messages that belong to no field."""
    placed: dict[str, list[str]] = {}
    stray: list[str] = []
    for path, messages in errors.items():
        field = API_FIELDS.get(path) or API_FIELDS.get(path.split(".", 1)[0])
        if field is None:
            stray.extend(f"{path}: {message}" for message in messages)
        else:
            placed.setdefault(field, []).extend(messages)
    return placed, stray


def parse_headers(text: str) -> tuple[dict[str, str], list[str]]:
    """`Name: value` lines as the API's `headers` object, and what could not be read."""
    headers: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            problems.append(f"Line {number}: write each header as Name: value")
        else:
            headers[name.strip()] = value.strip()
    return headers, problems


def parse_rate_limit(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """`2/minute` as the API's `rateLimit` object (blank: none), and what could not be read."""
    if not text.strip():
        return None, []
    try:
        return RateLimit.parse(text).model_dump(), []
    except ValidationError as exc:
        return None, [message for _, message in validation_messages(exc)]
    except ValueError:
        return None, ["Write the limit as N/minute or N/hour, like 2/minute, or leave it blank"]


def validation_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Pydantic's errors keyed by the API's dotted field path, as the server words them."""
    errors: dict[str, list[str]] = {}
    for loc, message in validation_messages(exc):
        path = ".".join(str(part) for part in loc if not isinstance(part, int))
        errors.setdefault(path or "body", []).append(message)
    return errors


class WebhookForm(WorkerErrors, ModalScreen[Webhook | None]):
    """Dismissed with the saved webhook, or `None` when cancelled."""

    HELP_GROUP = "Webhook form"
    BINDINGS = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            tooltip="Close the form (asks first if anything changed)",
            id="form.cancel",
        ),
        Binding(
            "ctrl+s",
            "submit",
            "Save",
            tooltip="Add the webhook, or save the changes",
            id="form.submit",
        ),
    ]

    def __init__(
        self, client: QrmClient, components: list[EventComponent], webhook: Webhook | None = None
    ) -> None:
        super().__init__()
        self.client = client
        self.components = components
        self.webhook = webhook
        self._checkboxes: dict[str, Checkbox] = {}
        self._touched: set[str] = set()
        """Fields whose errors are shown: left after a change, or all once a save was tried."""
        self._changed: set[str] = set()
        """Fields changed since they were last left (they become touched when left)."""
        self._initial: dict[str, Any] | None = None
        """The body as the form opened: esc asks before throwing changes away."""

    @property
    def editing(self) -> bool:
        return self.webhook is not None

    @property
    def password_stored(self) -> bool:
        auth = self.webhook.basic_auth if self.webhook is not None else None
        return auth is not None and auth.password_set

    # --- layout -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        webhook = self.webhook
        selected = set(webhook.events) if webhook else set()
        auth = webhook.basic_auth if webhook else None
        title = f"Edit webhook · {printable(webhook.name)}" if webhook else "Add webhook"
        with Vertical(id="form-dialog", classes="dialog"):
            yield Label(title, classes="dialog-title", markup=False)
            with VerticalScroll(id="form-body"):
                yield Label("Name", classes="field-label")
                # What the server holds, as it is: a control character shows as its
                # escape (`\x1b`), for the person to see and fix (the server refuses it).
                yield Input(
                    printable(webhook.name) if webhook else "",
                    placeholder="e.g. Staging receiver",
                    id="name",
                    compact=True,
                )
                yield Label(id="name-error", classes="field-error", markup=False)
                yield Label("URL", classes="field-label")
                yield Input(
                    printable(webhook.url) if webhook else "",
                    placeholder="https://example.com/qrm/webhook",
                    id="url",
                    compact=True,
                )
                yield Label(id="url-error", classes="field-error", markup=False)
                yield Label("Events", classes="field-label")
                with Vertical(id="events"):
                    for index, component in enumerate(self.components):
                        codes = [event.event_code for event in component.events]
                        with Horizontal(classes="component"):
                            yield Switch(
                                all(code in selected for code in codes),
                                id=f"component-{index}",
                                classes="component-switch",
                                tooltip=f"Select or clear every {component.component} event",
                            )
                            yield Label(
                                printable(component.component),
                                classes="component-name",
                                markup=False,
                            )
                            yield Label(id=f"component-{index}-count", classes="component-count")
                        for event in component.events:
                            box = Checkbox(
                                Content.assemble(
                                    printable(event.event_name),
                                    "  ",
                                    (printable(event.event_code), "dim"),
                                ),
                                event.event_code in selected,
                                name=event.event_code,
                                classes=f"event of-component-{index}",
                            )
                            self._checkboxes[event.event_code] = box
                            yield box
                yield Label(id="events-error", classes="field-error", markup=False)
                with Horizontal(classes="switch-row"):
                    yield Switch(auth is not None, id="basic-auth")
                    yield Label("Basic Authentication", classes="switch-label")
                with Vertical(id="auth-fields"):
                    yield Label("Username", classes="field-label")
                    yield Input(
                        printable(auth.username) if auth else "", id="username", compact=True
                    )
                    yield Label(id="username-error", classes="field-error", markup=False)
                    yield Label("Password", classes="field-label")
                    yield Input(
                        password=True,
                        placeholder="unchanged: leave blank to keep the stored password"
                        if self.password_stored
                        else "",
                        id="password",
                        compact=True,
                    )
                    yield Label(id="password-error", classes="field-error", markup=False)
                yield Label("Custom headers", classes="field-label")
                yield TextArea(
                    "\n".join(
                        printable(f"{k}: {v}")
                        for k, v in (webhook.headers if webhook else {}).items()
                    ),
                    id="headers",
                    compact=True,
                    placeholder="one per line, e.g. X-Tenant: acme (at most 20)",
                    show_cursor=True,
                )
                yield Label(id="headers-error", classes="field-error", markup=False)
                yield Label("Rate limit", classes="field-label")
                yield Input(
                    str(webhook.rate_limit) if webhook and webhook.rate_limit else "",
                    placeholder="none; or at most N attempts: 2/minute, 100/hour",
                    id="rate-limit",
                    compact=True,
                )
                yield Label(id="rate-limit-error", classes="field-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(
                    "Save changes" if self.editing else "Add webhook",
                    id="submit",
                    variant="primary",
                )
                yield Button("Cancel", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        for index in range(len(self.components)):
            self._show_component(index)
        self._show_auth_fields()
        self._show_errors({})
        self._initial = self._snapshot()
        self.query_one("#name", Input).focus()

    # --- what the user does ---------------------------------------------------------

    @on(Switch.Changed, ".component-switch")
    def _component_switched(self, event: Switch.Changed) -> None:
        index = self._component_index(event.switch)
        with self.prevent(Checkbox.Changed):
            for code in self._codes(index):
                self._checkboxes[code].value = event.value
        self._show_component(index)
        self._touched.add("events")
        self._revalidate()

    @on(Checkbox.Changed, ".event")
    def _event_checked(self, event: Checkbox.Changed) -> None:
        self._show_component(self._component_index(event.checkbox))
        self._touched.add("events")
        self._revalidate()

    @on(Switch.Changed, "#basic-auth")
    def _auth_switched(self) -> None:
        self._show_auth_fields()
        self._revalidate()

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        if event.input.id:
            self._changed.add(event.input.id)
        self._revalidate()

    @on(TextArea.Changed, "#headers")
    def _headers_typed(self) -> None:
        self._changed.add("headers")
        self._revalidate()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        """A field is checked once the user has changed it and moved on."""
        field = event.widget.id
        if field in self._changed and field not in self._touched:
            self._touched.add(field)
            self._revalidate()

    @on(Input.Submitted)
    def _entered(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        if not self.changed:
            self.dismiss(None)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.app.push_screen(
            ConfirmDialog(
                "Discard your changes?",
                "The webhook form has changes that are not saved.",
                "Discard changes",
            ),
            answered,
        )

    @property
    def changed(self) -> bool:
        """Anything differs from the form as it opened."""
        return self._initial is not None and self._snapshot() != self._initial

    def _snapshot(self) -> dict[str, Any]:
        body = self.body()
        body["password"] = self.query_one("#password", Input).value
        body["username"] = self.query_one("#username", Input).value
        return body

    def action_submit(self) -> None:
        self._touched.update(FIELDS)
        errors = self.check()
        self._show_errors(errors, announce=True)
        if errors:
            self._focus_first(errors)
            return
        self.save()

    # --- the rules --------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """The request body, with the API's field names, exactly as the form stands."""
        body: dict[str, Any] = {
            "name": self.query_one("#name", Input).value,
            "url": self.query_one("#url", Input).value,
            "events": [code for code, box in self._checkboxes.items() if box.value],
            "basicAuth": None,
            "headers": parse_headers(self.query_one("#headers", TextArea).text)[0],
            "rateLimit": parse_rate_limit(self.query_one("#rate-limit", Input).value)[0],
        }
        if self.query_one("#basic-auth", Switch).value:
            auth = {"username": self.query_one("#username", Input).value}
            password = self.query_one("#password", Input).value
            if password or not self.password_stored:
                auth["password"] = password
            body["basicAuth"] = auth
        return body

    def _validated(self) -> BaseModel:
        """The body checked by the model the server applies; raises `ValidationError`."""
        body = self.body()
        auth = body["basicAuth"]
        model: type[BaseModel] = WebhookPatch
        if not self.editing or (auth is not None and "password" in auth):
            model = WebhookCreate  # a password is required here
        context = {"event_codes": frozenset(self._checkboxes)}
        return model.model_validate(body, context=context)

    def check(self) -> dict[str, list[str]]:
        """Every rule of SPEC.md sections 2 and 8.7, keyed by API field path; empty when valid."""
        errors: dict[str, list[str]] = {}
        for path, problems in (
            ("headers", parse_headers(self.query_one("#headers", TextArea).text)[1]),
            ("rateLimit", parse_rate_limit(self.query_one("#rate-limit", Input).value)[1]),
        ):
            if problems:
                errors[path] = problems
        try:
            self._validated()
        except ValidationError as exc:
            for path, messages in validation_errors(exc).items():
                errors.setdefault(path, []).extend(messages)
        body = self.body()  # the server's own header rules, so every error shows at once
        for path, messages in header_problems(
            body["headers"], body["basicAuth"] is not None
        ).items():
            errors.setdefault(path, []).extend(messages)
        return errors

    def _revalidate(self) -> None:
        """The rules again, shown for the fields the user has touched only."""
        if self._touched:
            self._show_errors(self.check())

    # --- sending ----------------------------------------------------------------------

    @work(group="form-save", exclusive=True, exit_on_error=False)
    async def save(self) -> None:
        model = self._validated()
        button = self.query_one("#submit", Button)
        button.disabled = True
        try:
            if self.webhook is None:
                assert isinstance(model, WebhookCreate)
                auth = model.basic_auth
                saved = await self.client.create_webhook(
                    model.name,
                    model.url,
                    model.events,
                    basic_auth=None if auth is None else (auth.username, auth.password),
                    headers=model.headers,
                    rate_limit=None if model.rate_limit is None else model.rate_limit.model_dump(),
                )
            else:
                changes = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
                changes.pop("active", None)
                saved = await self.client.update_webhook(self.webhook.id, changes)
        except QrmApiError as exc:
            if exc.status != 422:
                raise
            self._show_errors(exc.field_errors, from_server=True)
            self._focus_first(exc.field_errors)
            return
        finally:
            button.disabled = False
        self.dismiss(saved)

    # --- showing ----------------------------------------------------------------------

    def _show_errors(
        self, errors: dict[str, list[str]], *, from_server: bool = False, announce: bool = False
    ) -> None:
        """Each touched field's errors under it; those of no field as one notice, when asked."""
        placed, stray = errors_by_field(errors)
        for field in FIELDS:
            label = self.query_one(f"#{field}-error", Label)
            messages = placed.get(field, []) if from_server or field in self._touched else []
            label.update("\n".join(printable(message) for message in messages))
            label.display = bool(messages)
            self._field_widget(field).set_class(bool(messages), "-invalid")
        if stray and (from_server or announce):
            self.notify(
                "\n".join(stray),
                title="The server refused" if from_server else "Not valid",
                severity="error",
                markup=False,
            )

    def _focus_first(self, errors: dict[str, list[str]]) -> None:
        placed, _ = errors_by_field(errors)
        for field in FIELDS:
            if field in placed:
                widget = self._field_widget(field)
                if isinstance(widget, Vertical):
                    widget = next(iter(self._checkboxes.values()), widget)
                widget.focus()
                # The message under it too: at 80x24 the last field's is below the fold.
                error = self.query_one(f"#{field}-error", Label)
                self.call_after_refresh(error.scroll_visible, animate=False)
                return

    def _field_widget(self, field: str) -> Widget:
        return self.query_one(f"#{field}")

    def _show_component(self, index: int) -> None:
        codes = self._codes(index)
        chosen = sum(self._checkboxes[code].value for code in codes)
        switch = self.query_one(f"#component-{index}", Switch)
        with self.prevent(Switch.Changed):
            switch.value = chosen == len(codes) and chosen > 0
        count = self.query_one(f"#component-{index}-count", Label)
        count.update(f"{chosen} of {len(codes)} selected")
        count.set_class(0 < chosen < len(codes), "-partial")

    def _show_auth_fields(self) -> None:
        self.query_one("#auth-fields").display = self.query_one("#basic-auth", Switch).value

    def _codes(self, index: int) -> list[str]:
        return [event.event_code for event in self.components[index].events]

    def _component_index(self, widget: Widget) -> int:
        for name in widget.classes:
            if name.startswith("of-component-"):
                return int(name.removeprefix("of-component-"))
        return int((widget.id or "").removeprefix("component-"))

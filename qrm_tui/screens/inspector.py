"""One delivery down to the bytes: the message as sent, and every attempt's request and response.

It follows the delivery while open: a feed change to it reloads it over REST
(the feed says that it changed; the attempts come from the journal). Above the
message, the receiver's call-backs: the calls for the report's document and PDF
made since the first attempt started, with the status each got (SPEC 8.4). They
are not on the feed: read with the delivery, and every `CALLS_INTERVAL` seconds
while the inspector is shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from mock_qrm.client import labels
from mock_qrm.contract.codes import Outcome, Trigger
from mock_qrm.contract.display import printable
from mock_qrm.contract.models import ApiCall, Attempt, DeliveryDetail
from qrm_tui.client import QrmApiError, QrmUnavailable, call_back_paths, call_backs, describe_error
from qrm_tui.format import (
    answer_label,
    attempt_number,
    full_time,
    indented,
    latency_label,
    manual_attempts,
    plain,
    pretty_json,
    size_label,
    state_label,
)
from qrm_tui.live import Inbox
from qrm_tui.screens.base import QrmScreen
from qrm_tui.screens.faults import call_status, call_time
from qrm_tui.widgets.footer import KeyFooter
from qrm_tui.widgets.header import AppHeader

if TYPE_CHECKING:
    from mock_qrm.contract.models import Delivery

CERTIFICATE_HINT = (
    "The mock does not trust the receiver's certificate: start it with --ca-file (mkcert's"
    " rootCA.pem, or the self-signed certificate), or --insecure-receivers."
)
FLUSH_INTERVAL = 0.15
CALLS_INTERVAL = 2.0
"""Seconds between reads of the calls to QRM's API while the inspector is shown."""
CALLS_SHOWN = 20
"""The newest call-backs shown; the faults screen (`4`) lists every call."""

OUTCOMES = {
    Outcome.SUCCESS: ("✓ success", "text-success"),
    Outcome.FAILURE: ("✗ failure", "text-error"),
    Outcome.INTERRUPTED: ("⚡ interrupted (the server stopped mid-attempt)", "text-warning"),
}


class DeliveryInspector(QrmScreen):
    HELP_GROUP = "Delivery"
    AUTO_FOCUS = "#inspector-body"
    BINDINGS = [
        Binding(
            "escape", "app.pop_screen", "Back", tooltip="Back to the deliveries", id="delivery.back"
        ),
        Binding(
            "r",
            "redeliver",
            "Redeliver",
            tooltip="Send this delivery again now",
            id="delivery.redeliver",
        ),
        Binding(
            "c",
            "copy_message_id",
            "Copy id",
            tooltip="Copy the messageId",
            id="delivery.copy_message_id",
        ),
        Binding(
            "p",
            "copy_payload",
            "Copy payload",
            tooltip="Copy the message body as sent",
            id="delivery.copy_payload",
        ),
    ]

    def __init__(self, delivery_id: int) -> None:
        super().__init__()
        self.delivery_id = delivery_id
        self.detail: DeliveryDetail | None = None
        self.current: Delivery | None = None
        """The latest state the feed told of (fresher than `detail` between reloads)."""
        self._inbox: Inbox[Delivery] | None = None
        self._reveal = False
        self.call_backs: list[ApiCall] | None = None
        """The receiver's calls for this delivery's report since its first attempt (None: unread)."""
        self._calls_problem = ""
        self._calls_shown: Text | None = None

    def compose(self) -> ComposeResult:
        yield AppHeader("deliveries")
        yield Label(f"Delivery #{self.delivery_id}", id="inspector-title", markup=False)
        yield Label(id="inspector-state")
        with VerticalScroll(id="inspector-body"):
            # QRM's API records no caller: every client's calls for the report are listed.
            yield Label(
                "Calls to QRM's API for this report, from any client", classes="section-title"
            )
            yield Static("Reading the calls to QRM's API…", id="callbacks", markup=False)
            yield Label("Message as sent", classes="section-title")
            yield Static("Loading…", id="message", markup=False)
            yield Vertical(id="attempts")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._inbox = self.open_inbox(self.qrm.store.deliveries, FLUSH_INTERVAL, self.flush)
        self.set_interval(1.0, self._show_state)
        self.watch(self.qrm, "feed_generation", self._reload, init=False)
        self.watch(self.qrm, "theme", self._restyle, init=False)
        self._calls_poll = self.set_interval(CALLS_INTERVAL, self._poll_calls, pause=True)
        self.load()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        self._calls_poll.resume()

    def on_screen_suspend(self, event: events.ScreenSuspend) -> None:
        self._calls_poll.pause()

    def _poll_calls(self) -> None:
        if self.detail is not None and self.qrm.online:
            self.load_call_backs()

    def flush(self) -> None:
        if self._inbox is None:
            return
        mine = [d for d in self._inbox.take() if d.id == self.delivery_id]
        if mine or self._inbox.overflowed:
            self._inbox.discard()
            if mine:
                self.current = mine[-1]
                self._show_state()
            self.load()

    def _reload(self) -> None:
        self.load()

    @work(group="inspector", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        detail = await self.qrm.client.delivery(self.delivery_id)
        self.detail = detail
        self.current = detail
        self.show(detail)
        self.load_call_backs()

    @work(group="inspector-calls", exclusive=True, exit_on_error=False)
    async def load_call_backs(self) -> None:
        """Quiet: a failure is said in the panel (the header says when the server is gone)."""
        detail = self.detail
        since = first_attempt(detail) if detail is not None else None
        if detail is None or since is None:
            self.call_backs = None
        else:
            try:
                calls = await self.qrm.client.api_calls()
            except (QrmUnavailable, QrmApiError) as exc:
                self._calls_problem = (
                    f"Could not read the calls to QRM's API: {describe_error(exc)}"
                )
            else:
                self._calls_problem = ""
                self.call_backs = call_backs(calls, detail.resource_id, since)
        self._show_call_backs()

    # --- drawing ----------------------------------------------------------------------

    def _restyle(self) -> None:
        self.forget_tones()
        if self.detail is not None:
            self.show(self.detail)
            self._show_call_backs(force=True)

    def _show_call_backs(self, *, force: bool = False) -> None:
        """One line per call: time, method, path, status and the fault that answered, if any."""
        detail = self.detail
        if detail is None:
            return
        tones = self.tones
        document, pdf = call_back_paths(detail.resource_id)
        since = first_attempt(detail)
        lines: list[Text] = []
        if since is None:
            lines.append(tones.text("None yet: no attempt has started.", "muted"))
        elif self._calls_problem:
            lines.append(tones.text(self._calls_problem, "text-error"))
        elif self.call_backs is not None:
            calls = self.call_backs
            if not calls:
                lines.append(
                    Text(f"None yet: no GET {document} or {pdf} since {call_time(since)}.")
                )
            else:
                what = "1 call" if len(calls) == 1 else f"{len(calls)} calls"
                lines.append(
                    tones.text(
                        f"{what} for report {detail.resource_id} "
                        f"since the first attempt ({call_time(since)})",
                        "muted",
                    )
                )
                if len(calls) > CALLS_SHOWN:
                    lines.append(tones.text(f"  … {len(calls) - CALLS_SHOWN} earlier", "muted"))
                paths = [printable(call.path) for call in calls[-CALLS_SHOWN:]]
                width = max(len(path) for path in paths)
                for call, path in zip(calls[-CALLS_SHOWN:], paths, strict=True):
                    line = plain(f"  {call_time(call.at)}  {call.method:<4} {path:<{width}}  ")
                    line.append_text(tones.text(*call_status(call)))
                    if call.fault_id is not None:
                        line.append_text(tones.text(f"  fault #{call.fault_id}", "text-warning"))
                    lines.append(line)
        else:
            return
        text = Text("\n").join(lines)
        if not force and text == self._calls_shown:
            return  # the poll found nothing new
        self._calls_shown = text
        panel = self.query_one("#callbacks", Static)
        panel.update(text)
        # Drawn as the screen opens, a taller text can keep the height it had: measure again.
        self.call_after_refresh(panel.refresh, layout=True)

    def show(self, detail: DeliveryDetail) -> None:
        self.query_one("#inspector-title", Label).update(
            plain(
                f"Delivery #{detail.id} · {detail.webhook_name} · {detail.event_code} "
                f"· report {detail.resource_id}"
            )
        )
        self._show_state()
        message = detail.message.model_dump_json(by_alias=True)
        self.query_one("#message", Static).update(
            Group(
                self.tones.text(f"messageId {detail.message_id}", "muted"),
                indented(pretty_json(message), highlight=True),
            )
        )
        attempts = self.query_one("#attempts", Vertical)
        body = self.query_one("#inspector-body", VerticalScroll)
        reveal = self._reveal or (body.max_scroll_y > 0 and body.is_vertical_scroll_end)
        shown = {int(w.id.removeprefix("attempt-")): w for w in attempts.query(Static) if w.id}
        newest: Static | None = None
        for attempt in detail.attempts:
            title = self._attempt_title(attempt)
            widget = shown.get(attempt.number)
            if widget is None:
                widget = Static(self._attempt_body(attempt), id=f"attempt-{attempt.number}")
                widget.add_class("attempt")
                widget.border_title = title
                attempts.mount(widget)
                newest = widget
            else:
                widget.update(self._attempt_body(attempt))
                widget.border_title = title
            widget.set_class(attempt.outcome is Outcome.SUCCESS, "-success")
            widget.set_class(attempt.outcome is Outcome.FAILURE, "-failure")
        if newest is not None and reveal:
            # Reading the newest attempt, or just asked for one: show the one that came.
            self._reveal = False
            self.call_after_refresh(body.scroll_to_widget, newest, top=True, animate=False)

    def _show_state(self) -> None:
        delivery = self.current
        if delivery is None:
            return
        tones = self.tones
        state, tone = state_label(delivery, self.qrm.server_now())
        line = Text()
        line.append_text(tones.text(state, tone))
        number = attempt_number(delivery)
        line.append(
            f" · attempt {number} of {self.qrm.max_attempts}" if number else " · no attempt yet"
        )
        manual = manual_attempts(delivery)
        if manual:
            line.append(f" + {manual} manual")
        line.append(f" · created {full_time(delivery.created_at)}")
        if delivery.completed_at is not None:
            line.append(f" · completed {full_time(delivery.completed_at)}")
        self.query_one("#inspector-state", Label).update(line)

    def _attempt_title(self, attempt: Attempt) -> str:
        if attempt.trigger is Trigger.MANUAL:
            which = f"Attempt {attempt.number} · manual redelivery"
        else:
            which = f"Attempt {attempt.number} of {self.qrm.max_attempts} · automatic"
        return f"{which} · {full_time(attempt.started_at)} · {latency_label(attempt.duration_ms)}"

    def _attempt_body(self, attempt: Attempt) -> RenderableType:
        tones = self.tones
        muted = "muted"
        if attempt.outcome is None:
            outcome, tone = "→ in flight…", "text-accent"
        else:
            outcome, tone = OUTCOMES[attempt.outcome]
        answer, answer_tone = answer_label(attempt.response_status, attempt.error)
        head = Text()
        head.append_text(tones.text(outcome, tone))
        if attempt.response_status is not None:
            head.append(" · status ")
            head.append_text(tones.text(answer, answer_tone))
        elif attempt.error is not None:
            head.append(" · error ")
            full = labels.error_label(attempt.error, attempt.error_detail) or attempt.error
            head.append_text(tones.text(full, "text-error"))
            head.append(" (no response status)")
        parts: list[RenderableType] = [head]
        if labels.is_certificate_failure(attempt.error, attempt.error_detail):
            parts.append(tones.text(CERTIFICATE_HINT, muted))
        parts.append(plain(f"POST {attempt.url}", style="bold"))
        parts.append(tones.text("Request headers", muted))
        parts.extend(
            indented(f"{name}: {value}", 2) for name, value in attempt.request_headers.items()
        )
        body = attempt.request_body or ""
        parts.append(tones.text(f"Request body ({size_label(len(body.encode()))}, as sent)", muted))
        parts.append(indented(body, 2))
        if attempt.response_status is None and attempt.outcome is not None:
            parts.append(tones.text("No response", muted))
            return Group(*parts)
        if attempt.response_status is None:
            return Group(*parts)
        parts.append(tones.text(f"Response headers (status {attempt.response_status})", muted))
        parts.extend(
            indented(f"{name}: {value}", 2)
            for name, value in (attempt.response_headers or {}).items()
        )
        response = attempt.response_body or ""
        truncated = (
            "truncated: first 16 KiB kept" if attempt.response_truncated else "not truncated"
        )
        parts.append(
            tones.text(f"Response body ({size_label(len(response.encode()))}, {truncated})", muted)
        )
        parts.append(
            indented(pretty_json(response), highlight=True) if response else Text("  (empty)")
        )
        return Group(*parts)

    # --- actions ------------------------------------------------------------------------

    def action_redeliver(self) -> None:
        if self.qrm.require_online(f"redeliver delivery #{self.delivery_id}"):
            self.redeliver()

    @work(group="inspector-redeliver", exclusive=True, exit_on_error=False)
    async def redeliver(self) -> None:
        self.notify(f"Redelivering delivery #{self.delivery_id}…", markup=False, timeout=2)
        self._reveal = True
        attempt = await self.qrm.client.redeliver(self.delivery_id)
        answer, _ = answer_label(attempt.response_status, attempt.error, attempt.error_detail)
        took = latency_label(attempt.duration_ms)
        if attempt.outcome is Outcome.SUCCESS:
            self.notify(
                f"Attempt {attempt.number} delivered: {answer} in {took}.",
                title="Redelivered",
                markup=False,
            )
        else:
            self.notify(
                f"Attempt {attempt.number} failed: {answer} in {took}.",
                title="Redelivery failed",
                severity="warning",
                markup=False,
            )
        self.load()

    def action_copy_message_id(self) -> None:
        delivery = self.current
        if delivery is not None:
            self.app.copy_to_clipboard(delivery.message_id)
            self.notify(f"Copied {delivery.message_id}", title="messageId", markup=False)

    def action_copy_payload(self) -> None:
        detail = self.detail
        if detail is None:
            return
        sent = next((a.request_body for a in detail.attempts if a.request_body), None)
        body = sent or detail.message.model_dump_json(by_alias=True)
        self.app.copy_to_clipboard(body)
        self.notify(
            f"Copied the message body ({size_label(len(body.encode()))}).",
            title="Payload",
            markup=False,
        )


def first_attempt(detail: DeliveryDetail) -> datetime | None:
    """When the delivery's first attempt started: call-backs come after it."""
    return min((attempt.started_at for attempt in detail.attempts), default=None)

"""Faults on QRM's own API, and the calls receivers made to it (SPEC 8.4).

A receiver answers the webhook, then calls back `GET /api/v1/reports/{id}`;
here a person makes that call fail (`n`), sees which faults are active and how
many calls each still applies to, removes them (`d`, `D`), and watches the calls
come in with the status each got. Neither is on the live feed: the screen reads
them when shown, on `r`, and every `POLL_INTERVAL` seconds while it is shown.
"""

from __future__ import annotations

from datetime import datetime

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Label, Static

from mock_qrm.contract.models import ApiCall, Fault
from qrm_tui.client import CallLog, QrmApiError, QrmUnavailable, describe_error
from qrm_tui.format import Tone, latency_label, plain
from qrm_tui.screens.base import QrmScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.fault_form import FaultForm
from qrm_tui.widgets.footer import KeyFooter
from qrm_tui.widgets.header import AppHeader
from qrm_tui.widgets.live_table import Cells, Column, LiveTable

POLL_INTERVAL = 2.0
"""Seconds between reads of the faults and the calls while the screen is shown."""

FAULTS_SHOWN = 6
"""Rows of faults shown before their table scrolls: the calls below keep their room."""

FAULT_COLUMNS = (
    Column("id", "Id", 3, "right"),
    Column("route", "Route", 27, least=22, give_up=2, importance=10, shorten="middle"),
    Column("does", "What it does", 28, least=18, most=60, give_up=1, importance=9),
    Column("left", "Left", 13, least=9, give_up=3),
)
"""The route and what the fault does come first; `until removed` gives way when narrow."""

CALL_COLUMNS = (
    Column("time", "Time", 12, least=8, give_up=1),
    Column("method", "Method", 6),
    Column("path", "Path", 26, least=16, most=80, give_up=2, importance=10, shorten="middle"),
    Column("status", "Status", 6),
    Column("fault", "Fault", 5),
)
"""Newest first; the path is the main job, whole when there is room."""


def fault_effect(fault: Fault) -> tuple[str, Tone]:
    """`503 · Retry-After 30 s`, `wait 2.0 s · as usual`, `drop the connection`, …"""
    parts = []
    if fault.delay_ms:
        parts.append(f"wait {latency_label(fault.delay_ms)}")
    if fault.reset:
        parts.append("drop the connection")
    elif fault.status is not None:
        parts.append(str(fault.status))
    else:
        parts.append("as usual")
    if fault.retry_after is not None:
        parts.append(f"Retry-After {fault.retry_after} s")
    tone = "text-error" if fault.reset or fault.status is not None else "text-warning"
    return " · ".join(parts), tone


def fault_left(fault: Fault) -> str:
    """`2 of 3`: matching calls it still applies to, of how many; or `until removed`."""
    if fault.times is None or fault.remaining is None:
        return "until removed"
    return f"{fault.remaining} of {fault.times}"


def call_time(moment: datetime) -> str:
    """`15:04:05.123` in local time: calls a retry apart are told apart."""
    local = moment.astimezone()
    return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def call_status(call: ApiCall) -> tuple[str, Tone]:
    """The status the call got, green when it succeeded; `reset` when a fault dropped it."""
    if call.status is None:
        return "reset", "text-error"
    return str(call.status), "text-success" if call.status < 400 else "text-error"


class QuietTable(LiveTable):
    """A live table whose rows have nothing to open: `enter` is not offered."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "select"


class FaultsScreen(QrmScreen):
    HELP_GROUP = "Faults"
    AUTO_FOCUS = "#fault-table"
    BINDINGS = [
        Binding(
            "n",
            "add",
            "Add fault",
            tooltip="Make one of QRM's routes fail, slow down or drop the connection",
            id="faults.add",
        ),
        Binding(
            "d",
            "remove",
            "Remove",
            tooltip="Remove the selected fault (asks first)",
            id="faults.remove",
        ),
        Binding(
            "D",
            "clear",
            "Clear all",
            key_display="D",
            tooltip="Remove every fault (asks first)",
            id="faults.clear",
        ),
        Binding(
            "r",
            "reload",
            "Refresh",
            tooltip="Read the faults and the calls to QRM's API now",
            id="faults.reload",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.faults: dict[int, Fault] = {}
        """Active faults by table key (minus the id: the first to apply on top)."""
        self.calls = CallLog()
        self._read = False
        self._problem = ""

    @property
    def fault_table(self) -> QuietTable:
        return self.query_one("#fault-table", QuietTable)

    @property
    def call_table(self) -> QuietTable:
        return self.query_one("#call-table", QuietTable)

    def compose(self) -> ComposeResult:
        yield AppHeader("faults")
        yield Label("Faults on QRM's API, in the order they apply", classes="section-title")
        yield QuietTable(
            FAULT_COLUMNS, lambda key: self.fault_cells(self.faults[key]), id="fault-table"
        )
        yield Static("Reading the faults…", id="faults-empty", markup=False)
        yield Label("Calls to QRM's API, newest first", classes="section-title")
        yield QuietTable(
            CALL_COLUMNS, lambda key: self.call_cells(self.calls.calls[key]), id="call-table"
        )
        yield Label(id="calls-foot", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._poll = self.set_interval(POLL_INTERVAL, self._tick, pause=True)
        self.watch(self.qrm, "feed_generation", self._tick, init=False)
        self.watch(self.qrm, "theme", self.redraw, init=False)
        self._show_faults()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        self._poll.resume()
        self._tick()

    def on_screen_suspend(self, event: events.ScreenSuspend) -> None:
        self._poll.pause()

    def _tick(self) -> None:
        if self.qrm.online:
            self.refresh_faults(quiet=True)

    def redraw(self) -> None:
        self.forget_tones()
        self.fault_table.redraw()
        self.call_table.redraw()

    # --- reading --------------------------------------------------------------------------

    @work(group="faults-read", exclusive=True, exit_on_error=False)
    async def refresh_faults(self, quiet: bool = False) -> None:
        """Read both lists. Quiet (the poll): a failure is said on the screen, not in a notice,
        so a server without these routes, or one going away, does not raise one every 2 s."""
        client = self.qrm.client
        try:
            faults = await client.faults()
            calls = await client.api_calls()
        except (QrmUnavailable, QrmApiError) as exc:
            if not quiet:
                raise
            self._problem = f"Could not read them: {describe_error(exc)}"
            self._show_foot()
            return
        self._problem = ""
        self._read = True
        self.show_faults(faults)
        self.show_calls(calls)

    def show_faults(self, faults: list[Fault]) -> None:
        wanted = {-fault.id: fault for fault in faults}
        removed = [key for key in self.faults if key not in wanted]
        changed = [key for key, fault in wanted.items() if self.faults.get(key) != fault]
        self.faults = wanted
        if changed or removed:
            self.fault_table.update(changed, removed)
            self.refresh_bindings()  # `d` and `D` follow whether there is a fault
        self._show_faults()

    def show_calls(self, calls: list[ApiCall]) -> None:
        added, removed = self.calls.merge(calls)
        if added or removed:
            self.call_table.update(added, removed)
        self._show_foot()

    # --- drawing --------------------------------------------------------------------------

    def fault_cells(self, fault: Fault) -> Cells:
        text = self.tones.text
        return (
            text(str(fault.id)),
            text(fault.route),
            text(*fault_effect(fault)),
            text(fault_left(fault), "muted" if fault.times is None else ""),
        )

    def call_cells(self, call: ApiCall) -> Cells:
        text = self.tones.text
        fault = "—" if call.fault_id is None else f"#{call.fault_id}"
        return (
            text(call_time(call.at), "muted"),
            text(call.method),
            text(call.path),
            text(*call_status(call)),
            text(fault, "muted" if call.fault_id is None else "text-warning"),
        )

    def _show_faults(self) -> None:
        table = self.fault_table
        count = len(self.faults)
        table.display = count > 0
        table.styles.height = min(count, FAULTS_SHOWN) + 1
        empty = self.query_one("#faults-empty", Static)
        empty.display = count == 0
        if self._read:
            empty.update("None: QRM's API answers as usual. Press n to add a fault.")

    def _show_foot(self) -> None:
        count = len(self.calls.calls)
        if not self._read:
            message = "Reading the calls…"
        elif count:
            calls = "1 call" if count == 1 else f"{count:,} calls"
            message = f"{calls} (the server keeps the last 1,000) · r refreshes"
        else:
            message = "No calls yet: a receiver calls GET /api/v1/reports/{id} after a webhook."
        if self._problem:
            message = f"{self._problem} · r tries again"
        self.query_one("#calls-foot", Label).update(plain(message))

    # --- actions ------------------------------------------------------------------------

    @property
    def selected(self) -> Fault | None:
        key = self.fault_table.cursor_key
        return None if key is None else self.faults.get(key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "remove":
            return self.selected is not None or None
        if action == "clear":
            return bool(self.faults) or None
        return True

    def action_reload(self) -> None:
        if self.qrm.require_online("read the faults"):
            self.refresh_faults()

    def action_add(self) -> None:
        if not self.qrm.require_online("add a fault"):
            return

        def added(fault: Fault | None) -> None:
            if fault is not None:
                self.notify(f"Added fault {fault.id} on {fault.route}.", markup=False)
                self.refresh_faults()

        self.app.push_screen(FaultForm(self.qrm.client), added)

    def action_remove(self) -> None:
        fault = self.selected
        if fault is None:
            return
        effect, _ = fault_effect(fault)

        def confirmed(yes: bool | None) -> None:
            if yes and self.qrm.require_online(f"remove fault {fault.id}"):
                self.remove_fault(fault)

        self.app.push_screen(
            ConfirmDialog(
                "Remove fault?",
                f"Fault {fault.id} on {fault.route} ({effect}) will apply to no more calls.",
                "Remove fault",
            ),
            confirmed,
        )

    def action_clear(self) -> None:
        if not self.faults:
            return
        count = len(self.faults)

        def confirmed(yes: bool | None) -> None:
            if yes and self.qrm.require_online("clear the faults"):
                self.clear_faults()

        self.app.push_screen(
            ConfirmDialog(
                "Remove every fault?",
                f"{'The fault' if count == 1 else f'All {count} faults'} will go: "
                "QRM's API answers as usual again.",
                "Remove all",
            ),
            confirmed,
        )

    @work(group="faults-change", exit_on_error=False)
    async def remove_fault(self, fault: Fault) -> None:
        try:
            await self.qrm.client.remove_fault(fault.id)
        except QrmApiError as exc:
            if exc.status != 404:
                raise  # 404: used up meanwhile, so gone all the same
        self.notify(f"Removed fault {fault.id}.", markup=False)
        self.refresh_faults()

    @work(group="faults-change", exit_on_error=False)
    async def clear_faults(self) -> None:
        await self.qrm.client.clear_faults()
        self.notify("Removed every fault.", markup=False)
        self.refresh_faults()

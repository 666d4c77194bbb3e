"""The mock's reports, newest first and live; `u` simulates an inspector's upload.

`enter` opens a report as `GET /api/v1/reports/{id}` returns it, with the
deliveries its events caused, live.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from mock_qrm.contract.models import Delivery, ReportRow
from mock_qrm.contract.timefmt import to_ms
from qrm_tui.format import (
    answer_label,
    attempt_label,
    clock_time,
    dump_json,
    full_time,
    indented,
    latency_label,
    plain,
    state_label,
)
from qrm_tui.live import Channel, Inbox
from qrm_tui.screens.base import QrmScreen
from qrm_tui.screens.inspector import DeliveryInspector
from qrm_tui.screens.live import LiveListScreen
from qrm_tui.widgets.footer import KeyFooter
from qrm_tui.widgets.header import AppHeader
from qrm_tui.widgets.live_table import Cells, Column, LiveTable
from qrm_tui.window import Change, Window

COLUMNS = (
    Column("id", "Id", 7, "right", drop_at=5),
    Column("case", "Case number", 34, least=18, most=90, give_up=3),
    Column("type", "Type", 6, drop_at=1),
    Column("result", "Result", 9, give_up=8),
    Column("status", "Status", 11, give_up=2),
    Column("file", "File", 9, give_up=7),
    Column("created", "Created", 23, drop_at=0),
)
"""The case number first, whole when there is room; the creation time goes when narrow."""

CAP = 5000
PAGE = 200
FLUSH_INTERVAL = 0.15


def report_key(report: ReportRow) -> int:
    """The list's order as an integer, newest first like the API: creation time, then id."""
    return to_ms(report.created_at) * 10**9 + report.id % 10**9


class ReportsScreen(LiveListScreen[ReportRow]):
    HELP_GROUP = "Reports"
    HELP_WIDGETS = (LiveTable,)
    """Whose keys help lists with this screen's, seen from another screen."""
    AUTO_FOCUS = "#report-table"
    BINDINGS = [
        Binding(
            "u",
            "upload",
            "Upload",
            tooltip="Simulate an inspector uploading a report",
            id="reports.upload",
        ),
        Binding(
            "o", "older", "Older", tooltip="Load the next page of older reports", id="reports.older"
        ),
        Binding("f", "follow", "Newest", tooltip="Back to the newest report", id="reports.follow"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.window: Window[ReportRow] = Window(report_key, CAP)
        self._select_when_seen: int | None = None

    @property
    def table(self) -> LiveTable:
        return self.query_one("#report-table", LiveTable)

    def compose(self) -> ComposeResult:
        yield AppHeader("reports")
        yield LiveTable(COLUMNS, lambda key: self.cells(self.window.items[key]), id="report-table")
        yield Label(id="report-foot", markup=False)
        yield KeyFooter()

    @property
    def channel(self) -> Channel[ReportRow]:
        return self.qrm.store.reports

    def on_mount(self) -> None:
        self._show_foot()

    def cells(self, report: ReportRow) -> Cells:
        text = self.tones.text
        result_tone = {"pass": "text-success", "fail": "text-error"}.get(report.result, "")
        return (
            text(str(report.id)),
            text(report.case_number),
            text(report.inspection_type),
            text(report.result, result_tone),
            text(report.status),
            text("✓ ready", "text-success") if report.file_ready else text("… not yet", "muted"),
            text(full_time(report.created_at), "muted"),
        )

    def _draw(self, change: Change[ReportRow]) -> None:
        if change:
            self.table.update(change.upserted, change.removed)
        wanted = self._select_when_seen
        if wanted is not None:
            for key, report in change.upserted.items():
                if report.id == wanted:
                    self._select_when_seen = None
                    self.table.move_cursor(key)
        self._show_foot()

    def redraw(self) -> None:
        self.forget_tones()
        self.table.redraw()

    @work(group="reports-page", exclusive=True, exit_on_error=False)
    async def load_newest(self) -> None:
        await self.show_newest(lambda: self.qrm.client.report_rows(limit=PAGE))

    @work(group="reports-page", exclusive=True, exit_on_error=False)
    async def load_older(self) -> None:
        with self.fetching():
            # Reports are only ever added, at the top: the rows shown are the first
            # `len(window)` of the list (a row that arrives meanwhile is a duplicate, dropped).
            page = await self.qrm.client.report_rows(limit=PAGE, offset=len(self.window))
            self.table.follow = False
            change = self.window.extend_older(
                page.data, has_older=page.offset + len(page.data) < page.total
            )
            self._draw(change)
        if change.upserted:
            self.table.move_cursor(max(change.upserted))

    def _show_foot(self) -> None:
        window = self.window
        if not self._loaded:
            message = "Loading reports…"
        elif not len(window):
            message = "No reports. Press u to simulate an upload."
        elif window.has_older:
            message = f"{len(window):,} shown · ▼ older reports: o loads {PAGE} more"
        else:
            message = f"{len(window):,} reports · u simulates an upload"
        self.query_one("#report-foot", Label).update(message)

    @on(LiveTable.Selected, "#report-table")
    def _open(self, event: LiveTable.Selected) -> None:
        report = self.window.items.get(event.key)
        if report is not None:
            self.app.push_screen(ReportScreen(report))

    def action_upload(self) -> None:
        if self.qrm.require_online("upload a report"):
            self.upload()

    def action_older(self) -> None:
        if not self.window.has_older:
            self.notify("No older reports.", markup=False)
        elif self.qrm.require_online("load older reports"):
            self.load_older()

    def action_follow(self) -> None:
        self.table.follow = True

    @on(LiveTable.FollowChanged, "#report-table")
    def _follow_changed(self, event: LiveTable.FollowChanged) -> None:
        if event.follow and self.window.behind:
            self.load_newest()

    @work(group="reports-upload", exit_on_error=False)
    async def upload(self) -> None:
        uploaded = await self.qrm.client.upload_report()
        self._select_when_seen = uploaded.resource_id
        self.table.follow = True
        self.notify(
            f"Report {uploaded.resource_id} uploaded: report.created now, "
            "report.file_ready once its file is ready.",
            title="Upload",
            markup=False,
        )


DELIVERY_COLUMNS = (
    Column("time", "Time", 8, drop_at=2),
    Column("webhook", "Webhook", 27, least=12, most=48, give_up=5),
    Column("event", "Event", 17, least=12, most=32, give_up=6),
    Column("attempt", "Attempt", 7, "right", give_up=7),
    Column("code", "Code", 9, least=7, most=16, give_up=3),
    Column("latency", "Latency", 7, "right", drop_at=1),
    Column("state", "State", 19, least=16, most=22, give_up=9),
)
"""As on the deliveries screen: the state first, time and latency go when narrow."""


class ReportScreen(QrmScreen):
    """One report: the deliveries its events caused (live), and the document the API serves."""

    HELP_GROUP = "Report"
    AUTO_FOCUS = "#report-deliveries"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the reports", id="report.back")
    ]

    def __init__(self, report: ReportRow) -> None:
        super().__init__()
        self.report = report
        self.deliveries: dict[int, Delivery] = {}
        self._inbox: Inbox[Delivery] | None = None

    def compose(self) -> ComposeResult:
        report = self.report
        yield AppHeader("reports")
        yield Label(
            plain(f"Report {report.id} · {report.inspection_type} · case {report.case_number}"),
            id="report-title",
        )
        yield Label("Deliveries its events caused", classes="section-title")
        yield LiveTable(
            DELIVERY_COLUMNS, lambda key: self.cells(self.deliveries[key]), id="report-deliveries"
        )
        yield Label(f"GET /api/v1/reports/{report.id}", classes="section-title", markup=False)
        with VerticalScroll(id="report-body"):
            yield Static("Loading…", id="report-document", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._inbox = self.open_inbox(self.qrm.store.deliveries, FLUSH_INTERVAL, self.flush)
        self.set_interval(1.0, self.tick)
        self.watch(self.qrm, "feed_generation", self._reload, init=False)
        self.load_document()
        self.load_deliveries()

    def cells(self, delivery: Delivery) -> Cells:
        text = self.tones.text
        return (
            text(clock_time(delivery.created_at), "muted"),
            text(delivery.webhook_name),
            text(delivery.event_code),
            text(attempt_label(delivery, self.qrm.max_attempts)),
            text(*answer_label(delivery.last_response_status, delivery.last_error)),
            text(latency_label(delivery.last_duration_ms)),
            text(*state_label(delivery, self.qrm.server_now())),
        )

    def _draw(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self.deliveries[delivery.id] = delivery
        table = self.query_one("#report-deliveries", LiveTable)
        table.update([d.id for d in deliveries])
        table.styles.height = min(len(self.deliveries), 12) + 1

    def flush(self) -> None:
        if self._inbox is None or self._busy:
            return
        if self._inbox.overflowed:
            self.load_deliveries()
            return
        mine = [d for d in self._inbox.take() if d.resource_id == self.report.id]
        if mine:
            self._draw(mine)

    def tick(self) -> None:
        table = self.query_one("#report-deliveries", LiveTable)
        table.refresh_rows(k for k, d in self.deliveries.items() if d.next_attempt_at is not None)

    def _reload(self) -> None:
        self.load_deliveries()
        self.load_document()

    @work(group="report-deliveries", exclusive=True, exit_on_error=False)
    async def load_deliveries(self) -> None:
        if self._inbox is None:
            return
        with self.fetching():
            self._inbox.discard()
            page = await self.qrm.client.deliveries(resource_id=self.report.id, limit=200)
            self._draw(page.data)

    @work(group="report-document", exclusive=True, exit_on_error=False)
    async def load_document(self) -> None:
        document: dict[str, Any] = await self.qrm.client.report(self.report.id)
        self.query_one("#report-document", Static).update(
            indented(dump_json(document), 2, highlight=True)
        )

    @on(LiveTable.Selected, "#report-deliveries")
    def _open(self, event: LiveTable.Selected) -> None:
        self.app.push_screen(DeliveryInspector(event.key))

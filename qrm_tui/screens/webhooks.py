"""Configuration > Webhooks: the registry as a live table, and every change to it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Button, DataTable, Input, Label, Static

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.display import printable
from mock_qrm.contract.models import LastDelivery, Webhook, WebhookStats
from qrm_tui.format import SHORT_ERRORS, latency_label, success_label
from qrm_tui.layout import GAP, Column, fit, shorten_end, shorten_middle
from qrm_tui.screens.base import QrmScreen
from qrm_tui.screens.webhook_stats import WebhookStatsScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.footer import KeyFooter
from qrm_tui.widgets.header import AppHeader
from qrm_tui.widgets.webhook_form import WebhookForm

if TYPE_CHECKING:
    pass

SHORT_TITLES = {"auth": "Auth", "last": "Last"}
"""Titles for columns narrower than their full title."""
EVENTS_WIDTH = 17
FLUSH_INTERVAL = 0.1
"""Seconds over which feed updates are gathered into one table update."""
ROW_ACTIONS = ("edit", "toggle_active", "remove", "stats")

Tone = str
"""A theme variable name: `text-success`, `text-error`, `text-warning`, or `muted`."""


def status_label(active: bool) -> tuple[str, Tone]:
    return ("● active", "text-success") if active else ("○ inactive", "muted")


def columns_for(webhooks: Iterable[Webhook]) -> tuple[Column, ...]:
    """Each column as wide as its longest text (within reason). Status, name and URL are
    the main job: when narrow, events, basic auth, p95, the last result and the success
    rate go, in that order, once every column is down to its least (a long error, then a
    URL's middle, go first). At 80 columns the success rate stays; p95 needs 90."""
    hooks = list(webhooks)
    name = min(48, max([16, *(len(w.name) for w in hooks)]))
    url = min(80, max([32, *(len(w.url) for w in hooks)]))
    events = min(48, max([EVENTS_WIDTH, *(len(", ".join(w.events)) for w in hooks)]))
    auth = min(24, max([10, *(len(w.basic_auth.username) for w in hooks if w.basic_auth)]))
    return (
        Column("status", "Status", 10, give_up=20),
        Column("name", "Name", name, least=16, give_up=4, importance=9),
        Column("url", "URL", url, least=24, give_up=3, importance=10, shorten="middle"),
        Column("events", "Events", events, least=EVENTS_WIDTH, give_up=1, drop_at=6),
        Column("auth", "Basic auth", auth, least=6, give_up=5, drop_at=7),
        Column("last", "Last delivery", 21, least=9, give_up=2, drop_at=9, importance=8),
        Column("success", "Success", 7, justify="right", drop_at=10),
        Column("p95", "p95", 6, justify="right", drop_at=8),
    )


def events_label(events: list[str], width: int = EVENTS_WIDTH) -> str:
    """All the codes if they fit, else the first and how many more."""
    joined = ", ".join(events)
    if len(joined) <= width or len(events) < 2:
        return joined or "—"
    return f"{events[0]} +{len(events) - 1}"


def last_delivery_label(last: LastDelivery | None, width: int = 21) -> tuple[str, Tone]:
    """`✓ 200`, `✗ 500`, `✗ connection_refused` (`✗ refused` when narrow), `↻ 500`, …"""
    if last is None:
        return "—", "muted"
    answer = str(last.response_status) if last.response_status is not None else last.error
    if answer is not None and len(answer) + 2 > width:
        answer = SHORT_ERRORS.get(answer, answer)
    match last.status:
        case DeliveryStatus.DELIVERED:
            return f"✓ {answer or 200}", "text-success"
        case DeliveryStatus.FAILED:
            return f"✗ {answer or 'failed'}", "text-error"
        case DeliveryStatus.RETRY_SCHEDULED:
            return f"↻ {answer or 'retry'}", "text-warning"
        case DeliveryStatus.IN_FLIGHT:
            return "→ sending", "muted"
        case DeliveryStatus.CANCELLED:
            return "⊘ cancelled", "muted"
    return "… pending", "muted"


def stats_cells(stats: WebhookStats | None) -> tuple[tuple[str, Tone], tuple[str, Tone]]:
    """The success rate and p95 latency cells: `—` until there is an attempt to count."""
    if stats is None:
        return ("—", "muted"), ("—", "muted")
    p95 = stats.latency_ms.p95
    latency = ("—", "muted") if p95 is None else (latency_label(p95), "")
    return success_label(stats.success_rate), latency


class WebhookTable(DataTable[Text]):
    HELP_GROUP = "Webhooks table"
    BINDINGS = [
        Binding(
            "enter",
            "select_cursor",
            "Edit",
            show=False,
            tooltip="Edit the selected webhook",
            id="webhooks.table.edit",
        )
    ]

    @dataclass
    class Resized(Message):
        """The table's width changed: its columns are fitted again."""

    def on_resize(self) -> None:
        self.post_message(self.Resized())


class WebhooksScreen(QrmScreen):
    HELP_GROUP = "Webhooks"
    HELP_WIDGETS = (WebhookTable,)
    """Whose keys help lists with this screen's, seen from another screen."""
    AUTO_FOCUS = "#webhook-table"
    BINDINGS = [
        Binding("n", "add", "Add", tooltip="Add a webhook", id="webhooks.add"),
        Binding("e", "edit", "Edit", tooltip="Edit the selected webhook", id="webhooks.edit"),
        Binding(
            "space",
            "toggle_active",
            "On/off",
            tooltip="Activate or deactivate the selected webhook",
            id="webhooks.toggle_active",
        ),
        Binding(
            "d",
            "remove",
            "Remove",
            tooltip="Remove the selected webhook (asks first)",
            id="webhooks.remove",
        ),
        Binding(
            "s",
            "stats",
            "Stats",
            tooltip="The selected webhook's statistics and its last hour",
            id="webhooks.stats",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            key_display="/",
            tooltip="Filter webhooks by name or URL",
            id="webhooks.filter",
        ),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            show=False,
            tooltip="Clear the filter",
            id="webhooks.clear_filter",
        ),
    ]

    filter_text = reactive("", init=False)

    def __init__(self) -> None:
        super().__init__()
        self._shown: dict[str, tuple[Text, ...]] = {}
        self._columns: tuple[Column, ...] = ()
        self.widths: dict[str, int] = {}
        """Each shown column's width, for the room the table has (`fit`)."""
        self._flush: Timer | None = None
        self._selection: tuple[int, bool] | None = None

    @property
    def table(self) -> WebhookTable:
        return self.query_one(WebhookTable)

    def compose(self) -> ComposeResult:
        yield AppHeader("webhooks")
        with Horizontal(id="filter-bar"):
            yield Label("Filter", id="filter-label")
            yield Input(placeholder="name or URL (esc clears)", id="filter")
        yield WebhookTable(id="webhook-table", cursor_type="row")
        yield Static(id="empty", markup=False)
        with Horizontal(id="webhook-actions", classes="buttons"):
            yield Button("Add", id="add", variant="primary", compact=True)
            yield Button("Edit", id="edit", compact=True)
            yield Button("Deactivate", id="toggle_active", compact=True)
            yield Button("Remove", id="remove", variant="error", compact=True)
            yield Button("Stats", id="stats", compact=True)
            yield Label("✓ delivered  ✗ failed  ↻ retrying", id="legend")
        yield KeyFooter()

    def on_mount(self) -> None:
        for button in self.query(Button):
            button.can_focus = False
        self.watch(self.qrm, "webhooks", self._schedule_sync)
        self.watch(self.qrm, "webhook_stats", self._schedule_sync)
        self.watch(self.qrm, "loaded", self._sync)
        self.watch(self.qrm, "theme", self.redraw, init=False)

    # --- the table ----------------------------------------------------------------------

    def redraw(self) -> None:
        """Draw every row afresh (a new theme, a new filter), not just what changed."""
        selected = self.selected
        self._shown.clear()
        self.forget_tones()
        self.table.clear()
        self._sync()
        if selected is not None:
            self.select(selected.id)

    @on(WebhookTable.Resized)
    def _resized(self) -> None:
        self._sync()

    def _fit(self) -> None:
        """Columns for the room there is and the texts there are; rebuilt only when that changes."""
        table = self.table
        columns = columns_for(self.qrm.webhooks.values())
        available = table.size.width - 1  # the scrollbar's gutter (qrm.tcss)
        widths = fit(columns, max(available, sum(GAP + 1 for _ in columns)))
        if widths == self.widths and columns == self._columns and table.columns:
            return
        self._columns = columns
        self.widths = widths
        self._shown.clear()
        table.clear(columns=True)
        for column in columns:
            width = widths.get(column.key)
            if width is not None:
                title = column.title
                if len(title) > width:
                    title = SHORT_TITLES.get(column.key, shorten_end(title, width))
                label = Text(title, justify=column.justify)  # numbers' titles over their ends
                table.add_column(label, width=width, key=column.key)

    def _schedule_sync(self) -> None:
        """Gather a burst of feed updates into one table update."""
        if self._flush is None:
            self._flush = self.set_timer(FLUSH_INTERVAL, self._sync)

    def _sync(self) -> None:
        """Make the rows match the app's registry: keyed, updated in place, filtered."""
        if self._flush is not None:
            self._flush.stop()
            self._flush = None
        self._fit()
        table = self.table
        wanted = {
            str(webhook.id): self._cells(webhook)
            for webhook in sorted(self.qrm.webhooks.values(), key=lambda w: w.id)
            if self._matches(webhook)
        }
        for key in [key for key in self._shown if key not in wanted]:
            table.remove_row(key)
            del self._shown[key]
        for key, cells in wanted.items():
            shown = self._shown.get(key)
            if shown is None:
                table.add_row(*cells, key=key)
            elif shown != cells:
                for column, old, new in zip(self.widths, shown, cells, strict=True):
                    if old != new:
                        table.update_cell(key, column, new)
            self._shown[key] = cells
        self._show_empty()
        self._show_selection()

    def _cells(self, webhook: Webhook) -> tuple[Text, ...]:
        """The shown columns' cells, each fitted to its width (a URL loses its middle)."""
        widths = self.widths
        auth = webhook.basic_auth.username if webhook.basic_auth else "—"
        muted = "muted" if not webhook.active else ""
        success, p95 = stats_cells(self.qrm.webhook_stats.get(webhook.id))
        cells = {
            "status": lambda: self._text(*status_label(webhook.active)),
            "name": lambda: self._text(webhook.name, muted),
            "url": lambda: self._text(shorten_middle(webhook.url, widths["url"]), muted),
            "events": lambda: self._text(events_label(webhook.events, widths["events"]), muted),
            "auth": lambda: self._text(auth, muted),
            "last": lambda: self._text(*last_delivery_label(webhook.last_delivery, widths["last"])),
            "success": lambda: self._right(*success),
            "p95": lambda: self._right(*p95),
        }
        return tuple(cells[key]() for key in widths)

    def _text(self, text: str, tone: Tone = "") -> Text:
        return self.tones.text(text, tone)

    def _right(self, text: str, tone: Tone) -> Text:
        cell = self._text(text, tone)
        cell.justify = "right"
        return cell

    def _matches(self, webhook: Webhook) -> bool:
        needle = self.filter_text.strip().casefold()
        return not needle or needle in webhook.name.casefold() or needle in webhook.url.casefold()

    def _show_empty(self) -> None:
        empty = self.query_one("#empty", Static)
        if not self.qrm.loaded:
            message = "Loading webhooks…"
        elif not self.qrm.webhooks:
            message = (
                "No webhooks yet. Press n (or Add) to add one: "
                "the mock QRM will POST every event you pick to its URL."
            )
        elif not self._shown:
            message = f"No webhook matches “{printable(self.filter_text)}”. Press esc to clear the filter."
        else:
            message = ""
        empty.update(message)
        empty.display = bool(message)
        self.table.set_class(bool(message), "-empty")

    def _show_selection(self) -> None:
        webhook = self.selected
        state = None if webhook is None else (webhook.id, webhook.active)
        if state == self._selection and state is not None:
            return  # a feed update of the same row: the footer need not be rebuilt
        self._selection = state
        toggle = self.query_one("#toggle_active", Button)
        toggle.label = "Activate" if webhook is not None and not webhook.active else "Deactivate"
        for action in ROW_ACTIONS:
            self.query_one(f"#{action}", Button).disabled = webhook is None
        self.refresh_bindings()

    @property
    def selected(self) -> Webhook | None:
        """The webhook under the cursor, if any row is shown."""
        table = self.table
        if table.row_count == 0:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self.qrm.webhooks.get(int(row_key.value or 0))

    def select(self, webhook_id: int) -> None:
        key = str(webhook_id)
        if key in self._shown:
            self.table.move_cursor(row=self.table.get_row_index(key))

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_selection()

    @on(DataTable.RowSelected)
    def _row_chosen(self) -> None:
        self.action_edit()

    # --- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ROW_ACTIONS:
            return True if self.selected is not None else None
        if action == "clear_filter":
            return bool(self.filter_text) or self.query_one("#filter-bar").has_class("-open")
        return True

    def action_add(self) -> None:
        if not self.qrm.components:
            self.qrm.require_online("add a webhook")
            return
        self.app.push_screen(
            WebhookForm(self.qrm.client, self.qrm.components), self._saved("Added")
        )

    def action_edit(self) -> None:
        webhook = self.selected
        if webhook is None:
            return
        self.app.push_screen(
            WebhookForm(self.qrm.client, self.qrm.components, webhook), self._saved("Saved")
        )

    def _saved(self, verb: str) -> Callable[[Webhook | None], None]:
        def done(webhook: Webhook | None) -> None:
            if webhook is None:
                return
            self.qrm.apply_webhook(webhook)
            self._sync()  # our own change: show it now, not at the next flush
            self.select(webhook.id)
            self.notify(f"{verb} webhook “{webhook.name}”.", markup=False)

        return done

    def action_stats(self) -> None:
        webhook = self.selected
        if webhook is not None:
            self.app.push_screen(WebhookStatsScreen(webhook.id))

    def action_toggle_active(self) -> None:
        webhook = self.selected
        if webhook is None:
            return
        verb = "deactivate" if webhook.active else "activate"
        if self.qrm.require_online(f"{verb} webhook “{webhook.name}”"):
            self.set_active(webhook.id, not webhook.active)

    def action_remove(self) -> None:
        webhook = self.selected
        if webhook is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes and self.qrm.require_online(f"remove webhook “{webhook.name}”"):
                self.remove_webhook(webhook)

        self.app.push_screen(
            ConfirmDialog(
                "Remove webhook?",
                f"“{printable(webhook.name)}” ({printable(webhook.url)}) will receive nothing"
                " more.\nIts delivery history stays in the journal.",
                "Remove webhook",
            ),
            confirmed,
        )

    def action_filter(self) -> None:
        self.query_one("#filter-bar").add_class("-open")
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one("#filter-bar").remove_class("-open")
        self.table.focus()

    @on(Input.Changed, "#filter")
    def _filter_typed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def watch_filter_text(self) -> None:
        self.redraw()

    @on(Button.Pressed, "#webhook-actions Button")
    async def _button(self, event: Button.Pressed) -> None:
        await self.run_action(event.button.id or "")

    # --- talking to the server ------------------------------------------------------------

    @work(group="webhook-actions", exit_on_error=False)
    async def set_active(self, webhook_id: int, active: bool) -> None:
        self.qrm.apply_webhook(await self.qrm.client.set_active(webhook_id, active))
        self._sync()

    @work(group="webhook-actions", exit_on_error=False)
    async def remove_webhook(self, webhook: Webhook) -> None:
        await self.qrm.client.delete_webhook(webhook.id)
        self.qrm.forget_webhook(webhook.id)
        self._sync()
        self.notify(f"Removed webhook “{webhook.name}”.", markup=False)

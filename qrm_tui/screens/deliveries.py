"""The live delivery feed: every delivery as one row, changing in place as attempts happen.

Rows are a `Window` over the journal (newest first, at most `CAP`), loaded over
REST and kept current from the app's `LiveStore`: this screen empties its inbox
every `FLUSH_INTERVAL` and draws the whole batch at once, so a flood of updates
costs a few table updates a second. Follow mode keeps the newest row under the
cursor; moving down pauses it, `f`, `home` or going back to the top resumes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Label, Select

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import Delivery, DeliveryFilter, Page
from mock_qrm.contract.timefmt import iso_z
from qrm_tui.format import (
    STATE_NAMES,
    answer_label,
    attempt_label,
    clock_time,
    latency_label,
    plain,
    state_label,
)
from qrm_tui.screens.inspector import DeliveryInspector
from qrm_tui.screens.live import LiveListScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.footer import KeyFooter
from qrm_tui.widgets.header import AppHeader
from qrm_tui.widgets.live_table import Cells, Column, LiveTable
from qrm_tui.widgets.throughput import Throughput, rate_label
from qrm_tui.window import Change, Window

if TYPE_CHECKING:
    from qrm_tui.live import Channel

COLUMNS = (
    Column("time", "Time", 8, drop_at=2),
    Column("webhook", "Webhook", 27, least=12, most=48, give_up=5),
    Column("event", "Event", 17, least=12, most=32, give_up=6),
    Column("resource", "Resource", 8, "right", drop_at=0),
    Column("attempt", "Attempt", 7, "right", give_up=7),
    Column("code", "Code", 9, least=7, most=16, give_up=3),
    Column("latency", "Latency", 7, "right", drop_at=1),
    Column("state", "State", 16, most=22, give_up=9),
)
"""The main job first: the state, then webhook, event and attempt; resource, latency
and time go when the screen is narrow. Widths change with the screen, never with a row."""

CAP = 1000
"""Rows held at most; older ones stay in the journal, a page away (`o`)."""
PAGE = 200
"""Rows per REST page (the API's largest)."""
TICK = 1.0
"""Seconds between countdown, counter and sparkline refreshes."""

COUNTED = (
    ("delivered", DeliveryStatus.DELIVERED, "✓", "text-success"),
    ("retrying", DeliveryStatus.RETRY_SCHEDULED, "↻", "text-warning"),
    ("failed", DeliveryStatus.FAILED, "✗", "text-error"),
)


class DeliveriesScreen(LiveListScreen[Delivery]):
    HELP_GROUP = "Deliveries"
    HELP_WIDGETS = (LiveTable,)
    """Whose keys help lists with this screen's, seen from another screen."""
    AUTO_FOCUS = "#delivery-table"
    BINDINGS = [
        Binding(
            "f",
            "follow",
            "Follow",
            tooltip="Follow the newest deliveries again",
            id="deliveries.follow",
        ),
        Binding(
            "o",
            "older",
            "Older",
            tooltip="Load the next page of older deliveries",
            id="deliveries.older",
        ),
        Binding(
            "R",
            "redeliver_failed",
            "Redeliver failed",
            key_display="R",
            tooltip="Redeliver every failed delivery matching the filters (asks first)",
            id="deliveries.redeliver_failed",
        ),
        Binding(
            "c",
            "copy_message_id",
            "Copy id",
            show=False,
            tooltip="Copy the selected messageId",
            id="deliveries.copy_message_id",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            key_display="/",
            tooltip="Filter deliveries by webhook, event and state",
            id="deliveries.filter",
        ),
        Binding(
            "escape",
            "clear_filters",
            "Clear filters",
            show=False,
            tooltip="Show everything",
            id="deliveries.clear_filters",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.window: Window[Delivery] = Window(lambda delivery: delivery.id, CAP, self._matches)
        self._counts_stale = True
        self._counting = False
        self.webhook_id: int | None = None
        self.event_code: str | None = None
        self.status: DeliveryStatus | None = None
        self.counts: dict[DeliveryStatus, int] = {}
        self._rate = 0.0
        self._had_cursor = False
        self._webhook_choices: list[tuple[Text, int]] = []
        self._event_choices: list[tuple[Text, str]] = []

    @property
    def table(self) -> LiveTable:
        return self.query_one("#delivery-table", LiveTable)

    def compose(self) -> ComposeResult:
        yield AppHeader("deliveries")
        with Horizontal(id="delivery-filters", classes="filters"):
            yield Label("Webhook", classes="filter-label")
            yield Select[int]([], prompt="All webhooks", id="webhook-filter", compact=True)
            yield Label("Event", classes="filter-label")
            yield Select[str]([], prompt="All events", id="event-filter", compact=True)
            yield Label("State", classes="filter-label")
            yield Select[str](
                [(name, status.value) for status, name in STATE_NAMES.items()],
                prompt="All states",
                id="state-filter",
                compact=True,
            )
        with Horizontal(id="delivery-status"):
            yield Label(id="follow-state")
            yield Label(id="counts")
            yield Throughput(id="throughput")
            yield Label(id="rate")
        yield LiveTable(COLUMNS, self._row_cells, id="delivery-table")
        yield Label(id="table-foot", markup=False)
        yield KeyFooter()

    @property
    def channel(self) -> Channel[Delivery]:
        return self.qrm.store.deliveries

    def on_mount(self) -> None:
        self.set_interval(TICK, self.tick)
        self.watch(self.qrm, "webhooks", self._webhook_options)
        self._show_follow(True)
        self._show_foot()
        self.tick()

    # --- the rows -------------------------------------------------------------------

    def _matches(self, delivery: Delivery) -> bool:
        return DeliveryFilter.model_construct(
            webhook_id=self.webhook_id,
            event_code=self.event_code,
            status=self.status,
            resource_id=None,
            message_id=None,
            since=None,
            until=None,
        ).matches(delivery)

    @property
    def filtered(self) -> bool:
        return not (self.webhook_id is None and self.event_code is None and self.status is None)

    async def _page(
        self,
        status: DeliveryStatus | None,
        limit: int | None = None,
        offset: int = 0,
        until: str | None = None,
    ) -> Page[Delivery]:
        """A page of the journal under the webhook and event filters, and `status`."""
        return await self.qrm.client.deliveries(
            webhook_id=self.webhook_id,
            event_code=self.event_code,
            status=None if status is None else status.value,
            until=until,
            limit=limit or PAGE,
            offset=offset,
        )

    def cells(self, delivery: Delivery) -> Cells:
        text = self.tones.text
        return (
            text(clock_time(delivery.created_at), "muted"),
            text(delivery.webhook_name),
            text(delivery.event_code),
            text(str(delivery.resource_id)),
            text(attempt_label(delivery, self.qrm.max_attempts)),
            text(
                *answer_label(
                    delivery.last_response_status, delivery.last_error, delivery.last_error_detail
                )
            ),
            text(latency_label(delivery.last_duration_ms)),
            text(*state_label(delivery, self.qrm.server_now())),
        )

    def _row_cells(self, key: int) -> Cells:
        return self.cells(self.window.items[key])

    def _draw(self, change: Change[Delivery]) -> None:
        if change:
            self.table.update(change.upserted, change.removed)
        self._show_foot()

    def redraw(self) -> None:
        """Every row afresh (a new theme)."""
        self.forget_tones()
        self.table.redraw()
        self._show_counts()

    def _flushed(self) -> None:
        self._counts_stale = True

    def tick(self) -> None:
        """Once a second: countdowns, the sparkline, and counts if anything changed."""
        self.table.refresh_rows(
            key
            for key, delivery in self.window.items.items()
            if delivery.status is DeliveryStatus.RETRY_SCHEDULED
        )
        series = self.qrm.store.attempts.series()
        self.query_one("#throughput", Throughput).data = tuple(series)
        self._rate = series[-1] if series else 0
        self._show_rate()
        if self._counts_stale and not self._counting and self._loaded:
            self.count()

    @work(group="deliveries-page", exclusive=True, exit_on_error=False)
    async def load_newest(self) -> None:
        """The newest page over REST: at start, after a resync, a filter, or following again."""
        if await self.show_newest(lambda: self._page(self.status)):
            self._counts_stale = True
            self.count()

    @work(group="deliveries-page", exclusive=True, exit_on_error=False)
    async def load_older(self) -> None:
        oldest = self.window.oldest
        if oldest is None:
            return
        with self.fetching():
            found: list[Delivery] = []
            offset = 0
            full = True
            # `until` is inclusive and by time: rows of the same millisecond come back again.
            while full and len(found) < PAGE:
                page = await self._page(self.status, offset=offset, until=iso_z(oldest.created_at))
                found.extend(d for d in page.data if d.id < oldest.id)
                full = len(page.data) == PAGE
                offset += PAGE
            self.table.follow = False
            change = self.window.extend_older(found, has_older=full)
            self._draw(change)
        if change.upserted:
            self.table.move_cursor(max(change.upserted))
        else:
            self.notify("No older deliveries match.", markup=False)

    @work(group="deliveries-count", exit_on_error=False)
    async def count(self) -> None:
        """Journal totals for the webhook and event filters (the state filter aside)."""
        self._counting = True
        self._counts_stale = False
        try:
            for _, status, _, _ in COUNTED:
                self.counts[status] = (await self._page(status, limit=1)).total
        finally:
            self._counting = False
        self._show_counts()

    # --- what the screen says -------------------------------------------------------

    @property
    def narrow(self) -> bool:
        """Below the narrow breakpoint the status line drops its words (the marks stay):
        at 80 columns counts in the thousands must fit beside the sparkline."""
        return self.has_class("-narrow")

    def on_resize(self) -> None:
        self._show_follow(self.table.follow)
        self._show_counts()
        self._show_rate()

    def _show_counts(self) -> None:
        parts = [
            self.tones.text(
                f"{mark} {self.counts.get(status, 0):,}" + ("" if self.narrow else f" {name}"),
                tone,
            )
            for name, status, mark, tone in COUNTED
        ]
        self.query_one("#counts", Label).update(Text(" ").join(parts))

    def _show_rate(self) -> None:
        rate = rate_label(self._rate)
        self.query_one("#rate", Label).update(rate.split()[0] + "/s" if self.narrow else rate)

    def _show_follow(self, follow: bool) -> None:
        label = self.query_one("#follow-state", Label)
        if follow:
            label.update("● following" if self.narrow else "● following newest")
        else:
            label.update("⏸ paused (f)" if self.narrow else "⏸ paused — f follows")
        label.set_class(not follow, "-paused")

    def _show_foot(self) -> None:
        foot = self.query_one("#table-foot", Label)
        window = self.window
        if not self._loaded:
            message = "Loading deliveries…"
        elif not len(window):
            message = (
                "No delivery matches the filters. Press esc to clear them."
                if self.filtered
                else "No deliveries yet: add a webhook (1, n) and upload a report (3, u)."
            )
        elif window.has_older:
            message = (
                f"{len(window):,} shown · ▼ older deliveries in the journal: o loads {PAGE} more"
            )
        else:
            message = f"{len(window):,} shown · the start of the journal"
        if window.behind:
            message = "▲ newer deliveries not shown: f goes back to the newest · " + message
        foot.update(message)

    def _webhook_options(self) -> None:
        select = self.query_one("#webhook-filter", Select)
        # Prompts as `Text`: a Select reads a string as markup, and a name is data.
        options = sorted(
            ((plain(w.name), w.id) for w in self.qrm.webhooks.values()),
            key=lambda o: o[0].plain.casefold(),
        )
        if self.webhook_id is not None and self.webhook_id not in {i for _, i in options}:
            options.append((plain(f"webhook {self.webhook_id} (removed)"), self.webhook_id))
        if options != self._webhook_choices:
            self._webhook_choices = options
            with select.prevent(Select.Changed):
                select.set_options(options)
                if self.webhook_id is not None:
                    select.value = self.webhook_id
        codes = [(plain(e.event_code), e.event_code) for c in self.qrm.components for e in c.events]
        if codes != self._event_choices:
            self._event_choices = codes
            events = self.query_one("#event-filter", Select)
            with events.prevent(Select.Changed):
                events.set_options(codes)
                if self.event_code is not None:
                    events.value = self.event_code

    # --- events ----------------------------------------------------------------------------

    @on(LiveTable.Highlighted)
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        has_cursor = event.key is not None
        if has_cursor != self._had_cursor:  # `c` just became possible, or impossible
            self._had_cursor = has_cursor
            self.refresh_bindings()

    @on(LiveTable.FollowChanged)
    def _follow_changed(self, event: LiveTable.FollowChanged) -> None:
        self._show_follow(event.follow)
        if event.follow and self.window.behind:
            self.load_newest()  # the newest rows were let go while paused: fetch them again

    @on(LiveTable.Selected)
    def _open(self, event: LiveTable.Selected) -> None:
        self.app.push_screen(DeliveryInspector(event.key))

    @on(Select.Changed, "#delivery-filters Select")
    def _filter_changed(self, event: Select.Changed) -> None:
        value = event.value
        chosen = None if value is Select.NULL else value
        if event.select.id == "webhook-filter":
            self.webhook_id = cast("int | None", chosen)
        elif event.select.id == "event-filter":
            self.event_code = cast("str | None", chosen)
        else:
            self.status = None if chosen is None else DeliveryStatus(cast("str", chosen))
        self._loaded = False
        self.window.replace([], has_older=False)
        self.table.clear()
        self._show_foot()
        self.load_newest()

    # --- actions -------------------------------------------------------------------------

    def action_follow(self) -> None:
        self.table.follow = True

    def action_older(self) -> None:
        if not self.window.has_older:
            self.notify("This is the start of the journal: nothing older.", markup=False)
            return
        if self.qrm.require_online("load older deliveries"):
            self.load_older()

    def action_filter(self) -> None:
        self.query_one("#webhook-filter", Select).focus()

    def action_clear_filters(self) -> None:
        for select in self.query("#delivery-filters Select").results(Select):
            if not select.is_blank():
                select.clear()
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filters":
            return self.filtered
        if action == "copy_message_id":
            return True if self.table.cursor_key is not None else None
        return True

    def action_copy_message_id(self) -> None:
        key = self.table.cursor_key
        delivery = None if key is None else self.window.items.get(key)
        if delivery is not None:
            self.app.copy_to_clipboard(delivery.message_id)
            self.notify(f"Copied {delivery.message_id}", title="messageId", markup=False)

    def action_redeliver_failed(self) -> None:
        if self.qrm.require_online("redeliver the failed deliveries"):
            self.redeliver_failed()

    @work(group="deliveries-redeliver", exclusive=True, exit_on_error=False)
    async def redeliver_failed(self) -> None:
        if self.status not in (None, DeliveryStatus.FAILED):
            self.notify(
                f"The state filter shows {self.status.value} deliveries: none of them failed.",
                markup=False,
            )
            return
        total = (await self._page(DeliveryStatus.FAILED, limit=1)).total
        if not total:
            self.notify("No failed delivery matches the filters.", markup=False)
            return
        plural = "delivery" if total == 1 else "deliveries"
        confirmed = await self.app.push_screen_wait(
            ConfirmDialog(
                f"Redeliver {total:,} failed {plural}?",
                "Each gets one manual attempt now, with the same messageId.\n"
                "A success marks it delivered; a failure leaves it failed (no automatic retries).",
                f"Redeliver {total:,}",
            )
        )
        if not confirmed:
            return
        count = await self.qrm.client.redeliver_matching(
            webhook_id=self.webhook_id, event_code=self.event_code, status="failed"
        )
        plural = "delivery" if count == 1 else "deliveries"
        self.notify(f"Redelivering {count:,} failed {plural}.", title="Redeliver", markup=False)

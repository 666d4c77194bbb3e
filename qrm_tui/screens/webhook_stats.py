"""One webhook's statistics: the figures `GET /api/v1/webhooks/{id}/stats` gives, and its last
hour a minute at a time as sparklines (attempts, failures, p95 latency).

Read again when the app's statistics of this webhook move (the feed told of one
of its deliveries: `QrmTuiApp.refresh_stats` paces those reads), when the feed
starts afresh, and every `MINUTE_TICK` seconds so the last hour moves on while
the webhook is quiet.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, Static

from mock_qrm.contract.models import StatsMinute, WebhookStats
from qrm_tui.format import Tones, full_time, latency_label, success_label
from qrm_tui.screens.base import QrmScreen
from qrm_tui.widgets.footer import KeyFooter
from qrm_tui.widgets.header import AppHeader
from qrm_tui.widgets.throughput import Throughput

MINUTES = 60
"""The sparklines' span: the last hour, the current minute at the right (a bar a minute, or
two below 110 columns: qrm.tcss)."""
MINUTE_TICK = 20.0
"""Seconds between reads while nothing happens: the hour moves on a minute at a time."""
SPARKS = (
    ("attempts", "Attempts"),
    ("failures", "Failures"),
    ("p95", "p95"),
)


def figure_rows(stats: WebhookStats, tones: Tones) -> list[tuple[str, Text]]:
    """The figures, a label and its value a row, in the words docs/stats.md uses."""
    rate, tone = success_label(stats.success_rate)
    latency = stats.latency_ms
    by_status = " · ".join(f"{key}: {count:,}" for key, count in stats.by_status.items())
    return [
        ("Attempts", Text(f"{stats.attempts:,}" + (f"  ({by_status})" if by_status else ""))),
        (
            "Success rate",
            tones.text(rate if stats.success_rate is None else f"{rate} answered 200", tone),
        ),
        (
            "Latency",
            Text(
                "  ".join(
                    f"{name} {latency_label(value)}"
                    for name, value in (
                        ("p50", latency.p50),
                        ("p95", latency.p95),
                        ("p99", latency.p99),
                    )
                )
            ),
        ),
        ("Delivered", Text(f"{stats.delivered:,}")),
        ("Failed", Text(f"{stats.failed:,} (every attempt used up)")),
        ("Last success", Text(full_time(stats.last_success_at) if stats.last_success_at else "—")),
        ("Last failure", Text(full_time(stats.last_failure_at) if stats.last_failure_at else "—")),
    ]


def sparks(minutes: list[StatsMinute]) -> dict[str, tuple[tuple[float, ...], str]]:
    """Each sparkline's bars, oldest minute first, and its peak in words. A quiet minute is
    blank; a p95 of 0 ms (a refused connection) still gets the lowest bar."""
    attempts = [m.attempts for m in minutes]
    failures = [m.failures for m in minutes]
    timed = [m.p95 for m in minutes if m.p95 is not None]

    def peak(counts: list[int]) -> str:
        top = max(counts, default=0)
        return f"peak {top:,}/min" if top else "none"

    return {
        "attempts": (tuple(map(float, attempts)), peak(attempts)),
        "failures": (tuple(map(float, failures)), peak(failures)),
        "p95": (
            tuple(0.0 if m.p95 is None else m.p95 + 0.5 for m in minutes),
            f"peak {latency_label(max(timed))}" if timed else "none",
        ),
    }


class WebhookStatsScreen(QrmScreen):
    HELP_GROUP = "Webhook statistics"
    AUTO_FOCUS = "#stats-body"
    BINDINGS = [
        Binding(
            "escape",
            "app.pop_screen",
            "Back",
            tooltip="Back to the webhooks",
            id="webhook_stats.back",
        ),
    ]

    def __init__(self, webhook_id: int) -> None:
        super().__init__()
        self.webhook_id = webhook_id
        self.stats: WebhookStats | None = None
        self._seen: WebhookStats | None = None

    def compose(self) -> ComposeResult:
        yield AppHeader("webhooks")
        yield Label(id="stats-title", markup=False)
        yield Label(id="stats-url", markup=False)
        with VerticalScroll(id="stats-body"):
            yield Static("Loading…", id="stats-figures", markup=False)
            yield Label("The last hour (now at the right)", classes="section-title")
            for key, title in SPARKS:
                with Horizontal(classes="spark-row"):
                    yield Label(title, classes="spark-label")
                    yield Throughput(id=f"spark-{key}", classes="spark")
                    yield Label(id=f"peak-{key}", classes="spark-peak", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.watch(self.qrm, "webhooks", self._show_title)
        self.watch(self.qrm, "webhook_stats", self._moved)
        self.watch(self.qrm, "feed_generation", self._reload, init=False)
        self.set_interval(MINUTE_TICK, self._reload)
        self.load()

    def _moved(self) -> None:
        """The app read this webhook's figures afresh: read the last hour with them."""
        seen = self.qrm.webhook_stats.get(self.webhook_id)
        if seen is not None and seen is not self._seen:
            self._seen = seen
            self.load()

    def _reload(self) -> None:
        if self.qrm.online:
            self.load()

    @work(group="webhook-stats", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        self.stats = await self.qrm.client.stats(self.webhook_id, per_minute=MINUTES)
        self._show()

    def _show_title(self) -> None:
        webhook = self.qrm.webhooks.get(self.webhook_id)
        title = self.query_one("#stats-title", Label)
        url = self.query_one("#stats-url", Label)
        if webhook is None:
            title.update(f"Webhook #{self.webhook_id} (removed: its history stays)")
            url.update("")
            return
        state = "● active" if webhook.active else "○ inactive"
        title.update(f"Webhook #{webhook.id} “{webhook.name}”  {state}")
        url.update(webhook.url)

    def _show(self) -> None:
        stats = self.stats
        if stats is None:
            return
        self._show_title()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style=self.tones.text("", "muted").style, no_wrap=True)
        grid.add_column()
        for name, value in figure_rows(stats, self.tones):
            grid.add_row(name, value)
        self.query_one("#stats-figures", Static).update(grid)
        for key, (bars, peak) in sparks(stats.per_minute).items():
            self.query_one(f"#spark-{key}", Throughput).data = bars
            self.query_one(f"#peak-{key}", Label).update(peak)

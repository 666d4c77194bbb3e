"""The App: modes, global bindings, connection state and the live feed. Thin on purpose.

Screens read the registry from `QrmTuiApp.webhooks` (a reactive the feed keeps
current) and each webhook's statistics from `webhook_stats` (read again, paced,
when the feed moves them), take delivery and report changes from
`QrmTuiApp.store` (which the one feed worker fills), reload when
`feed_generation` moves (a fresh connection or a resync), and call the server
through `QrmTuiApp.client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import App, ScreenStackError, UnknownModeError
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.reactive import reactive, var
from textual.screen import ModalScreen
from textual.worker import Worker

from mock_qrm.app import Scenario, Settings, settle_heap
from mock_qrm.client.scenario import scenario_file
from mock_qrm.contract.display import printable
from mock_qrm.contract.models import EventComponent, Health, Webhook, WebhookStats
from qrm_tui.client import (
    BACKOFF,
    FeedConnected,
    FeedFollower,
    FeedLost,
    QrmApiError,
    QrmUnavailable,
    StartupProblem,
    TuiClient,
    describe_error,
    with_delivery,
)
from qrm_tui.commands import QrmCommands
from qrm_tui.demo import Demo, DemoOptions
from qrm_tui.embedded import EmbeddedError, EmbeddedServer
from qrm_tui.failures import report_worker_failure, unreachable_text
from qrm_tui.live import LiveStore, StatsPacer
from qrm_tui.messages import (
    ConnectionChanged,
    ConnectionState,
    WebhookChanged,
    WebhooksLoaded,
)
from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.screens.errors import StartupErrorScreen
from qrm_tui.screens.faults import FaultsScreen
from qrm_tui.screens.help import HelpScreen, help_rows, screen_rows
from qrm_tui.screens.inspector import DeliveryInspector
from qrm_tui.screens.reports import ReportsScreen
from qrm_tui.screens.webhook_stats import WebhookStatsScreen
from qrm_tui.screens.webhooks import WebhooksScreen


@dataclass(frozen=True, slots=True)
class Target:
    """Where the data comes from: a running server, or one to embed (`embedded` settings)."""

    server: str | None = None
    api_key: str | None = None
    embedded: Settings | None = None
    demo: DemoOptions | None = None
    """With an embedded server: add the demo's receiver, webhooks and uploads."""
    scenario: Scenario | None = None
    """With an embedded server: the scenario file it starts in (`--config`)."""


SWITCH_MASK = 1 / 60
"""Seconds a screen switch holds back drawing (Textual's default is 0.05): one frame."""

BUILD_GAP = 0.05
"""Seconds between the screens built after the start (`build_screens`)."""

WEBHOOK_FLUSH = 0.15
"""Seconds over which deliveries are gathered into one update of the webhooks' last results."""

STATS_TICK = 0.5
"""Seconds between looks at whether webhooks' statistics are due a read (`StatsPacer` paces)."""


class QrmTuiApp(App[None]):
    CSS_PATH = Path(__file__).with_name("qrm.tcss")
    TITLE = "qrm-tui"
    MODES = {
        "webhooks": WebhooksScreen,
        "deliveries": DeliveriesScreen,
        "reports": ReportsScreen,
        "faults": FaultsScreen,
    }
    DEFAULT_MODE = "webhooks"
    COMMANDS = App.COMMANDS | {QrmCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    """Screens carry `-narrow` below 110 columns: labels go, dialogs tighten (qrm.tcss)."""
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding(
            "1",
            "show('webhooks')",
            "Webhooks",
            show=False,
            tooltip="Show webhooks",
            id="app.show_webhooks",
        ),
        Binding(
            "2",
            "show('deliveries')",
            "Deliveries",
            show=False,
            tooltip="Show deliveries",
            id="app.show_deliveries",
        ),
        Binding(
            "3",
            "show('reports')",
            "Reports",
            show=False,
            tooltip="Show reports",
            id="app.show_reports",
        ),
        Binding(
            "4",
            "show('faults')",
            "Faults",
            show=False,
            tooltip="Show faults on QRM's API and the calls made to it",
            id="app.show_faults",
        ),
        Binding(
            "question_mark",
            "help",
            "Help",
            key_display="?",
            tooltip="List every key",
            id="app.help",
        ),
        Binding(
            "ctrl+e",
            "export_scenario",
            "Export scenario",
            show=False,
            tooltip="Save the server's state as a scenario file for `mock-qrm serve --config`",
            id="app.export_scenario",
        ),
        Binding("q", "quit", "Quit", tooltip="Quit qrm-tui", id="app.quit"),
    ]

    connection: reactive[ConnectionState] = reactive("starting")
    connection_detail = reactive("")
    server_label = reactive("")
    time_scale = reactive(1.0)
    insecure_receivers = reactive(False)
    """The server does not check `https` webhooks' certificates (SPEC 9.7)."""
    webhooks: var[dict[int, Webhook]] = var(dict, always_update=True)
    """The registry as last read or announced, by id; screens render it."""
    loaded = var(False)
    """True once the registry was read at least once."""
    feed_generation = var(0)
    """Moves when the feed starts afresh (first connection, resync, restarted server):
    what a screen holds may be stale, so it reloads over REST."""
    max_attempts = var(4)
    """1 + retries, from the server's health: "attempt n of N"."""
    webhook_stats: var[dict[int, WebhookStats]] = var(dict, always_update=True)
    """Each webhook's statistics as last read, by id (the Webhooks screen's success and p95)."""

    def __init__(
        self,
        target: Target,
        *,
        server_label: str | None = None,
        feed_backoff: Sequence[float] = BACKOFF,
        start_mode: str | None = None,
        settle_memory: bool = False,
    ) -> None:
        super().__init__()
        self.target = target
        self.embedded = (
            None if target.embedded is None else EmbeddedServer(target.embedded, target.scenario)
        )
        self.demo = None if target.demo is None else Demo(target.demo)
        self.store = LiveStore()
        self.stats_pacer = StatsPacer()
        self._webhook_inbox = self.store.deliveries.open()
        self.start_mode = start_mode or ("deliveries" if self.demo is not None else None)
        self._manual_now: float | None = None
        self._settle_memory = settle_memory
        self._warming_started = False
        self._shown_modes: set[str] = set()
        """The modes whose screen is built: a first visit to the others parses all CSS again."""
        api_key = target.api_key
        if target.embedded is not None:
            api_key = target.embedded.api_key_value
        # For an embedded server the address is known once it listens (see `start`).
        self.client = TuiClient(target.server or "http://127.0.0.1", api_key)
        self.components: list[EventComponent] = []
        self._fixed_label = server_label
        self._feed_backoff = tuple(feed_backoff)
        self.server_label = server_label or target.server or "embedded server"
        stdin = sys.__stdin__.fileno() if sys.__stdin__ is not None else -1
        self._terminal = stdin if stdin >= 0 and os.isatty(stdin) else None

    # --- start-up and shutdown ----------------------------------------------------

    async def on_mount(self) -> None:
        self.mode_change_signal.subscribe(self, self._mode_shown)
        self._shown_modes.add(self.current_mode)
        self.set_interval(WEBHOOK_FLUSH, self._flush_last_deliveries)
        self.set_interval(STATS_TICK, self.refresh_stats)
        self.set_interval(1.0, self._read_manual_clock)
        self.set_interval(1.0, self._exit_if_hung_up)
        self.start()
        if self.start_mode is not None and self.start_mode != self.current_mode:
            await self.switch_mode(self.start_mode)

    def _mode_shown(self, mode: str) -> None:
        self._shown_modes.add(mode)

    def _exit_if_hung_up(self) -> None:
        """The terminal went away (`make run` in a tmux session that was killed): stop.

        Under `make` no SIGHUP reaches the app, and Textual's input thread spins
        on the hung-up terminal, keeping the demo's lock and a core busy until
        killed. A hung-up terminal answers EIO.
        """
        if self._terminal is None:
            return
        try:
            os.tcgetpgrp(self._terminal)
        except OSError as exc:
            if exc.errno == errno.EIO:
                self.exit(return_code=129)

    @work(group="startup", exclusive=True, exit_on_error=False)
    async def start(self) -> None:
        """Start the embedded server if any, check the server, then follow its feed."""
        self.connection = "starting"
        try:
            if self.embedded is not None:
                try:
                    self.client.base_url = await self.embedded.start()
                except EmbeddedError as exc:
                    raise StartupProblem(
                        f"The embedded server could not start: {exc}.",
                        "Point MOCK_QRM_DB at a writable file, or connect to a running "
                        "server with --server URL.",
                    ) from None
                self.server_label = self._fixed_label or f"{self.client.base_url} (embedded)"
            info = await self.client.probe(embedded=self.embedded is not None)
        except StartupProblem as problem:
            self.connection = "failed"
            self.connection_detail = problem.message
            await self.push_screen(StartupErrorScreen(problem))
            return
        self.components = info.components
        self._health(info.health)
        if self.demo is not None:
            await self.demo.start(self.client, info.health, info.components)
            self.run_demo()
        self.follow_feed()

    @work(group="demo", exclusive=True, exit_on_error=False)
    async def run_demo(self) -> None:
        """The demo's inspector: a report upload every few seconds."""
        if self.demo is not None:
            await self.demo.upload_forever(self.client)

    def retry_start(self) -> None:
        if isinstance(self.screen, StartupErrorScreen):
            self.pop_screen()
        self.start()

    async def on_unmount(self) -> None:
        self.workers.cancel_group(self, "feed")
        self.workers.cancel_group(self, "demo")
        await self.client.close()
        if self.embedded is not None:
            await self.embedded.stop()
        if self.demo is not None:
            await self.demo.stop()

    # --- the live feed ------------------------------------------------------------

    @work(group="feed", exclusive=True, exit_on_error=False)
    async def follow_feed(self) -> None:
        """One long-lived worker: feed frames become messages; a fresh start reloads over REST."""
        try:
            await self._follow(self.client.live_feed(self._feed_backoff))
        except QrmApiError as exc:  # the key stopped working: nothing to retry
            self.post_message(ConnectionChanged("failed", describe_error(exc)))
            raise

    async def _follow(self, feed: FeedFollower) -> None:
        async for event in feed.events():
            if isinstance(event, FeedLost):
                self.post_message(ConnectionChanged("reconnecting", event.reason))
                continue
            if isinstance(event, FeedConnected):
                self.post_message(ConnectionChanged("connected", event.server))
                if event.resumed:
                    continue
            elif event.type == "webhook" and event.webhook is not None:
                self.post_message(WebhookChanged(event.action or "updated", event.webhook))
                continue
            elif event.type == "delivery" and event.delivery is not None:
                self.store.delivery_changed(event.delivery)  # screens take them in batches
                continue
            elif event.type == "report" and event.report is not None:
                self.store.report_changed(event.report)
                continue
            elif event.type != "resync":
                continue
            try:
                webhooks = await self.client.webhooks()
                health = await self.client.health()
            except QrmUnavailable:
                feed.forget()  # the next connection starts afresh, and reloads
                continue
            self.post_message(WebhooksLoaded(webhooks, health))

    @on(ConnectionChanged)
    def _connection_changed(self, message: ConnectionChanged) -> None:
        was = self.connection
        self.connection = message.state
        self.connection_detail = message.detail
        if message.state == "reconnecting" and was == "connected":
            self.connection_notice(
                f"Lost the server: {message.detail}. Reconnecting…",
                title="Connection lost",
                severity="warning",
            )
        elif message.state == "connected" and was == "reconnecting":
            self.connection_notice(
                f"Reconnected to {self.server_label}.", title="Connected", severity="information"
            )

    @on(WebhooksLoaded)
    def _webhooks_loaded(self, message: WebhooksLoaded) -> None:
        self._health(message.health)
        self.webhooks = {webhook.id: webhook for webhook in message.webhooks}
        self.stats_pacer.mark(self.webhooks, now=True)
        self.loaded = True
        self.feed_generation += 1
        if not self._warming_started:
            self._warming_started = True
            self.call_after_refresh(self.build_screens)

    @work(group="build-screens", exclusive=True, exit_on_error=False)
    async def build_screens(self) -> None:
        """Build every screen once, unseen, soon after the start, then settle the heap.

        Textual parses the whole stylesheet again the first time a screen shows (some
        100 ms); done here, one screen at a time while nothing else is asked for, the
        first press of `3` or `4` finds its screen ready, as the later ones do.
        """
        for mode in self.MODES:
            await asyncio.sleep(BUILD_GAP)  # a key pressed meanwhile waits for one build at most
            if not self.is_running:
                return  # shutting down: Textual is closing the screens built so far
            if mode in self._shown_modes or len(self.screen_stack) > 1:
                continue  # already built, or a dialog is open: its screen is built when shown
            home = self.current_mode
            with self.batch_update():  # there and back with no await between: nothing shows,
                built = self.switch_mode(mode)  # and no key handled between undoes a press
                back = self.switch_mode(home)
            await built
            await back
        if self._settle_memory:
            # Once started and loaded: the app's own objects (Textual, the screens, every
            # import) leave the collector's sight, as in `mock-qrm serve`; a full pass would
            # walk them all while a feed of 500 updates/s runs (a pause a key press lands in).
            self._settle_memory = False
            self.call_after_refresh(settle_heap)

    def _health(self, health: Health) -> None:
        self.time_scale = health.time_scale
        self.insecure_receivers = health.insecure_receivers
        self.max_attempts = health.max_attempts
        if not health.manual_clock:
            self._manual_now = None
        elif self._manual_now is None:
            # The server's frozen time, from the same answer: never the local clock.
            self._manual_now = health.now.timestamp() if health.now else time.time()
            self._read_manual_clock()

    @on(WebhookChanged)
    def _webhook_changed(self, message: WebhookChanged) -> None:
        if message.action == "deleted":
            self.forget_webhook(message.webhook.id)
        else:
            if message.action == "created":
                self.stats_pacer.mark([message.webhook.id], now=True)
            self.apply_webhook(message.webhook)

    def _flush_last_deliveries(self) -> None:
        """Each webhook's last result, from the deliveries the feed brought: one update per batch."""
        changed: dict[int, Webhook] = {}
        deliveries = self._webhook_inbox.take()
        if deliveries and self._manual_now is not None:
            self._read_manual_clock()  # someone moved it: countdowns follow at once
        self.stats_pacer.mark({delivery.webhook_id for delivery in deliveries})
        for delivery in deliveries:
            webhook = changed.get(delivery.webhook_id) or self.webhooks.get(delivery.webhook_id)
            if webhook is not None:
                updated = with_delivery(webhook, delivery)
                if updated is not webhook:
                    changed[webhook.id] = updated
        if self._webhook_inbox.overflowed:
            self._webhook_inbox.discard()  # the next registry load brings the rest
        if changed:
            self.webhooks = {**self.webhooks, **changed}

    # --- the server's clock ---------------------------------------------------------

    def server_now(self) -> float:
        """The server's time (epoch seconds), for countdowns: a manual clock is read each second."""
        return time.time() if self._manual_now is None else self._manual_now

    def _read_manual_clock(self) -> None:
        if self._manual_now is not None and self.online:
            self.read_manual_clock()

    @work(group="clock", exclusive=True, exit_on_error=False)
    async def read_manual_clock(self) -> None:
        with contextlib.suppress(QrmUnavailable, QrmApiError):  # the header says it is down
            self._manual_now = (await self.client.clock()).now.timestamp()

    # --- webhooks' statistics -------------------------------------------------------

    def refresh_stats(self) -> None:
        """Read the statistics of the webhooks that moved, while a screen shows them."""
        try:
            shown = self.screen
        except (ScreenStackError, UnknownModeError):  # starting, closing, between modes
            return
        if not self.online or not isinstance(shown, WebhooksScreen | WebhookStatsScreen):
            return
        due = self.stats_pacer.take()
        if due:
            self.read_stats(due)

    @work(group="stats", exit_on_error=False)
    async def read_stats(self, webhook_ids: set[int]) -> None:
        read: dict[int, WebhookStats] = {}
        unread = set(webhook_ids)
        try:
            for webhook_id in sorted(webhook_ids):
                try:
                    read[webhook_id] = await self.client.stats(webhook_id)
                except QrmApiError as exc:
                    if exc.status != 404:  # 404: gone for good (a reset)
                        raise
                unread.discard(webhook_id)
        except QrmUnavailable:
            pass  # the header says the server is gone; these stay due for when it is back
        finally:
            self.stats_pacer.done(unread)
            if read:  # only webhooks still listed: stats answer for removed ones too
                kept = {k: v for k, v in self.webhook_stats.items() if k in self.webhooks}
                kept.update((k, v) for k, v in read.items() if k in self.webhooks)
                self.webhook_stats = kept

    def apply_webhook(self, webhook: Webhook) -> None:
        """Show a webhook as the server returned it (a feed frame, or our own call's answer)."""
        current = self.webhooks.get(webhook.id)
        if current is not None:
            if current.updated_at > webhook.updated_at:
                return
            known, told = current.last_delivery, webhook.last_delivery
            # Delivery frames are fresher than a webhook's summary of the same delivery.
            if known is not None and (told is None or told.delivery_id <= known.delivery_id):
                webhook = webhook.model_copy(update={"last_delivery": known})
        self.webhooks = {**self.webhooks, webhook.id: webhook}

    def forget_webhook(self, webhook_id: int) -> None:
        if webhook_id in self.webhooks:
            self.webhooks = {k: v for k, v in self.webhooks.items() if k != webhook_id}
        if webhook_id in self.webhook_stats:
            self.webhook_stats = {k: v for k, v in self.webhook_stats.items() if k != webhook_id}

    def delay_update(self, delay: float = SWITCH_MASK) -> None:
        """Screens here are built once and kept, and their footers only redrawn when their
        keys change: a switch has nothing to hide for 50 ms, one frame will do."""
        super().delay_update(min(delay, SWITCH_MASK))

    # --- connection state ---------------------------------------------------------

    @property
    def online(self) -> bool:
        return self.connection == "connected"

    def require_online(self, action: str) -> bool:
        """True when the server is there; else say which action cannot run, and why."""
        if self.online:
            return True
        reason = self.connection_detail or "not connected yet"
        self.connection_notice(unreachable_text(action, reason), title="Server unreachable")
        return False

    def connection_notice(
        self, message: str, *, title: str, severity: SeverityLevel = "error"
    ) -> None:
        """The one notice about the connection: each replaces what is showing, so they never
        pile up. Textual removes a single notice only through a private method; it clears
        them all through `clear_notifications`, and news of the connection comes first."""
        self.clear_notifications()
        self.notify(
            message,
            title=title,
            severity=severity,
            timeout=8 if severity == "error" else 5,
            markup=False,
        )

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification, from any screen: its text as it is, never markup, control
        characters escaped (a name or a server's message may hold either)."""
        super().notify(
            printable(message, lines=True),
            title=printable(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    # --- actions ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("show", "quit", "help") and isinstance(self.screen, ModalScreen):
            return False
        return not (action == "show" and isinstance(self.screen, StartupErrorScreen))

    async def action_show(self, mode: str) -> None:
        """Open a screen at its list, however it was left: `2` after the inspector, then `3`,
        is the Deliveries list again, not the inspector (Textual keeps a stack per mode)."""
        await self.switch_mode(mode)
        while len(self.screen_stack) > 1 and not isinstance(self.screen, ModalScreen):
            await self.pop_screen()

    def action_help(self) -> None:
        """Keys where help was asked, everywhere, then the other screens' (by screen)."""
        screens = (
            WebhooksScreen,
            WebhookStatsScreen,
            DeliveriesScreen,
            ReportsScreen,
            FaultsScreen,
            DeliveryInspector,
        )
        others = [screen for screen in screens if not isinstance(self.screen, screen)]
        self.push_screen(HelpScreen(help_rows(self.screen) + screen_rows(self, others)))

    def action_export_scenario(self) -> None:
        if self.require_online("export the scenario"):
            self.export_scenario()

    @work(group="export", exclusive=True, exit_on_error=False)
    async def export_scenario(self, folder: Path | None = None) -> Path | None:
        """The state as `mock-qrm export-config` writes it, saved as a new file (in the
        current folder): passwords stay `${ENV}` placeholders, named in the notice."""
        document = await self.client.scenario()
        text, variables = scenario_file(
            document.model_dump(mode="json", by_alias=True), self.client.base_url
        )
        path = _new_file(folder or Path.cwd(), "qrm-scenario", ".toml")
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.notify(
                f"Could not save {path}: {exc.strerror or exc}",
                title="Scenario not exported",
                severity="error",
                markup=False,
            )
            return None
        webhooks, faults = len(document.webhooks), len(document.faults)
        said = (
            f"{webhooks} webhook{'' if webhooks == 1 else 's'},"
            f" {faults} fault{'' if faults == 1 else 's'}."
        )
        if variables:
            said += f" Set {', '.join(variables)} before `mock-qrm serve --config {path.name}`."
        self.notify(f"Saved {path}: {said}", title="Scenario exported", markup=False)
        return path

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_failure(self, event)


def _new_file(folder: Path, stem: str, suffix: str) -> Path:
    """`folder/stem.suffix`, or `stem-2.suffix`, ...: never over a file already there."""
    path = folder / f"{stem}{suffix}"
    number = 2
    while path.exists():
        path = folder / f"{stem}-{number}{suffix}"
        number += 1
    return path
